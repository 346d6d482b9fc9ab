// A manifest by digest that the cache does not hold: from the registry's mirrors when it has
// some (mirrored.ts: checked against the digest, no access recorded), else from the registry
// (its 200 recorded as access), stored, and sent.
import { recordAccess } from '../../access/authorize.ts';
import type { Exchange, RegistryDeps } from '../context.ts';
import { manifestFromMirrors } from '../mirrored.ts';
import { sendResponse } from '../respond/relay.ts';
import { sendManifest } from './send.ts';
import { askUpstream, keepManifest, storeManifest, type ManifestRoute } from './upstream.ts';

/** `checked`: the registry already said this client may read it (a tag resolved at a mirror). */
export async function fetchByDigest(
  x: Exchange,
  route: ManifestRoute,
  deps: RegistryDeps,
  checked = false,
): Promise<void> {
  const digest = route.reference;
  const mirrored = await manifestFromMirrors(x, { name: route.name, digest }, deps, checked);
  if (mirrored) {
    const fetched = await keepManifest(x, route, { ...mirrored, digest }, deps);
    deps.mirrors?.served(mirrored.chain, mirrored.mirror, 'manifest');
    return sendManifest(x, deps, fetched, fetched.stored ? 'miss' : 'bypass');
  }
  const response = await askUpstream(x, route, 'GET', deps);
  if (response.statusCode !== 200) return sendResponse(x.res, response, x.outcome);
  const fetched = await storeManifest(x, route, response, digest, deps);
  recordAccess(x, route.name, fetched.digest, deps.access);
  const chain = deps.mirrors?.chainOf(x.destination);
  if (chain) deps.mirrors?.served(chain, 'registry', 'manifest');
  return sendManifest(x, deps, fetched, fetched.stored ? 'miss' : 'bypass');
}
