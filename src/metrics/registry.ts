// Every metric pullthrough exposes, each defined once here with its help text, on a Registry of
// its own (never prom-client's global one: tests run many apps in one process). Label values
// stay bounded: `registry` is an intercepted registry's host:port, never a repository or path.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What is read at scrape time rather than counted as it happens. */
export interface ScrapeSources {
  /** Bytes and files the cache index holds; undefined when the cache keeps no index. */
  cacheUsage(): { bytes: number; files: number } | undefined;
  fillsInFlight(): number;
  certificatesIssued(): number;
}

const NONE: ScrapeSources = {
  cacheUsage: () => undefined,
  fillsInFlight: () => 0,
  certificatesIssued: () => 0,
};

/** From a cached manifest in a millisecond to a multi-GiB layer over a slow link. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

/** Default process metrics that break the naming rules (prom-client 15). */
const LINT_FAILURES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The one table of every metric (pure data: names, help, labels, buckets), longer than the
 * 80-line rule on purpose: split, the names would no longer be seen together.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters, which promtool's lint rejects; each is the sum over the type
  // label of the gauge beside it (nodejs_active_handles{type}...), which stays.
  for (const name of LINT_FAILURES) registry.removeSingleMetric(name);
  let sources = NONE;
  const registers = [registry];
  const metrics = {
    registry,
    /** Where the scrape-time values come from (the parts are built after the metrics). */
    readFrom(given: ScrapeSources): void {
      sources = given;
    },
    requests: new Counter({
      name: 'pullthrough_requests_total',
      help: 'Registry requests answered, by registry, mode (proxy: HTTPS_PROXY clients; mirror: the mirror listener), kind (manifest, blob, other) and what the cache did (hit, miss, revalidated, stale, bypass).',
      labelNames: ['registry', 'mode', 'kind', 'cache'] as const,
      registers,
    }),
    requestDuration: new Histogram({
      name: 'pullthrough_request_duration_seconds',
      help: 'Time from a registry request to the end of its response, by kind and what the cache did.',
      labelNames: ['kind', 'cache'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    }),
    bytes: new Counter({
      name: 'pullthrough_bytes_total',
      help: 'Body bytes sent to clients of registries, by where they came from (cache: hits, revalidated and stale serves; upstream: misses and relayed requests).',
      labelNames: ['registry', 'source'] as const,
      registers,
    }),
    fillWaiters: new Counter({
      name: 'pullthrough_fill_waiters_total',
      help: 'Clients that joined a fill another client started, instead of fetching upstream again.',
      registers,
    }),
    upstreamRequests: new Counter({
      name: 'pullthrough_upstream_requests_total',
      help: 'Responses from upstream servers, by registry (other: redirect targets and token services), method and status.',
      labelNames: ['registry', 'method', 'status'] as const,
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'pullthrough_upstream_errors_total',
      help: 'Upstream requests that got no answer, by registry and reason (unreachable, timeout, tls).',
      labelNames: ['registry', 'reason'] as const,
      registers,
    }),
    rateLimitRemaining: new Gauge({
      name: 'pullthrough_upstream_ratelimit_remaining',
      help: 'Pulls left in the window, as the registry last said in its ratelimit-remaining header (Docker Hub).',
      labelNames: ['registry'] as const,
      registers,
    }),
    rateLimitLimit: new Gauge({
      name: 'pullthrough_upstream_ratelimit_limit',
      help: 'Pulls allowed per window, as the registry last said in its ratelimit-limit header (Docker Hub).',
      labelNames: ['registry'] as const,
      registers,
    }),
    evictions: new Counter({
      name: 'pullthrough_evictions_total',
      help: 'Images evicted from the cache, by reason (inactive, cap, budget, minFree).',
      labelNames: ['reason'] as const,
      registers,
    }),
    evictedBytes: new Counter({
      name: 'pullthrough_evicted_bytes_total',
      help: 'Bytes of files removed from the cache by eviction.',
      registers,
    }),
    cacheWriteFailures: new Counter({
      name: 'pullthrough_cache_write_failures_total',
      help: 'Writes to the cache that failed (the request was served uncached), by error code.',
      labelNames: ['code'] as const,
      registers,
    }),
    mirrorFailures: new Counter({
      name: 'pullthrough_mirror_failures_total',
      help: 'Requests to registry mirrors that were skipped, by registry, mirror (host:port) and reason (unreachable, timeout, tls, 5xx, 429, denied: 401/403, digest: wrong bytes, body: cut off, tag: named a digest the registry lacks).',
      labelNames: ['registry', 'mirror', 'reason'] as const,
      registers,
    }),
    sourceFetches: new Counter({
      name: 'pullthrough_source_fetches_total',
      help: 'Fetches for registries that have mirrors, by registry, the source that served (a mirror host:port, or registry) and kind (blob, manifest, tag).',
      labelNames: ['registry', 'source', 'kind'] as const,
      registers,
    }),
    tunnelsOpen: new Gauge({
      name: 'pullthrough_tunnels_open',
      help: 'CONNECT tunnels to hosts that are not intercepted, open now.',
      registers,
    }),
    watchedTags: new Gauge({
      name: 'pullthrough_watched_tags',
      help: 'Tags watched upstream (watch.interval), by registry and state (pending, ok, changed, vanished, unauthorized, unreachable).',
      labelNames: ['registry', 'state'] as const,
      registers,
    }),
    watchEvents: new Counter({
      name: 'pullthrough_watch_events_total',
      help: 'Changes of state of watched tags, by registry and kind (the new state: changed, vanished, unauthorized, unreachable, ok).',
      labelNames: ['registry', 'kind'] as const,
      registers,
    }),
    tunnelBytes: new Counter({
      name: 'pullthrough_tunnel_bytes_total',
      help: 'Bytes carried by closed tunnels, by direction (up: client to server, down: server to client).',
      labelNames: ['direction'] as const,
      registers,
    }),
  };
  new Gauge({
    name: 'pullthrough_fills_in_flight',
    help: 'Upstream fetches of blobs running now, each shared by every client that asks meanwhile.',
    registers,
    collect() {
      this.set(sources.fillsInFlight());
    },
  });
  new Counter({
    name: 'pullthrough_certificates_issued_total',
    help: 'Leaf certificates issued for intercepted hosts.',
    registers,
    collect() {
      this.reset();
      this.inc(sources.certificatesIssued());
    },
  });
  // Without an index (a read-only cache) the size is not counted: the gauges read 0.
  new Gauge({
    name: 'pullthrough_cache_size_bytes',
    help: 'Bytes of blobs and manifests the cache holds, as its index counts them.',
    registers,
    collect() {
      const usage = sources.cacheUsage();
      if (usage) this.set(usage.bytes);
      else this.reset();
    },
  });
  new Gauge({
    name: 'pullthrough_cache_files',
    help: 'Blobs and manifests the cache holds, as its index counts them.',
    registers,
    collect() {
      const usage = sources.cacheUsage();
      if (usage) this.set(usage.files);
      else this.reset();
    },
  });
  return metrics;
}
