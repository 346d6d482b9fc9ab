// Upstream GETs that follow redirects inside the proxy (registries send blobs to CDNs and
// pre-signed S3/GCS URLs): at most 5 hops, relative Locations resolved, and the client's
// credentials never sent to another origin. The caller stores the result under the digest it
// asked for, so a signed URL's query string and lifetime never matter.
import type { Upstream } from './client.ts';
import type { UpstreamRequest, UpstreamResponse } from './types.ts';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_HOPS = 5;
/** Headers that identify the client to the registry: never forwarded across origins. */
const CREDENTIALS = ['authorization', 'cookie'];

export interface FollowedResponse {
  readonly response: UpstreamResponse;
  /** Origin that finally answered (the registry, or a CDN). */
  readonly origin: string;
  readonly hops: number;
}

export async function requestFollowingRedirects(
  upstream: Upstream,
  request: UpstreamRequest,
): Promise<FollowedResponse> {
  let current = request;
  for (let hops = 0; ; hops += 1) {
    const response = await upstream.request(current);
    const location = response.headers['location'];
    if (!REDIRECTS.has(response.statusCode) || typeof location !== 'string' || hops === MAX_HOPS) {
      return { response, origin: current.origin, hops };
    }
    await response.body.dump();
    const target = new URL(location, `${current.origin}${current.path}`);
    const headers = { ...current.headers };
    if (target.origin !== request.origin) for (const name of CREDENTIALS) delete headers[name];
    current = {
      ...current,
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
      headers,
      method: response.statusCode === 303 ? 'GET' : current.method,
    };
  }
}
