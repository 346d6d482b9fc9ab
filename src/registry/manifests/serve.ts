// GET/HEAD /v2/<name>/manifests/<reference>.
// - By digest (here): served from the cache when it is there (and its media type is
//   acceptable), else fetched once, verified against the digest, stored.
// - By tag: by-tag.ts (revalidation with HEAD, tag TTL, stale serving).
// A client's HEAD never becomes an upstream GET.
import { ensureAccess, recordAccess } from '../../access/authorize.ts';
import { accepts } from '../../oci/media-types.ts';
import type { Exchange, RegistryDeps } from '../context.ts';
import { sendResponse } from '../respond/relay.ts';
import { serveByTag } from './by-tag.ts';
import { sendManifest } from './send.ts';
import { askUpstream, relayUpstream, storeManifest, type ManifestRoute } from './upstream.ts';

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
  const response = await askUpstream(x, route, 'GET', deps);
  if (response.statusCode !== 200) return sendResponse(x.res, response, x.outcome);
  const fetched = await storeManifest(x, route, response, route.reference, deps);
  recordAccess(x, route.name, fetched.digest, deps.access);
  return sendManifest(x, deps, fetched, fetched.stored ? 'miss' : 'bypass');
}
