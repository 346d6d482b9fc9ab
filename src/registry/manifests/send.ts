// Writing a manifest held in memory to the client, saying in X-Cache what the cache did.
import type { StoredManifest } from '../../cache/manifests.ts';
import type { Exchange, RegistryDeps } from '../context.ts';
import type { CacheStatus } from '../outcome.ts';
import { sendBuffer } from '../respond/relay.ts';

/** A manifest from memory, with what the cache did in X-Cache; its image counts as used. */
export function sendManifest(
  x: Exchange,
  deps: RegistryDeps,
  manifest: StoredManifest,
  cache: CacheStatus,
): void {
  x.outcome.cache = cache;
  if (cache !== 'bypass') deps.book.used(manifest.digest);
  x.res.writeHead(200, {
    'content-type': manifest.mediaType,
    'content-length': manifest.content.length,
    'docker-content-digest': manifest.digest,
    etag: `"${manifest.digest}"`,
    'docker-distribution-api-version': 'registry/2.0',
    'x-cache': cache.toUpperCase(),
  });
  sendBuffer(x.req, x.res, manifest.content, x.outcome);
}
