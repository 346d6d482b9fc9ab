// @ts-check
// What the page knows, polled from the admin API: the stats (GET /admin/stats, its history
// points accumulated with ?since=), the cache summary, the listing and the pins. Views read it
// and are told when it changed.
import { call } from './api.js';

/**
 * @typedef {{ t: number, requestsPerSecond: number, hitRatio: number | null, byteHitRatio: number | null,
 *   cacheBytesPerSecond: number, upstreamBytesPerSecond: number }} Point
 * @typedef {{ requests: number, answerable: number, hits: number, stale: number, bytesCache: number,
 *   bytesUpstream: number, upstreamOk: number, upstreamFailed: number, failures: Record<string, number> }} Counts
 * @typedef {{ registry: string, condition: 'reachable' | 'degraded' | 'unreachable' | 'idle',
 *   servingStale: boolean, recentFailures: Record<string, number>, lastFailure: number | null,
 *   rateLimitRemaining: number | null, rateLimitLimit: number | null, counts: Counts }} RegistryState
 * @typedef {{ t: number, event: string, fields: Record<string, unknown> }} ActivityEvent
 * @typedef {{ registry: string, repository: string, tag: string, pulls: number, lastPulled: number }} TagPulls
 * @typedef {{ proxyPort: number, mirrorPort: number | null, registries: string[],
 *   budgets: { registry: string, maxSize: number }[], minFree: { bytes: number } | { percent: number } }} Settings
 * @typedef {{ now: number, startedAt: number, totals: Counts, points: Point[], registries: RegistryState[],
 *   fills: { digest: string, size: number | null, received: number }[], tunnelsOpen: number,
 *   events: ActivityEvent[], pulls: TagPulls[], settings: Settings }} Stats
 * @typedef {{ bytes: number, files: number, manifests: number, tags: number, images: number,
 *   registries: Record<string, number>, maxSize: number, free: number | null, filesystem: number | null }} Summary
 * @typedef {{ tag: string, digest: string, mediaType: string | null, size: number, platforms?: string[],
 *   lastUsed: number }} Tag
 * @typedef {{ registry: string, repositories: { repository: string, tags: Tag[] }[] }} RegistryListing
 * @typedef {{ config: string[], runtime: string[] }} Pins
 * @typedef {{ manifests: number, blobs: number, bytes: number, fetchedBlobs: number, fetchedBytes: number,
 *   platforms: string[] }} PullResult
 * @typedef {{ id: number, ref: string, platforms: string[] | 'all', state: 'running' | 'done' | 'failed',
 *   started: number, ended: number | null, total: number | null, done: number, result: PullResult | null,
 *   error: string | null }} WarmJob
 */

/** Points older than this are dropped (the server keeps an hour). */
const KEEP_MS = 60 * 60 * 1000;

export const state = {
  /** @type {Stats | undefined} */ stats: undefined,
  /** @type {Point[]} */ points: [],
  /** @type {Summary | undefined} */ summary: undefined,
  /** Why there is no summary: the cache keeps no index (503), or another error. */
  /** @type {string | undefined} */ summaryError: undefined,
  /** @type {RegistryListing[] | undefined} */ images: undefined,
  /** @type {Pins | undefined} */ pins: undefined,
  /** Warm jobs from the page, newest first. */
  /** @type {WarmJob[]} */ warm: [],
};

/** @type {Set<() => void>} */
const listeners = new Set();

/** @param {() => void} listener */
export function onChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function changed() {
  for (const listener of listeners) listener();
}

/** The stats and the summary (every few seconds). */
export async function refreshStats() {
  const since = state.points.at(-1)?.t ?? 0;
  /** @type {Stats} */
  const stats = await call(`/admin/stats?since=${since}`);
  state.stats = stats;
  const cutoff = stats.now - KEEP_MS;
  state.points = [...state.points, ...stats.points].filter((point) => point.t >= cutoff);
  state.warm = (await call('/admin/warm').catch(() => ({ jobs: [] }))).jobs;
  try {
    state.summary = await call('/admin/cache');
    state.summaryError = undefined;
  } catch (error) {
    state.summary = undefined;
    state.summaryError = error instanceof Error ? error.message : String(error);
  }
  changed();
}

/** The listing and the pins (less often, and after every change made from the page). */
export async function refreshImages() {
  try {
    state.images = (await call('/admin/images')).registries;
    state.pins = await call('/admin/pins');
  } catch {
    state.images = [];
    state.pins = { config: [], runtime: [] };
  }
  changed();
}

/** Forget everything (signing out). */
export function reset() {
  state.stats = undefined;
  state.points = [];
  state.summary = undefined;
  state.images = undefined;
  state.pins = undefined;
  state.warm = [];
}
