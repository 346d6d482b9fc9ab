// The one answer the dashboard (/ui/) polls, GET /admin/stats: the history's points, the
// counters and registry states now, fills and tunnels in flight, recent events, pulls per tag,
// and the settings the page shows beside them. Plain data in, plain data out.
import type { Activity } from './activity.ts';
import type { History } from './history.ts';
import type { Metrics } from './registry.ts';

/** A fill running now: the pull of one blob from upstream. */
export interface FillProgress {
  readonly digest: string;
  /** From upstream's Content-Length; null when it did not say. */
  readonly size: number | null;
  readonly received: number;
}

/** What the page shows about the setup (none of it secret). */
export interface DashboardSettings {
  /** The proxy's port, for the HTTPS_PROXY snippets. */
  readonly proxyPort: number;
  /** The mirror listener's URL, when mirror.listen is set. */
  readonly mirrorPort: number | null;
  /** Registries intercepted, as configured. */
  readonly registries: readonly string[];
  /** Per-registry budgets (registries[].maxSize). */
  readonly budgets: readonly { readonly registry: string; readonly maxSize: number }[];
  /** cache.minFree: bytes or a percentage of the filesystem. */
  readonly minFree: { readonly bytes: number } | { readonly percent: number };
}

export interface DashboardSources {
  readonly metrics: Metrics;
  readonly history: History;
  readonly activity: Activity;
  readonly fills: () => readonly FillProgress[];
  readonly settings: () => DashboardSettings;
  readonly startedAt: number;
}

export async function dashboardStats(sources: DashboardSources, since: number) {
  const { history, activity, metrics } = sources;
  const { totals, registries } = await history.current();
  const tunnels = (await metrics.tunnelsOpen.get()).values[0]?.value ?? 0;
  return {
    now: Date.now(),
    startedAt: sources.startedAt,
    totals,
    points: history.points(since),
    registries,
    fills: sources.fills(),
    tunnelsOpen: tunnels,
    events: activity.events(),
    pulls: activity.pulls(),
    settings: sources.settings(),
  };
}
