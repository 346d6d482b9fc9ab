// A tag resolved at a mirror marked `tags: true` (issue 19): the mirror says which digest the tag
// names; the registry still says whether this client may read it (as for a cache hit, see
// mirrored.ts); the manifest comes from the cache, else by digest from the mirrors or the registry.
import type { TagRecord } from '../../cache/manifests.ts';
import { bestEffort } from '../cache-writes.ts';
import type { Exchange, RegistryDeps } from '../context.ts';
import { registryAllows, type MirroredTag } from '../mirrored.ts';
import { fetchByDigest } from './by-digest.ts';
import { sendManifest } from './send.ts';
import { withVariant } from './tag-variants.ts';
import type { ManifestRoute } from './upstream.ts';

export async function serveMirrorTag(
  x: Exchange,
  route: ManifestRoute,
  stored: TagRecord | undefined,
  resolved: MirroredTag,
  deps: RegistryDeps,
): Promise<void> {
  const { digest, mediaType, size } = resolved;
  await registryAllows(x, { kind: 'manifest', name: route.name, digest }, deps);
  deps.mirrors?.served(resolved.chain, resolved.mirror, 'tag');
  // Remembered like a registry's answer: the tag's resolution for this kind of client, now.
  const record = withVariant(stored, { digest, mediaType, size, checkedAt: deps.now() });
  if (await bestEffort(deps, () => deps.manifests.putTag(x.host, route.name, route.reference, record))) {
    deps.book.tagged(x.host, route.name, route.reference, digest);
  }
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
