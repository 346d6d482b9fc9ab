// A tag resolved at a mirror marked `tags: true` (issue 19): the mirror says which digest the tag
// names; the registry still says whether this client may read it (as for a cache hit, see
// mirrored.ts); the manifest comes from the cache, else by digest from the mirrors or the registry.
import type { TagRecord } from '../../cache/manifests.ts';
import { UpstreamRefusedError } from '../../upstream/errors.ts';
import { bestEffort } from '../cache-writes.ts';
import type { Exchange, RegistryDeps } from '../context.ts';
import { registryAllows, type MirroredTag } from '../mirrored.ts';
import { fetchByDigest } from './by-digest.ts';
import { sendManifest } from './send.ts';
import { withVariant } from './tag-variants.ts';
import type { ManifestRoute } from './upstream.ts';

/**
 * Serves the tag as `resolved` names it; false (nothing sent) when the registry does not have that
 * digest in the repository: the mirror's answer is wrong or behind, and the registry is asked.
 */
export async function serveMirrorTag(
  x: Exchange,
  route: ManifestRoute,
  stored: TagRecord | undefined,
  resolved: MirroredTag,
  deps: RegistryDeps,
): Promise<boolean> {
  const { digest, mediaType, size } = resolved;
  try {
    await registryAllows(x, { kind: 'manifest', name: route.name, digest }, deps);
  } catch (error) {
    if (!(error instanceof UpstreamRefusedError) || error.status !== 404) throw error;
    deps.mirrors?.failed(resolved.chain, resolved.mirror, 'tag');
    x.outcome.source = undefined;
    return false;
  }
  deps.mirrors?.served(resolved.chain, resolved.mirror, 'tag');
  // Remembered like a registry's answer: the tag's resolution for this kind of client, now.
  const record = withVariant(stored, { digest, mediaType, size, checkedAt: deps.now() });
  if (await bestEffort(deps, () => deps.manifests.putTag(x.host, route.name, route.reference, record))) {
    deps.book.tagged(x.host, route.name, route.reference, digest);
  }
  await sendResolved(x, route, resolved, deps);
  return true;
}

/** The manifest the tag names: from the cache, else by digest (mirrors first); a HEAD gets headers. */
async function sendResolved(
  x: Exchange,
  route: ManifestRoute,
  { digest, mediaType, size }: MirroredTag,
  deps: RegistryDeps,
): Promise<void> {
  const cached = await deps.manifests.get(digest);
  if (cached) return sendManifest(x, deps, cached, 'revalidated');
  if (x.req.method === 'HEAD') {
    x.res
      .writeHead(200, {
        'content-type': mediaType,
        'content-length': size,
        'docker-content-digest': digest,
        etag: `"${digest}"`,
        'docker-distribution-api-version': 'registry/2.0',
        'x-cache': 'MISS',
      })
      .end();
    return;
  }
  return fetchByDigest(x, { name: route.name, reference: digest, byDigest: true }, deps, true);
}
