// Turns what the modules report (a request's completion, an upstream answer, a tunnel, an
// eviction pass, a failed cache write) into metric updates. The shapes are plain data, defined
// here, so that this module imports nothing of ours and the reporting modules nothing of this.
import type { Metrics } from './registry.ts';

export type CacheResult = 'hit' | 'miss' | 'revalidated' | 'stale' | 'bypass';

/** One registry request, once its response is over. */
export interface RequestSummary {
  /** `host:port` of the intercepted registry. */
  readonly registry: string;
  /** How it reached the proxy: `proxy` (HTTPS_PROXY) or `mirror` (the mirror listener). */
  readonly mode: 'proxy' | 'mirror';
  readonly kind: 'manifest' | 'blob' | 'other';
  readonly cache: CacheResult;
  /** Body bytes sent to the client. */
  readonly bytes: number;
  readonly seconds: number;
  /** It joined a fill another request started. */
  readonly shared: boolean;
}

/** Bytes served from what the cache holds; the rest came from upstream as they were sent. */
const FROM_CACHE: ReadonlySet<CacheResult> = new Set(['hit', 'revalidated', 'stale']);

export function recordRequest(metrics: Metrics, s: RequestSummary): void {
  metrics.requests.inc({ registry: s.registry, mode: s.mode, kind: s.kind, cache: s.cache });
  metrics.requestDuration.observe({ kind: s.kind, cache: s.cache }, s.seconds);
  const source = FROM_CACHE.has(s.cache) ? 'cache' : 'upstream';
  if (s.bytes > 0) metrics.bytes.inc({ registry: s.registry, source }, s.bytes);
  if (s.shared) metrics.fillWaiters.inc();
}

/** One upstream request: its answer (status and headers), or why there was none. */
export type UpstreamSummary = { readonly registry: string; readonly method: string } & (
  | { readonly status: number; readonly headers: Readonly<Record<string, unknown>> }
  | { readonly failure: 'unreachable' | 'timeout' | 'tls' }
);

/** Methods a registry client sends; anything else is counted as `other`. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

export function recordUpstream(metrics: Metrics, s: UpstreamSummary): void {
  const { registry } = s;
  if ('failure' in s) {
    metrics.upstreamErrors.inc({ registry, reason: s.failure });
    return;
  }
  const method = METHODS.has(s.method) ? s.method : 'other';
  metrics.upstreamRequests.inc({ registry, method, status: String(s.status) });
  const remaining = rateLimitCount(s.headers['ratelimit-remaining']);
  const limit = rateLimitCount(s.headers['ratelimit-limit']);
  if (remaining !== undefined) metrics.rateLimitRemaining.set({ registry }, remaining);
  if (limit !== undefined) metrics.rateLimitLimit.set({ registry }, limit);
}

/**
 * The count of a Docker Hub rate-limit header, `100;w=21600` (100 per 21600 s window): the
 * number before the first `;`. Anything else is ignored. Pure.
 */
export function rateLimitCount(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d{1,12})\s*(?:;|$)/.exec(value);
  return match ? Number(match[1]) : undefined;
}

export function recordTunnelOpened(metrics: Metrics): void {
  metrics.tunnelsOpen.inc();
}

export function recordTunnelClosed(metrics: Metrics, bytes: { up: number; down: number }): void {
  metrics.tunnelsOpen.dec();
  metrics.tunnelBytes.inc({ direction: 'up' }, bytes.up);
  metrics.tunnelBytes.inc({ direction: 'down' }, bytes.down);
}

/** The images one eviction pass removed. */
export function recordEvictions(
  metrics: Metrics,
  evicted: ReadonlyArray<{ readonly reason: string; readonly bytes: number }>,
): void {
  for (const image of evicted) {
    metrics.evictions.inc({ reason: image.reason });
    metrics.evictedBytes.inc(image.bytes);
  }
}

/** `code`: the errno code (ENOSPC, EACCES, EROFS...) or the error's name. */
export function recordCacheWriteFailure(metrics: Metrics, code: string): void {
  metrics.cacheWriteFailures.inc({ code });
}

/** A watched tag changed state (`kind`: the new one). */
export function recordWatchEvent(metrics: Metrics, registry: string, kind: string): void {
  metrics.watchEvents.inc({ registry, kind });
}

/** How many watched tags are in each state now, per registry: replaces the previous counts. */
export function recordWatchedTags(
  metrics: Metrics,
  counts: ReadonlyArray<{ readonly registry: string; readonly state: string; readonly count: number }>,
): void {
  metrics.watchedTags.reset();
  for (const { registry, state, count } of counts) metrics.watchedTags.set({ registry, state }, count);
}

/** A registry mirror was skipped, and why (issue 19). */
export function recordMirrorFailure(
  metrics: Metrics,
  registry: string,
  mirror: string,
  reason: string,
): void {
  metrics.mirrorFailures.inc({ registry, mirror, reason });
}

/** Which source (a mirror's host:port, or `registry`) served a blob, manifest or tag. */
export function recordSourceFetch(metrics: Metrics, registry: string, source: string, kind: string): void {
  metrics.sourceFetches.inc({ registry, source, kind });
}
