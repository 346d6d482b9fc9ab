// Per-digest fill leases: `<prefix>lease:<digest>` holds the replica that fetches that digest
// from upstream (SET NX PX), renewed while its fill runs and deleted at the end, only by its
// holder (a compare-and-delete script). A holder that dies stops renewing: the key expires
// after leaseTtl and the next replica to ask takes the fill over.
import type { Redis } from 'ioredis';
import type { Member } from './members.ts';

/** Deletes or extends the key only while it still holds our value. */
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;

/** Who fetches a digest, as take() found it. */
export type Taken =
  /** We do, holding `lease` (release it at the end). */
  | { readonly kind: 'ours'; readonly lease: Lease }
  /** Another replica does: stream from it. */
  | { readonly kind: 'theirs'; readonly holder: Member }
  /** Redis cannot be asked: coordinate locally. */
  | { readonly kind: 'offline' };

export interface Lease {
  /** Stops renewing and deletes the key if it is still ours. Safe more than once. */
  release(): void;
}

export class Leases {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #me: Member;
  readonly #ttlMs: number;

  constructor(redis: Redis, options: { prefix: string; me: Member; ttlMs: number }) {
    this.#redis = redis;
    this.#prefix = options.prefix;
    this.#me = options.me;
    this.#ttlMs = options.ttlMs;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Takes the lease of `digest` if nobody holds it, or says who does. */
  async take(digest: string): Promise<Taken> {
    const key = `${this.#prefix}lease:${digest}`;
    const value = JSON.stringify(this.#me);
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const set = await this.#redis.set(key, value, 'PX', this.#ttlMs, 'NX');
        if (set === 'OK') return { kind: 'ours', lease: this.#held(key, value) };
        // Released between the SET and the GET: try again.
        const holder = await this.#redis.get(key);
        if (holder === value) return { kind: 'ours', lease: this.#held(key, value) };
        if (holder !== null) return { kind: 'theirs', holder: JSON.parse(holder) as Member };
      }
      return { kind: 'offline' };
    } catch {
      return { kind: 'offline' };
    }
  }

  #held(key: string, value: string): Lease {
    // Renewed three times per TTL: one missed renewal (a slow Redis) does not lose the lease.
    const timer = setInterval(() => {
      this.#redis.eval(RENEW, 1, key, value, String(this.#ttlMs)).catch(() => undefined);
    }, this.#ttlMs / 3).unref();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        this.#redis.eval(RELEASE, 1, key, value).catch(() => undefined);
      },
    };
  }
}
