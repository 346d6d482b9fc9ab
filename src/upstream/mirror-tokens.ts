// Anonymous tokens for mirrors that want one (distribution's token auth, Harbor): on a 401 with
// a Bearer challenge, the challenge's realm is asked, with no credentials, for the scope it
// names, as any anonymous client does; the token is kept per mirror and scope until it expires.
// A client's credentials never go to a mirror or its realm.
import { LRUCache } from 'lru-cache';
import { readCapped } from './body.ts';
import { parseChallenge, scopeOf } from './login.ts';
import { MAX_TOKEN_RESPONSE, parseTokenResponse } from './token-response.ts';
import type { UpstreamRequest, UpstreamResponse } from './types.ts';

export type Send = (request: UpstreamRequest) => Promise<UpstreamResponse>;

export class MirrorTokens {
  readonly #tokens = new LRUCache<string, string>({ max: 10_000, ttl: 60_000 });

  /** `Bearer …` kept for this mirror and the scope of `path`, if any. */
  cached(origin: string, path: string): string | undefined {
    return this.#tokens.get(`${origin} ${scopeOf(path)}`);
  }

  /**
   * An anonymous token for the challenge of a 401 from `origin`, or undefined when it names none
   * (not Bearer, a realm that is neither https nor the mirror's own origin, no token given).
   */
  async anonymous(origin: string, path: string, challenge: string, send: Send): Promise<string | undefined> {
    const parsed = parseChallenge(challenge);
    const realm = parsed?.scheme === 'bearer' ? URL.parse(parsed.params['realm'] ?? '') : null;
    if (!parsed || !realm || (realm.protocol !== 'https:' && realm.origin !== origin)) return undefined;
    for (const name of ['service', 'scope'] as const) {
      const value = parsed.params[name];
      if (value !== undefined) realm.searchParams.set(name, value);
    }
    const response = await send({
      origin: realm.origin,
      method: 'GET',
      path: `${realm.pathname}${realm.search}`,
      headers: { accept: 'application/json' },
    });
    const body = await readCapped(response, MAX_TOKEN_RESPONSE);
    const token = response.statusCode === 200 && body ? parseTokenResponse(body) : undefined;
    const value = token?.tokens[0];
    if (!token || value === undefined) return undefined;
    const authorization = `Bearer ${value}`;
    // Renewed a little early so that a request never goes out with a token about to lapse.
    const ttl = Math.max(1, token.expiresIn - 10) * 1000;
    this.#tokens.set(`${origin} ${scopeOf(path)}`, authorization, { ttl });
    return authorization;
  }
}
