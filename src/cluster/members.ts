// Replica membership: each replica renews its entry in the sorted set `<prefix>members` every
// heartbeat, scored with the time it expires (three heartbeats on), and keeps its id and internal
// URL in the hash `<prefix>member-info`; a replica that dies drops out once its score has passed
// (removed from both by the next heartbeat of any replica).
// One sorted set rather than a key per member with a TTL: listing it is one ZRANGE, not a SCAN of
// every key (tags and leases included) at each heartbeat. What /readyz shows is the list read back.
import type { Redis } from 'ioredis';

export interface Member {
  readonly id: string;
  /** Where its internal endpoint is reached (cluster.advertise). */
  readonly url: string;
  /** When it started (ms since the epoch). */
  readonly since: number;
}

export class Members {
  readonly #redis: Redis;
  readonly #set: string;
  readonly #info: string;
  readonly #me: Member;
  readonly #heartbeatMs: number;
  #timer: NodeJS.Timeout | undefined;
  #known: readonly Member[] = [];

  constructor(redis: Redis, options: { prefix: string; me: Member; heartbeatMs: number }) {
    this.#redis = redis;
    this.#me = options.me;
    this.#set = `${options.prefix}members`;
    this.#info = `${options.prefix}member-info`;
    this.#heartbeatMs = options.heartbeatMs;
  }

  /** The members seen at the last heartbeat (this one included while Redis answers). */
  get known(): readonly Member[] {
    return this.#known;
  }

  start(): void {
    const beat = () => {
      void this.beat().finally(() => {
        if (this.#timer) this.#timer = setTimeout(beat, this.#heartbeatMs).unref();
      });
    };
    this.#timer = setTimeout(beat, 0).unref();
  }

  /** One heartbeat: renew our entry, drop the expired, read the rest. Redis down: an empty list. */
  async beat(): Promise<void> {
    const now = Date.now();
    const { id } = this.#me;
    try {
      await this.#redis
        .multi()
        .zadd(this.#set, now + this.#heartbeatMs * 3, id)
        .hset(this.#info, id, JSON.stringify(this.#me))
        .exec();
      const gone = await this.#redis.zrangebyscore(this.#set, '-inf', now);
      if (gone.length > 0)
        await this.#redis
          .multi()
          .zrem(this.#set, ...gone)
          .hdel(this.#info, ...gone)
          .exec();
      const ids = await this.#redis.zrange(this.#set, 0, -1);
      const values = ids.length > 0 ? await this.#redis.hmget(this.#info, ...ids) : [];
      this.#known = values
        .flatMap((value) => (value ? [JSON.parse(value) as Member] : []))
        .sort((a, b) => a.id.localeCompare(b.id));
    } catch {
      this.#known = [];
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const { id } = this.#me;
    await this.#redis
      .multi()
      .zrem(this.#set, id)
      .hdel(this.#info, id)
      .exec()
      .catch(() => undefined);
  }
}
