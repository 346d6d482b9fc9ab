// Manifest requests to upstream on a client's behalf: asking (its Accept and credentials, whole
// objects only), relaying an answer as is, and storing a fetched manifest once its bytes are
// checked against the digest.
import { recordAccess } from '../../access/authorize.ts';
import type { StoredManifest } from '../../cache/manifests.ts';
import { originOf } from '../../http/destination.ts';
import { wholeObjectHeaders } from '../../http/headers.ts';
import { digestOf, parseDigest } from '../../oci/digest.ts';
import { readCapped } from '../../upstream/body.ts';
import type { UpstreamResponse } from '../../upstream/client.ts';
import { requestFollowingRedirects } from '../../upstream/fetch.ts';
import type { Exchange, RegistryDeps } from '../context.ts';
import { bestEffort } from '../cache-writes.ts';
import { registryErrors } from '../errors.ts';
import { sendResponse } from '../respond/relay.ts';

export interface ManifestRoute {
  readonly name: string;
  readonly reference: string;
  readonly byDigest: boolean;
}

export async function askUpstream(
  x: Exchange,
  route: ManifestRoute,
  method: 'GET' | 'HEAD',
  deps: RegistryDeps,
): Promise<UpstreamResponse> {
  const { response } = await requestFollowingRedirects(deps.upstream, {
    origin: originOf(x.destination),
    method,
    path: `/v2/${route.name}/manifests/${route.reference}`,
    headers: wholeObjectHeaders(x.req),
  });
  return response;
}

/** Upstream's answer, passed on as is; a 2xx is remembered as access to that digest. */
export async function relayUpstream(
  x: Exchange,
  route: ManifestRoute,
  method: 'GET' | 'HEAD',
  deps: RegistryDeps,
): Promise<void> {
  const response = await askUpstream(x, route, method, deps);
  const digest = route.byDigest ? route.reference : headerValue(response, 'docker-content-digest');
  if (response.statusCode >= 200 && response.statusCode < 300 && digest !== undefined) {
    recordAccess(x, route.name, digest, deps.access);
  }
  return sendResponse(x.res, response, x.outcome);
}

/** A manifest fetched from upstream, and whether the cache could keep it. */
export interface FetchedManifest extends StoredManifest {
  readonly stored: boolean;
}

/**
 * Buffers a manifest (capped), checks its digest against `expected`, and stores it when the cache
 * can be written (best effort: a verified manifest is served either way).
 */
export async function storeManifest(
  x: Exchange,
  route: ManifestRoute,
  response: UpstreamResponse,
  expected: string | undefined,
  deps: RegistryDeps,
): Promise<FetchedManifest> {
  const content = await readCapped(response, deps.maxManifestSize);
  if (content === undefined) throw registryErrors.manifestTooLarge(deps.maxManifestSize);
  const algorithm = (expected && parseDigest(expected)?.algorithm) || 'sha256';
  const digest = digestOf(content, algorithm);
  if (expected !== undefined && digest !== expected) throw registryErrors.manifestMismatch(expected, digest);
  return keepManifest(x, route, { digest, mediaType: headerValue(response, 'content-type'), content }, deps);
}

/** Stores a manifest already checked against its digest, when the cache can be written. */
export async function keepManifest(
  x: Exchange,
  route: ManifestRoute,
  checked: { digest: string; mediaType: string | undefined; content: Buffer },
  deps: RegistryDeps,
): Promise<FetchedManifest> {
  const { digest, content } = checked;
  const mediaType = checked.mediaType ?? mediaTypeInside(content);
  const stored = await bestEffort(deps, () => deps.manifests.put(digest, mediaType, content));
  if (stored) deps.book.storedManifest(digest, content, { host: x.host, repository: route.name });
  return { digest, mediaType, content, stored };
}

function mediaTypeInside(content: Buffer): string {
  try {
    const parsed = JSON.parse(content.toString('utf8')) as { mediaType?: unknown };
    if (typeof parsed.mediaType === 'string') return parsed.mediaType;
  } catch {
    // not JSON: fall through
  }
  return 'application/vnd.oci.image.manifest.v1+json';
}

export function headerValue(response: UpstreamResponse, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === 'string' ? value : undefined;
}
