// Who may be served content from the cache. The upstream registry decides, and we remember:
// - a digest that upstream served to a request carrying no credentials is public;
// - a credential that upstream accepted for a repository (any 2xx it answered with it) is
//   granted that repository for a while, keyed by a hash of the credential (never stored);
// - a token that a token server handed out to an anonymous request is no credential at all:
//   what upstream serves under it is public (Docker Hub serves public images only that way).
// Anything else is checked upstream with the client's own credential before it is served.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export interface AccessOptions {
  /** How long an upstream "yes" for a credential and repository is trusted. */
  readonly grantTtlMs: number;
  /** Where public digests are remembered across restarts (grants are short-lived: memory only). */
  readonly marks?: { has(digest: string): Promise<boolean>; add(digest: string): Promise<void> };
}

export class Access {
  readonly #public = new LRUCache<string, true>({ max: 1_000_000 });
  readonly #grants: LRUCache<string, true>;
  // Token servers' anonymous tokens live minutes (Docker Hub: 5); an hour covers any of them.
  readonly #anonymous = new LRUCache<string, true>({ max: 100_000, ttl: 3_600_000 });

  readonly #marks: AccessOptions['marks'];

  constructor(options: AccessOptions) {
    this.#grants = new LRUCache<string, true>({ max: 100_000, ttl: options.grantTtlMs });
    this.#marks = options.marks;
  }

  /** `authorization` (e.g. `Bearer <token>`) was issued to a request that proved nothing. */
  markAnonymous(authorization: string): void {
    this.#anonymous.set(hash(authorization), true);
  }

  /** No credential, or one that proves nothing: what upstream serves to it is public. */
  isAnonymous(authorization: string | undefined): boolean {
    return !authorization || this.#anonymous.has(hash(authorization));
  }

  markPublic(digest: string): void {
    if (this.#public.has(digest)) return;
    this.#public.set(digest, true);
    // Best effort: if it cannot be written, a restarted proxy asks upstream again (safe default).
    void this.#marks?.add(digest).catch(() => undefined);
  }

  async isPublic(digest: string): Promise<boolean> {
    if (this.#public.has(digest)) return true;
    if (!(await this.#marks?.has(digest))) return false;
    this.#public.set(digest, true);
    return true;
  }

  grant(host: string, repo: string, authorization: string | undefined): void {
    if (authorization) this.#grants.set(grantKey(host, repo, authorization), true);
  }

  isGranted(host: string, repo: string, authorization: string | undefined): boolean {
    return (
      authorization !== undefined &&
      authorization !== '' &&
      this.#grants.has(grantKey(host, repo, authorization))
    );
  }
}

function grantKey(host: string, repo: string, authorization: string): string {
  return hash(`${host}\0${repo}\0${authorization}`);
}

function hash(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}
