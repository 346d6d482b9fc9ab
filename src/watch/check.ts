// One revalidation of a watched tag: a HEAD of its manifest upstream, with the Accept of what
// the cache holds for it, through the proxy's own upstream client (so the parent proxy, the
// trust store, the destination guard and `share` logins apply), paced by the rate limiter.
// A public tag is asked as an anonymous client would: a Bearer challenge is answered with an
// anonymous token from the registry's token server, kept until it expires.
import { LRUCache } from 'lru-cache';
import { originOf, parseAuthority } from '../http/destination.ts';
import { readCapped } from '../upstream/body.ts';
import type { UpstreamRequest, UpstreamResponse } from '../upstream/client.ts';
import { parseChallenge, scopeOf } from '../upstream/login.ts';
import { MAX_TOKEN_RESPONSE, parseTokenResponse } from '../upstream/token-response.ts';
import type { RateLimiter } from './pace.ts';
import type { Observation, TagKey } from './state.ts';

export type Send = (request: UpstreamRequest) => Promise<UpstreamResponse>;

export interface CheckTarget extends TagKey {
  /** Media types of the cached resolutions of the tag: the Accept of the HEAD. */
  readonly accept: readonly string[];
  /** Answer a Bearer challenge with an anonymous token (not under `share`: the login does it). */
  readonly anonymousToken: boolean;
}

export interface CheckDeps {
  readonly send: Send;
  readonly limiter: RateLimiter;
  readonly tokens: AnonymousTokens;
  /** How long one check may take, token included. */
  readonly timeoutMs: number;
}

/** Anonymous tokens by origin and scope, until they expire (a token server gives them out freely). */
export class AnonymousTokens {
  readonly #tokens = new LRUCache<string, string>({ max: 10_000, ttl: 60_000 });

  get(origin: string, scope: string): string | undefined {
    return this.#tokens.get(`${origin} ${scope}`);
  }

  set(origin: string, scope: string, authorization: string, ttlMs: number): void {
    this.#tokens.set(`${origin} ${scope}`, authorization, { ttl: Math.max(1000, ttlMs) });
  }
}

export async function checkTag(
  target: CheckTarget,
  deps: CheckDeps,
  stop?: AbortSignal,
): Promise<Observation> {
  const destination = parseAuthority(target.registry);
  if (!destination) return { kind: 'skipped', reason: `not a registry address: ${target.registry}` };
  const signal = AbortSignal.any([AbortSignal.timeout(deps.timeoutMs), ...(stop ? [stop] : [])]);
  const origin = originOf(destination);
  const path = `/v2/${target.repository}/manifests/${target.tag}`;
  const scope = scopeOf(path);
  const head = async (authorization: string | undefined) => {
    await deps.limiter.take(target.registry, signal);
    const headers: Record<string, string> = { accept: target.accept.join(', ') };
    if (authorization !== undefined) headers['authorization'] = authorization;
    const response = await deps.send({ origin, method: 'HEAD', path, headers, signal });
    await response.body.dump();
    return response;
  };
  try {
    const cached = target.anonymousToken ? deps.tokens.get(origin, scope) : undefined;
    let response = await head(cached);
    if (response.statusCode === 401 && target.anonymousToken) {
      const token = await anonymousToken(response, origin, scope, deps, signal);
      if (token !== undefined) response = await head(token);
    }
    return observationOf(response);
  } catch (error) {
    if (stop?.aborted) throw error;
    const reason = signal.aborted ? 'timed out' : ((error as Error).message ?? String(error));
    return { kind: 'unreachable', reason };
  }
}

function observationOf(response: UpstreamResponse): Observation {
  const status = response.statusCode;
  if (status >= 200 && status < 300) {
    const digest = response.headers['docker-content-digest'];
    if (typeof digest === 'string') return { kind: 'found', digest };
    return { kind: 'unreachable', reason: `upstream answered ${status} without Docker-Content-Digest` };
  }
  if (status === 404) return { kind: 'missing', status };
  if (status === 401 || status === 403) return { kind: 'refused', status };
  return { kind: 'unreachable', reason: `upstream answered ${status}` };
}

/** `Bearer <token>` from the challenge's realm, asked with no credentials; undefined if none. */
async function anonymousToken(
  challenged: UpstreamResponse,
  origin: string,
  scope: string,
  deps: CheckDeps,
  signal: AbortSignal,
): Promise<string | undefined> {
  const header = challenged.headers['www-authenticate'];
  const challenge = typeof header === 'string' ? parseChallenge(header) : undefined;
  const realm = challenge?.scheme === 'bearer' ? URL.parse(challenge.params['realm'] ?? '') : null;
  if (!challenge || !realm || !/^https?:$/.test(realm.protocol)) return undefined;
  for (const name of ['service', 'scope'] as const) {
    const value = challenge.params[name];
    if (value !== undefined) realm.searchParams.set(name, value);
  }
  const response = await deps.send({
    origin: realm.origin,
    method: 'GET',
    path: `${realm.pathname}${realm.search}`,
    headers: { accept: 'application/json' },
    signal,
  });
  const body = await readCapped(response, MAX_TOKEN_RESPONSE);
  const token = response.statusCode === 200 && body ? parseTokenResponse(body) : undefined;
  const value = token?.tokens[0];
  if (!token || value === undefined) return undefined;
  const authorization = `Bearer ${value}`;
  deps.tokens.set(origin, scope, authorization, (token.expiresIn - 10) * 1000);
  return authorization;
}
