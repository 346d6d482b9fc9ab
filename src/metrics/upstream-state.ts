// What the last minutes of counters say about each registry's upstream, for the dashboard:
// reachable, degraded (some answers failed), unreachable (none succeeded), idle (no upstream
// traffic in the window), and whether the cache served stale copies meanwhile. Pure.

/** Cumulative counts of one registry (or of all), as the metrics hold them. */
export interface RegistryCounts {
  readonly requests: number;
  /** Requests the cache could answer: all but `bypass` (pings, tokens, uploads). */
  readonly answerable: number;
  /** Served from the cache: hit, revalidated, stale. */
  readonly hits: number;
  readonly stale: number;
  readonly bytesCache: number;
  readonly bytesUpstream: number;
  /** Upstream answers other than 5xx and 429. */
  readonly upstreamOk: number;
  /** Upstream 5xx and 429 answers, and requests that got no answer. */
  readonly upstreamFailed: number;
  /** The failures by status (`503`) or reason (`unreachable`, `timeout`, `tls`). */
  readonly failures: Readonly<Record<string, number>>;
}

export type UpstreamCondition = 'reachable' | 'degraded' | 'unreachable' | 'idle';

export interface RegistryState {
  /** `host:port`, as the metrics label it. */
  readonly registry: string;
  readonly condition: UpstreamCondition;
  /** Stale copies served in the window: upstream could not confirm a tag. */
  readonly servingStale: boolean;
  /** Failures in the window, by status or reason. */
  readonly recentFailures: Readonly<Record<string, number>>;
  /** When a failure was last seen (the sample it showed up in), ms; null: none kept. */
  readonly lastFailure: number | null;
  readonly rateLimitRemaining: number | null;
  readonly rateLimitLimit: number | null;
  /** Since start. */
  readonly counts: RegistryCounts;
}

interface SampleLike {
  readonly t: number;
  readonly registries: Readonly<Record<string, RegistryCounts>>;
  readonly rateLimit: Readonly<Record<string, { remaining?: number; limit?: number }>>;
}

/** `other` (token services and CDNs blobs redirect to) is no registry of its own. */
const NOT_A_REGISTRY = 'other';

export function registryStates(
  now: SampleLike,
  earlier: SampleLike | undefined,
  samples: readonly SampleLike[],
): RegistryState[] {
  const names = new Set([...Object.keys(now.registries), ...Object.keys(now.rateLimit)]);
  names.delete(NOT_A_REGISTRY);
  return [...names].sort().map((registry) => {
    const counts = now.registries[registry] ?? NO_COUNTS;
    const before = earlier?.registries[registry] ?? (earlier ? NO_COUNTS : counts);
    const ok = counts.upstreamOk - before.upstreamOk;
    const failed = counts.upstreamFailed - before.upstreamFailed;
    const condition: UpstreamCondition =
      failed > 0 ? (ok > 0 ? 'degraded' : 'unreachable') : ok > 0 ? 'reachable' : 'idle';
    const rate = now.rateLimit[registry];
    return {
      registry,
      condition,
      servingStale: counts.stale - before.stale > 0,
      recentFailures: difference(counts.failures, before.failures),
      lastFailure: lastFailure(registry, [...samples, now]),
      rateLimitRemaining: rate?.remaining ?? null,
      rateLimitLimit: rate?.limit ?? null,
      counts,
    };
  });
}

/** A registry with nothing counted yet (copy `failures` before changing it). */
export const NO_COUNTS: RegistryCounts = {
  requests: 0,
  answerable: 0,
  hits: 0,
  stale: 0,
  bytesCache: 0,
  bytesUpstream: 0,
  upstreamOk: 0,
  upstreamFailed: 0,
  failures: {},
};

function difference(
  after: Readonly<Record<string, number>>,
  before: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const delta = value - (before[key] ?? 0);
    if (delta > 0) out[key] = delta;
  }
  return out;
}

function lastFailure(registry: string, samples: readonly SampleLike[]): number | null {
  for (let i = samples.length - 1; i > 0; i--) {
    const after = samples[i]!.registries[registry]?.upstreamFailed ?? 0;
    const before = samples[i - 1]!.registries[registry]?.upstreamFailed ?? 0;
    if (after > before) return samples[i]!.t;
  }
  const first = samples[0]?.registries[registry]?.upstreamFailed ?? 0;
  return first > 0 ? samples[0]!.t : null;
}
