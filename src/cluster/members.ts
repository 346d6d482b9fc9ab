// Replica membership: each replica writes `<prefix>member:<id>` (its id, internal URL and start
// time) with a TTL of three heartbeats and renews it every heartbeat, so a replica that dies
// drops out on its own. The list read back at each heartbeat is what /readyz shows.
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
  readonly #key: string;
  readonly #pattern: string;
  readonly #me: Member;
  readonly #heartbeatMs: number;
  #timer: NodeJS.Timeout | undefined;
  #known: readonly Member[] = [];

  constructor(redis: Redis, options: { prefix: string; me: Member; heartbeatMs: number }) {
    this.#redis = redis;
    this.#me = options.me;
    this.#key = `${options.prefix}member:${options.me.id}`;
    this.#pattern = `${options.prefix}member:*`;
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

  /** One heartbeat: renew our key, read everyone's. Failures leave the last list (Redis down). */
  async beat(): Promise<void> {
    try {
      await this.#redis.set(this.#key, JSON.stringify(this.#me), 'PX', this.#heartbeatMs * 3);
      this.#known = await this.#read();
    } catch {
      this.#known = [];
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#redis.del(this.#key).catch(() => undefined);
  }

  async #read(): Promise<Member[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await this.#redis.scan(cursor, 'MATCH', this.#pattern, 'COUNT', 100);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await this.#redis.mget(...keys);
    return values
      .flatMap((value) => (value ? [JSON.parse(value) as Member] : []))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}
