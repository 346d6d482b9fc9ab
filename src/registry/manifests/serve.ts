// GET/HEAD /v2/<name>/manifests/<reference>.
// - By digest (here): served from the cache when it is there (and its media type is
//   acceptable), else fetched once (by-digest.ts: mirrors first), verified, stored.
// - By tag: by-tag.ts (revalidation with HEAD, tag TTL, stale serving).
// A client's HEAD never becomes an upstream GET.
import { ensureAccess } from '../../access/authorize.ts';
import { accepts } from '../../oci/media-types.ts';
import type { Exchange, RegistryDeps } from '../context.ts';
import { fetchByDigest } from './by-digest.ts';
import { serveByTag } from './by-tag.ts';
import { sendManifest } from './send.ts';
import { relayUpstream, type ManifestRoute } from './upstream.ts';

export async function serveManifest(x: Exchange, route: ManifestRoute, deps: RegistryDeps): Promise<void> {
  // Anything that is not answered from the cache below went to upstream for its answer.
  x.outcome.cache = 'miss';
  return route.byDigest ? serveByDigest(x, route, deps) : serveByTag(x, route, deps);
}

async function serveByDigest(x: Exchange, route: ManifestRoute, deps: RegistryDeps): Promise<void> {
  const cached = await deps.manifests.get(route.reference);
  if (cached && accepts(x.req.headers.accept, cached.mediaType)) {
    await ensureAccess(x, { kind: 'manifest', name: route.name, digest: cached.digest }, deps);
    return sendManifest(x, deps, cached, 'hit');
  }
  if (x.req.method === 'HEAD') return relayUpstream(x, route, 'HEAD', deps);
  return fetchByDigest(x, route, deps);
}
