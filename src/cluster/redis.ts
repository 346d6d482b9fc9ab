// The connection to Redis (ioredis) and whether it is up: commands fail at once while it is down
// (no offline queue: a pull must not wait on a Redis that is gone), ioredis reconnects forever in
// the background, and each outage and each recovery is logged once. Callers treat a failed
// command as "no coordination now" and go on locally.
import { Redis } from 'ioredis';
import type { Logger } from '../log.ts';

/** A command slower than this counts as Redis being down for that call (ms). */
const COMMAND_TIMEOUT_MS = 2000;
/** Reconnect backoff: 100 ms more per attempt, at most this (ms). */
const MAX_RETRY_DELAY_MS = 2000;

export class RedisLink {
  readonly client: Redis;
  readonly #url: string;
  readonly #log: Logger;
  #up = false;
  /** Logged "down" for the current outage already (or never been up: logged at start). */
  #reportedDown = false;
  #stopped = false;
  readonly #listeners = new Set<(up: boolean) => void>();

  constructor(url: string, log: Logger) {
    this.#url = url;
    this.#log = log;
    this.client = this.connection();
    this.client.on('ready', () => this.#changed(true));
    this.client.on('close', () => this.#changed(false));
  }

  /** A new connection with the same settings (pub/sub needs one of its own). */
  connection(): Redis {
    const client = new Redis(this.#url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RETRY_DELAY_MS),
    });
    // Errors are reported by the close/ready transitions; an 'error' with no listener would throw.
    client.on('error', () => undefined);
    return client;
  }

  get up(): boolean {
    return this.#up;
  }

  /** Connects; resolves either way (down at start: degraded until it comes). */
  async start(): Promise<void> {
    await this.client.connect().catch(() => this.#changed(false));
  }

  /** Told of every change between up and down. */
  onChange(listener: (up: boolean) => void): void {
    this.#listeners.add(listener);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#listeners.clear();
    this.client.disconnect();
    return Promise.resolve();
  }

  #changed(up: boolean): void {
    if (this.#stopped || (up === this.#up && (up || this.#reportedDown))) return;
    this.#up = up;
    if (up) {
      if (this.#reportedDown) this.#log.info('redis reachable again: coordinating through it');
      this.#reportedDown = false;
    } else {
      this.#reportedDown = true;
      this.#log.warn(
        { redis: redacted(this.#url) },
        'redis unreachable: coordinating locally until it is back',
      );
    }
    for (const listener of this.#listeners) listener(up);
  }
}

/** The URL without its password, for the log. */
export function redacted(url: string): string {
  const parsed = URL.parse(url);
  if (!parsed) return '[unparsable]';
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
