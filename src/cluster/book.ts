// The cache's books across replicas: one replica at a time, the holder of the lease
// `<prefix>book` (renewed like a fill lease, taken over when it expires), opens the index and runs
// the evictor; every replica sends what its CacheBook is told to the stream `<prefix>book:events`
// (bounded) that the bookkeeper applies, so the LRU order is the fleet's, and keeps the digests
// its clients read in `<prefix>reading:<id>` (expiring with its heartbeat), which the evictor asks
// through their union. Redis down: no replica holds the lease, so nobody evicts.
import type { Redis } from 'ioredis';
import { Readers, type CacheBook } from '../cache/book.ts';
import type { CacheControl } from '../cache/control.ts';
import { NotAdmittedError } from '../cache/errors.ts';
import type { Source } from '../cache/index.ts';
import type { Keep, KeptBooks } from '../cache/open.ts';
import type { Logger } from '../log.ts';
import type { Member } from './members.ts';

/** Events past this many are trimmed (approximately) from the stream: a keeper that far behind loses recency, not content. */
const STREAM_MAX = 100_000;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

/** What a replica's book was told, and when (`at`, its clock: the order of use across the fleet). */
type BookEvent = { at: number } & (
  | { k: 'u'; d: string }
  | { k: 'b'; d: string; s: number; src: Source }
  | { k: 'm'; d: string; c: string; src: Source }
  | { k: 't'; h: string; r: string; t: string; d: string }
);
type Told = BookEvent extends infer E ? (E extends unknown ? Omit<E, 'at'> : never) : never;

export interface ClusterBookOptions {
  readonly redis: Redis;
  readonly prefix: string;
  readonly me: Member;
  readonly leaseTtlMs: number;
  readonly heartbeatMs: number;
  /** The members whose readers count (the keeper's view of the cluster). */
  readonly members: () => readonly Member[];
  readonly keep: Keep;
  readonly log: Logger;
  /** cache.maxSize: a fill larger than the whole cap is refused on every replica. */
  readonly maxSize: number;
  /** How often the keeper drains the stream and reads the fleet's readers (ms). */
  readonly drainMs?: number;
}

export class ClusterBook implements CacheBook {
  readonly #o: ClusterBookOptions;
  readonly #readers = new Readers();
  readonly #key: { lease: string; events: string; reading: string; usage: string };
  readonly #value: string;
  /** Digests read on any replica, as last read from Redis by the keeper. */
  #fleetReading = new Set<string>();
  #kept: KeptBooks | undefined;
  #taking = false;
  #lastId = '$';
  #usage: { bytes: number; files: number } | undefined;
  #keeper: string | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  #closed = false;
  /** The time of the event being applied: the index records it rather than the drain's. */
  #applying: number | undefined;

