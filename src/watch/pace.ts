// When the watch asks upstream: the checks of one round spread evenly over the interval (so a
// thousand tags are not asked in one burst at the top of the hour), and never more than a
// given rate of requests to one registry. Time comes from a Clock, so tests drive it by hand.

export interface Clock {
  now(): number;
  /** Resolves after `ms` (at once for ms <= 0), or rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const timer = setTimeout(done, Math.max(0, ms));
      function done(): void {
        signal?.removeEventListener('abort', abort);
        resolve();
      }
      function abort(): void {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      }
      signal?.addEventListener('abort', abort, { once: true });
    }),
};

/**
 * When each of `count` checks of a round starting at `start` is due: evenly spaced over
 * `intervalMs`, the first at once. Registries are interleaved by the caller's order.
 */
export function spread(count: number, start: number, intervalMs: number): number[] {
  const gap = count === 0 ? 0 : intervalMs / count;
  return Array.from({ length: count }, (_, i) => Math.round(start + i * gap));
}

/**
 * Orders a round so that consecutive checks go to different registries where it can (round
 * robin over registries, each in its given order): a registry with many tags does not make the
 * others wait behind its rate limit.
 */
export function interleave<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  const queues = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const queue = queues.get(key) ?? [];
    queues.set(key, queue);
    queue.push(item);
  }
  const out: T[] = [];
  for (let round = 0; out.length < items.length; round += 1) {
    for (const queue of queues.values()) {
      const item = queue[round];
      if (item !== undefined) out.push(item);
    }
  }
  return out;
}

/**
 * At most `perSecond` requests per key, evenly spaced (no bursts): each `take` waits for the
 * next free slot of its key. Slots are reserved when asked, so concurrent takers queue up.
 */
export class RateLimiter {
  readonly #gapMs: number;
  readonly #clock: Clock;
  readonly #next = new Map<string, number>();

  constructor(perSecond: number, clock: Clock) {
    this.#gapMs = 1000 / perSecond;
    this.#clock = clock;
  }

  async take(key: string, signal?: AbortSignal): Promise<void> {
    const now = this.#clock.now();
    const at = Math.max(now, this.#next.get(key) ?? now);
    this.#next.set(key, at + this.#gapMs);
    if (at > now) await this.#clock.sleep(at - now, signal);
  }
}
