// A short history of the metrics for the dashboard (/ui/): the counters read every few seconds
// into a bounded ring, so that its charts have the last hour on load, and per registry what the
// last minutes say about its upstream (upstream-state.ts). Read from the Metrics registry only,
// in memory, lost on restart: Prometheus keeps the long history.
import type { Metrics } from './registry.ts';
import { NO_COUNTS, registryStates, type RegistryCounts, type RegistryState } from './upstream-state.ts';

/** The counters at one moment, summed over every registry, and per registry. */
export interface Sample {
  /** ms since the epoch. */
  readonly t: number;
  readonly total: RegistryCounts;
  readonly registries: Readonly<Record<string, RegistryCounts>>;
  /** ratelimit-remaining as each registry last said it (Docker Hub). */
  readonly rateLimit: Readonly<Record<string, { remaining?: number; limit?: number }>>;
}

/** What happened between two samples, as rates and ratios (null: nothing to divide). */
export interface Point {
  readonly t: number;
  readonly requestsPerSecond: number;
  /** Of the requests the cache could answer (hit, revalidated, stale, miss), served from it. */
  readonly hitRatio: number | null;
  /** Of the body bytes sent, those that came from the cache. */
  readonly byteHitRatio: number | null;
  readonly cacheBytesPerSecond: number;
  readonly upstreamBytesPerSecond: number;
}

export interface HistoryOptions {
  readonly metrics: Metrics;
  /** Time between samples. */
  readonly intervalMs: number;
  /** Samples kept (an hour at 2 s: 1800). */
  readonly keep: number;
  /** The window a registry's state is judged on. */
  readonly windowMs: number;
  readonly now?: () => number;
}

const FROM_CACHE = new Set(['hit', 'revalidated', 'stale']);
export class History {
  readonly #options: HistoryOptions;
  readonly #samples: Sample[] = [];
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: HistoryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Samples now and then every interval, until stop(); the timer keeps no process alive. */
  start(): void {
    if (this.#timer) return;
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Reads the counters now and keeps the reading. */
  async sample(): Promise<Sample> {
    const sample = await readSample(this.#options.metrics, this.#now());
    this.#samples.push(sample);
    if (this.#samples.length > this.#options.keep) this.#samples.shift();
    return sample;
  }

  /** The points after `since` (ms), oldest first. */
  points(since = 0): Point[] {
    const out: Point[] = [];
    for (let i = 1; i < this.#samples.length; i++) {
      const before = this.#samples[i - 1]!;
      const after = this.#samples[i]!;
      if (after.t > since) out.push(pointBetween(before, after));
    }
    return out;
  }

  /** The counters now (not waiting for the next sample), and each registry's state. */
  async current(): Promise<{ totals: RegistryCounts; registries: RegistryState[] }> {
    const now = await readSample(this.#options.metrics, this.#now());
    const windowStart = now.t - this.#options.windowMs;
    const earlier = this.#samples.find((s) => s.t >= windowStart) ?? this.#samples[0];
    return { totals: now.total, registries: registryStates(now, earlier, this.#samples) };
  }
}

function pointBetween(before: Sample, after: Sample): Point {
  const seconds = Math.max(0.001, (after.t - before.t) / 1000);
  const d = (key: 'requests' | 'answerable' | 'hits' | 'bytesCache' | 'bytesUpstream') =>
    after.total[key] - before.total[key];
  const bytes = d('bytesCache') + d('bytesUpstream');
  return {
    t: after.t,
    requestsPerSecond: d('requests') / seconds,
    hitRatio: d('answerable') > 0 ? d('hits') / d('answerable') : null,
    byteHitRatio: bytes > 0 ? d('bytesCache') / bytes : null,
    cacheBytesPerSecond: d('bytesCache') / seconds,
    upstreamBytesPerSecond: d('bytesUpstream') / seconds,
  };
}

type Mutable = { -readonly [K in keyof RegistryCounts]: RegistryCounts[K] };

/** One reading of the counters the dashboard needs, by registry and summed. */
export async function readSample(metrics: Metrics, t: number): Promise<Sample> {
  const registries: Record<string, Mutable> = {};
  const total: Mutable = { ...NO_COUNTS, failures: {} };
  const of = (registry: string) => (registries[registry] ??= { ...NO_COUNTS, failures: {} });
  const add = (registry: string, update: (counts: Mutable) => void) => {
    update(of(registry));
    update(total);
  };
  for (const { labels, value } of (await metrics.requests.get()).values) {
    const cache = String(labels.cache);
    add(String(labels.registry), (c) => {
      c.requests += value;
      if (cache !== 'bypass') c.answerable += value;
      if (FROM_CACHE.has(cache)) c.hits += value;
      if (cache === 'stale') c.stale += value;
    });
  }
  for (const { labels, value } of (await metrics.bytes.get()).values) {
    add(String(labels.registry), (c) => {
      if (labels.source === 'cache') c.bytesCache += value;
      else c.bytesUpstream += value;
    });
  }
  for (const { labels, value } of (await metrics.upstreamRequests.get()).values) {
    const status = Number(labels.status);
    const failed = status >= 500 || status === 429;
    add(String(labels.registry), (c) => {
      if (failed) {
        c.upstreamFailed += value;
        c.failures = { ...c.failures, [String(status)]: (c.failures[String(status)] ?? 0) + value };
      } else c.upstreamOk += value;
    });
  }
  for (const { labels, value } of (await metrics.upstreamErrors.get()).values) {
    const reason = String(labels.reason);
    add(String(labels.registry), (c) => {
      c.upstreamFailed += value;
      c.failures = { ...c.failures, [reason]: (c.failures[reason] ?? 0) + value };
    });
  }
  return { t, total, registries, rateLimit: await readRateLimits(metrics) };
}

async function readRateLimits(metrics: Metrics): Promise<Sample['rateLimit']> {
  const out: Record<string, { remaining?: number; limit?: number }> = {};
  for (const { labels, value } of (await metrics.rateLimitRemaining.get()).values) {
    out[String(labels.registry)] = { ...out[String(labels.registry)], remaining: value };
  }
  for (const { labels, value } of (await metrics.rateLimitLimit.get()).values) {
    out[String(labels.registry)] = { ...out[String(labels.registry)], limit: value };
  }
  return out;
}
