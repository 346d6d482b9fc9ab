// Anonymous tokens for mirrors that want one (distribution's token auth, Harbor): on a 401 with
// a Bearer challenge, the challenge's realm is asked, with no credentials, for the scope it
// names, as any anonymous client does; the token is kept per mirror and scope until it expires.
// A client's credentials never go to a mirror or its realm.
import { LRUCache } from 'lru-cache';
import { parseChallenge, scopeOf } from './login.ts';
import { requestToken, type Send } from './token-response.ts';

export type { Send } from './token-response.ts';

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
    const token = await requestToken(send, realm, parsed.params);
    if (!token) return undefined;
    this.#tokens.set(`${origin} ${scopeOf(path)}`, token.authorization, { ttl: token.ttlMs });
    return token.authorization;
  }
}
