// Per-host TLS SecureContexts for intercepted connections: issue a leaf on first use, share one
// issuance between concurrent handshakes, renew with a third of the lifetime left, evict by LRU.
// Does not decide which host a connection is for (the proxy passes the CONNECT target).

import { LRUCache } from 'lru-cache';
import tls from 'node:tls';
import type { CertificateAuthority } from './ca.ts';
import { issueLeaf, normalizeHost } from './leaf.ts';

export interface LeafContextsOptions {
  /** Hosts kept; default 1000. A miss costs one leaf (a few ms), so this only bounds memory. */
  max?: number;
  /** Clock in ms since the epoch; tests inject one to drive renewal. Default Date.now. */
  now?: () => number;
}

interface Entry {
  /** Pending while the leaf is being issued: concurrent callers share it. */
  readonly context: Promise<tls.SecureContext>;
  /** When to issue a replacement (ms); Infinity until issuance has finished. */
  renewAt: number;
}

export class LeafContexts {
  readonly #ca: CertificateAuthority;
  readonly #now: () => number;
  readonly #cache: LRUCache<string, Entry>;
  #issued = 0;

  constructor(ca: CertificateAuthority, options: LeafContextsOptions = {}) {
    this.#ca = ca;
    this.#now = options.now ?? Date.now;
    this.#cache = new LRUCache<string, Entry>({ max: options.max ?? 1000 });
  }

  /** Certificates minted so far (for metrics and tests). */
  get issued(): number {
    return this.#issued;
  }

  /** The SecureContext for `host` (DNS name or IP literal; case and brackets do not matter). */
  async get(host: string): Promise<tls.SecureContext> {
    // No await before the cache is read and written, so concurrent callers find each other's entry.
    const key = normalizeHost(host).name;
    const entry = this.#cache.get(key);
    if (entry !== undefined && this.#now() < entry.renewAt) return entry.context;
    // Missing, or due for renewal: the old leaf is still valid for a third of its life, but a
    // new one costs only milliseconds, so replace it now rather than serve it stale.
    return this.#issue(key);
  }

  #issue(key: string): Promise<tls.SecureContext> {
    const issuedAt = this.#now();
    const context = issueLeaf(this.#ca, key, new Date(issuedAt)).then((leaf) => {
      this.#issued += 1;
      entry.renewAt = issuedAt + ((leaf.notAfter.getTime() - issuedAt) * 2) / 3;
      // The leaf without the CA: clients must already trust the CA as a root, a server may omit
      // the trust anchor (RFC 8446 §4.4.2), and verifiers ignore one sent: it only adds bytes.
      // During a CA rotation the chain holds cross.crt, the one intermediate some clients need.
      return tls.createSecureContext({ key: leaf.keyPem, cert: leaf.certPem + leaf.chainPem });
    });
    const entry: Entry = { context, renewAt: Number.POSITIVE_INFINITY };
    this.#cache.set(key, entry);
    // A failed issuance is not cached: the next handshake for this host tries again.
    void context.catch(() => {
      if (this.#cache.peek(key) === entry) this.#cache.delete(key);
    });
    return context;
  }
}
