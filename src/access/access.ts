// Who may be served content from the cache. The upstream registry decides, and we remember its
// answers for a while (config `access`):
// - a digest of a repository that upstream served to a request carrying no credentials is
//   public: served to anyone for `publicTtl`, then upstream is asked again (with the client's
//   own credentials, which for an anonymous client is its anonymous token), so a repository
//   that turns private is noticed;
// - a credential that upstream accepted for a repository (any 2xx it answered with it) is
//   granted that repository for `grantTtl`, keyed by a hash of the credential (never stored);
// - a token that a token server handed out to an anonymous request is no credential at all:
//   what upstream serves under it is public (Docker Hub serves public images only that way).
// While upstream cannot be reached, older answers still count: public marks of any age, and
// grants up to `offlineGrace` old.
// Tokens expire within minutes, and a client then asks the token server for a new one: so a
// grant is also kept for the credential that obtained the token (its owner: the Basic header or
// the OAuth2 form a client sent to the token server, hashed), and the placeholder token the proxy
// hands out while the token server is unreachable carries that owner on.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { PublicKey } from '../cache/public-marks.ts';
import { publicKeyHash } from '../cache/public-marks.ts';

export interface AccessOptions {
  readonly grantTtlMs: number;
  readonly publicTtlMs: number;
  readonly offlineGraceMs: number;
  readonly now: () => number;
  /** Told of each answer remembered here, for other replicas to learn (cluster/); not of learn()'s. */
  readonly onAnswer?: (answer: AccessAnswer) => void;
  /** Where public marks are kept across restarts (grants are memory only). */
  readonly marks?: {
    get(key: PublicKey): Promise<number | undefined>;
    put(key: PublicKey, at: number): Promise<void>;
  };
}

/**
 * One remembered answer as other replicas learn it: its kind, its key (a hash: never the
 * credential itself) and when upstream gave it.
 */
export interface AccessAnswer {
  readonly kind: 'grant' | 'public' | 'anonymous';
  readonly id: string;
  readonly at: number;
}

/** `fresh`: trusted now. `stale`: too old to trust while upstream can be asked, still good offline. */
export type AnswerAge = 'fresh' | 'stale' | undefined;

/**
 * At most `entries` entries, with room made as they come: lru-cache's `max` allocates arrays for
 * all of them at once (26 MB of the heap for these three, which every major GC walks; found by
 * npm run bench's memory scenario), `maxSize` counting 1 an entry does not.
 */
function bounded(entries: number): { maxSize: number; sizeCalculation: () => number } {
  return { maxSize: entries, sizeCalculation: () => 1 };
}

export class Access {
  readonly #options: AccessOptions;
  readonly #public = new LRUCache<string, number>(bounded(1_000_000));
  readonly #grants: LRUCache<string, number>;
  // Token servers' anonymous tokens live minutes (Docker Hub: 5); an hour covers any of them.
  readonly #anonymous = new LRUCache<string, true>({ ...bounded(100_000), ttl: 3_600_000 });
  /** Hash of `Bearer <token>` → hash of the credential a token server gave it for. */
  readonly #owners: LRUCache<string, string>;

  constructor(options: AccessOptions) {
    this.#options = options;
    this.#grants = new LRUCache<string, number>({
      ...bounded(100_000),
      ttl: Math.max(options.grantTtlMs, options.offlineGraceMs, 1),
    });
    this.#owners = new LRUCache<string, string>({
      ...bounded(100_000),
      ttl: Math.max(options.grantTtlMs, options.offlineGraceMs, 1),
    });
  }

  /**
   * A token server gave `authorization` (`Bearer <token>`) to a request that proved `credential`
   * (its Basic header, or its OAuth2 form's user and password or refresh token): grants to the
   * token count for the credential too, and for later tokens of the same credential.
   */
  ownToken(authorization: string, credential: string): void {
    this.#owners.set(hash(authorization), hash(`owner\0${credential}`));
  }

  /** `authorization` (e.g. `Bearer <token>`) was issued to a request that proved nothing. */
  markAnonymous(authorization: string): void {
    const id = hash(authorization);
    this.#anonymous.set(id, true);
    this.#options.onAnswer?.({ kind: 'anonymous', id, at: this.#options.now() });
  }

  /** An answer another replica remembered (cluster/): kept like ours, unless ours is newer. */
  learn(answer: AccessAnswer): void {
    if (answer.kind === 'anonymous') this.#anonymous.set(answer.id, true);
    else {
      const map = answer.kind === 'grant' ? this.#grants : this.#public;
      if ((map.get(answer.id) ?? -Infinity) < answer.at) map.set(answer.id, answer.at);
    }
  }

  /** No credential, or one that proves nothing: what upstream serves to it is public. */
  isAnonymous(authorization: string | undefined): boolean {
    return !authorization || this.#anonymous.has(hash(authorization));
  }

  markPublic(key: PublicKey): void {
    const now = this.#options.now();
    const id = publicKeyHash(key);
    const previous = this.#public.get(id);
    this.#public.set(id, now);
    this.#options.onAnswer?.({ kind: 'public', id, at: now });
    // Rewritten on disk only when it has aged a little, not on every anonymous answer.
    if (previous !== undefined && now - previous < this.#options.publicTtlMs / 2) return;
    // Best effort: if it cannot be written, a restarted proxy asks upstream again (safe default).
    void this.#options.marks?.put(key, now).catch(() => undefined);
  }

  async publicAge(key: PublicKey): Promise<AnswerAge> {
    const id = publicKeyHash(key);
    let at = this.#public.get(id);
    if (at === undefined) {
      at = await this.#options.marks?.get(key);
      if (at === undefined) return undefined;
      this.#public.set(id, at);
    }
    return this.#options.now() - at < this.#options.publicTtlMs ? 'fresh' : 'stale';
  }

  grant(host: string, name: string, authorization: string | undefined): void {
    if (!authorization) return;
    const at = this.#options.now();
    const owner = this.#owners.get(hash(authorization));
    for (const who of owner === undefined ? [authorization] : [authorization, owner]) {
      const id = grantKey(host, name, who);
      this.#grants.set(id, at);
      this.#options.onAnswer?.({ kind: 'grant', id, at });
    }
  }

  grantAge(host: string, name: string, authorization: string | undefined): AnswerAge {
    if (!authorization) return undefined;
    const owner = this.#owners.get(hash(authorization));
    const own = this.#grants.get(grantKey(host, name, authorization));
    const owners = owner === undefined ? undefined : this.#grants.get(grantKey(host, name, owner));
    const at = Math.max(own ?? -Infinity, owners ?? -Infinity);
    if (at === -Infinity) return undefined;
    const age = this.#options.now() - at;
    if (age < this.#options.grantTtlMs) return 'fresh';
    return age < this.#options.offlineGraceMs ? 'stale' : undefined;
  }
}

function grantKey(host: string, name: string, authorization: string): string {
  return hash(`${host}\0${name}\0${authorization}`);
}

function hash(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}