  constructor(options: ClusterBookOptions) {
    this.#o = options;
    const { prefix, me } = options;
    this.#key = {
      lease: `${prefix}book`,
      events: `${prefix}book:events`,
      reading: `${prefix}reading:${me.id}`,
      usage: `${prefix}book:usage`,
    };
    this.#value = JSON.stringify(me);
  }

  start(): void {
    const every = (ms: number, run: () => Promise<void>) => {
      let busy = false;
      const tick = () => {
        if (busy || this.#closed) return;
        busy = true;
        void run()
          .catch(() => undefined)
          .finally(() => (busy = false));
      };
      tick();
      this.#timers.push(setInterval(tick, ms).unref());
    };
    every(this.#o.leaseTtlMs / 3, () => this.#lease());
    every(this.#o.drainMs ?? 250, () => this.#tick());
  }

  /** This replica's control of the index while it keeps the books (the admin API); undefined otherwise. */
  get control(): CacheControl | undefined {
    return this.#kept?.control;
  }

  get keeping(): boolean {
    return this.#kept !== undefined;
  }

  /** The id of the replica keeping the books, as last read (this one's while it does). */
  get keeper(): string | undefined {
    return this.#kept ? this.#o.me.id : this.#keeper;
  }

  reading(digest: string): () => void {
    const first = !this.#readers.has(digest);
    const release = this.#readers.acquire(digest);
    if (first) this.#o.redis.sadd(this.#key.reading, digest).catch(() => undefined);
    return () => {
      release();
      if (!this.#readers.has(digest)) this.#o.redis.srem(this.#key.reading, digest).catch(() => undefined);
    };
  }

  inUse(digest: string): boolean {
    return this.#readers.has(digest) || this.#fleetReading.has(digest);
  }

  used(digest: string): void {
    this.#send({ k: 'u', d: digest });
  }

  /**
   * The keeper's evictor decides; elsewhere only a fill larger than the whole cap is refused, and
   * the keeper evicts after the others' stores.
   */
  admit(size: number | undefined, host: string): Promise<NotAdmittedError | undefined> {
    if (this.#kept) return this.#kept.book.admit(size, host);
    if ((size ?? 0) <= this.#o.maxSize) return Promise.resolve(undefined);
    return Promise.resolve(new NotAdmittedError('larger than the cache allows'));
  }

  storedBlob(digest: string, size: number, source: Source): void {
    this.#send({ k: 'b', d: digest, s: size, src: source });
  }

  storedManifest(digest: string, content: Uint8Array, source: Source): void {
    this.#send({ k: 'm', d: digest, c: Buffer.from(content).toString('base64'), src: source });
  }

  tagged(host: string, repository: string, tag: string, digest: string): void {
    this.#send({ k: 't', h: host, r: repository, t: tag, d: digest });
  }

  /** The keeper's count (published with each drain); undefined before one is known. */
  usage(): { bytes: number; files: number } | undefined {
    return this.#kept?.book.usage() ?? this.#usage;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    await this.#drop();
    await this.#o.redis.eval(RELEASE, 1, this.#key.lease, this.#value).catch(() => undefined);
    await this.#o.redis.del(this.#key.reading).catch(() => undefined);
  }

  #send(told: Told): void {
    const event = { ...told, at: Date.now() };
    this.#o.redis
      .xadd(this.#key.events, 'MAXLEN', '~', STREAM_MAX, '*', 'e', JSON.stringify(event))
      .catch(() => undefined);
  }

  /** Renews the lease while held (dropping the books when it is lost), or takes it when free. */
  async #lease(): Promise<void> {
    const { redis, leaseTtlMs } = this.#o;
    const { lease } = this.#key;
    if (this.#kept) {
      const renewed = await redis.eval(RENEW, 1, lease, this.#value, String(leaseTtlMs)).catch(() => 0);
      if (renewed !== 1) await this.#drop('lost');
      return;
    }
    if (this.#taking) return;
    if ((await redis.set(lease, this.#value, 'PX', leaseTtlMs, 'NX')) !== 'OK') return;
    this.#taking = true;
    try {
      // Events from here on are applied after the rebuild, which sees what was stored before;
      // the uses before it are replayed to it (#replayUses).
      const last = await redis.xrevrange(this.#key.events, '+', '-', 'COUNT', 1);
      this.#lastId = last[0]?.[0] ?? '0';
      const renewal = setInterval(
        () => void redis.eval(RENEW, 1, lease, this.#value, String(leaseTtlMs)).catch(() => undefined),
        leaseTtlMs / 3,
      ).unref();
      const kept = await this.#o
        .keep(
          this.#readers,
          (digest) => this.inUse(digest),
          () => this.#applying ?? Date.now(),
        )
        .then(async (kept) => {
          if (kept) await this.#replayUses(kept, this.#lastId).catch(() => undefined);
          return kept;
        })
        .finally(() => clearInterval(renewal));
      if (!kept) return void (await redis.eval(RELEASE, 1, lease, this.#value));
      if (this.#closed) return void kept.book.close();
      this.#kept = kept;
      this.#o.log.info(
        { id: this.#o.me.id, opened: kept.index.opened },
        'cache bookkeeper: this replica keeps the books',
      );
    } finally {
      this.#taking = false;
    }
  }

  /**
   * The pulls the stream still holds up to `last`, applied at their times to the index just
   * rebuilt (whose recency is only the files' or objects' times, a second apart on S3): a use
   * only raises the recency of what the index holds, so an old one of a blob since gone is
   * harmless, unlike a replayed store.
   */
  async #replayUses(kept: KeptBooks, last: string): Promise<void> {
    if (last === '0') return;
    let from = '-';
    for (;;) {
      const page = await this.#o.redis.xrange(this.#key.events, from, last, 'COUNT', 1000);
      for (const [, fields] of page) {
        const event = fields[1] ? (JSON.parse(fields[1]) as BookEvent) : undefined;
        if (event?.k === 'u') this.#apply(kept, event);
      }
      const end = page.at(-1)?.[0];
      if (page.length < 1000 || end === undefined || end === last) return;
      from = `(${end}`;
    }
  }

  #apply(kept: KeptBooks, event: BookEvent): void {
    this.#applying = event.at;
    try {
      apply(kept, event);
    } finally {
      this.#applying = undefined;
    }
  }

  async #drop(why?: string): Promise<void> {
    const kept = this.#kept;
    if (!kept) return;
    this.#kept = undefined;
    this.#fleetReading = new Set();
    if (why) this.#o.log.warn({ id: this.#o.me.id }, 'cache bookkeeper: lease lost, books closed');
    await kept.book.close();
  }

  /** Every replica: keep its readers' set alive. The keeper: read the fleet's readers, then apply the events. */
  async #tick(): Promise<void> {
    const { redis, heartbeatMs } = this.#o;
    if (!this.#kept) {
      const [[, usage], , [, lease]] = (await redis
        .multi()
        .get(this.#key.usage)
        .pexpire(this.#key.reading, heartbeatMs * 3)
        .get(this.#key.lease)
        .exec()) as [[unknown, string | null], unknown, [unknown, string | null]];
      if (usage) this.#usage = JSON.parse(usage) as { bytes: number; files: number };
      this.#keeper = lease === null ? undefined : (JSON.parse(lease) as Member).id;
      return;
    }
    await redis.pexpire(this.#key.reading, heartbeatMs * 3);
    const ids = new Set([this.#o.me.id, ...this.#o.members().map((member) => member.id)]);
    this.#fleetReading = new Set(
      await redis.sunion(...[...ids].map((id) => `${this.#o.prefix}reading:${id}`)),
    );
    const read = await redis.xread('COUNT', 1000, 'STREAMS', this.#key.events, this.#lastId);
    const kept = this.#kept;
    if (!kept) return;
    for (const [id, fields] of read?.[0]?.[1] ?? []) {
      this.#lastId = id;
      if (!fields[1]) continue;
      this.#apply(kept, JSON.parse(fields[1]) as BookEvent);
    }
    await redis.set(this.#key.usage, JSON.stringify(kept.book.usage()), 'PX', this.#o.leaseTtlMs * 3);
  }
}

function apply(kept: KeptBooks, event: BookEvent): void {
  const { book } = kept;
  if (event.k === 'u') book.used(event.d);
  else if (event.k === 'b') book.storedBlob(event.d, event.s, event.src);
  else if (event.k === 'm') book.storedManifest(event.d, Buffer.from(event.c, 'base64'), event.src);
  else book.tagged(event.h, event.r, event.t, event.d);
}
