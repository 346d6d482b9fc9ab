// The state of one watched tag and how an upstream answer moves it: pure, no I/O, no clock of
// its own. A tag is `ok` while upstream resolves it to a digest the cache holds for it,
// `changed` when to another one, `vanished` on 404, `unauthorized` on 401/403, `unreachable`
// when upstream gave no answer; `pending` until its first answer.

export const WATCH_STATES = ['pending', 'ok', 'changed', 'vanished', 'unauthorized', 'unreachable'] as const;
export type WatchState = (typeof WATCH_STATES)[number];

/** A watched tag: `registry` is `host:port` as cache records name it. */
export interface TagKey {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
}

/** What one HEAD revalidation found upstream. */
export type Observation =
  | { readonly kind: 'found'; readonly digest: string }
  | { readonly kind: 'missing'; readonly status: number }
  | { readonly kind: 'refused'; readonly status: number }
  | { readonly kind: 'unreachable'; readonly reason: string }
  /** Not asked: the tag is private and the proxy holds no credential it may use for it. */
  | { readonly kind: 'skipped'; readonly reason: string };

export interface WatchEntry extends TagKey {
  readonly state: WatchState;
  /** The digest the cache last stored and served for the tag. */
  readonly cached: string;
  /** What upstream resolves the tag to now, when it last said (null: never, or not found). */
  readonly upstream: string | null;
  /** When the state was entered, and when upstream was last asked (ms since the epoch; null: never). */
  readonly since: number;
  readonly checkedAt: number | null;
  /** Why the last check did not happen or gave no digest (skipped, unreachable, the status). */
  readonly note: string | null;
  /** The pin this watch set when the tag went away (removed when it is ok again). */
  readonly autoPin: string | null;
}

/** A change of state, as it is logged, counted and sent to the webhook. */
export interface WatchEvent extends TagKey {
  /** The new state. */
  readonly kind: Exclude<WatchState, 'pending'>;
  readonly previous: WatchState;
  /** The digest the cache holds for the tag (old) and what upstream has now (new; null: none). */
  readonly oldDigest: string;
  readonly newDigest: string | null;
  readonly note: string | null;
  readonly at: number;
}

export function newEntry(key: TagKey, cached: string, now: number): WatchEntry {
  return {
    ...key,
    state: 'pending',
    cached,
    upstream: null,
    since: now,
    checkedAt: null,
    note: null,
    autoPin: null,
  };
}

/**
 * The entry after `observation`, and the event when it is news: a new state (except a first
 * `ok`, which is no news), or `changed` to yet another digest. `known` are the digests the
 * cache holds for the tag (one per Accept variant): any of them answered means `ok`. A skipped
 * check leaves the state as it was and says why.
 */
export function observe(
  entry: WatchEntry,
  observation: Observation,
  known: readonly string[],
  now: number,
): { entry: WatchEntry; event?: WatchEvent } {
  if (observation.kind === 'skipped') return { entry: { ...entry, note: observation.reason } };
  const state = stateOf(observation, known);
  const upstream = observation.kind === 'found' ? observation.digest : null;
  const note =
    observation.kind === 'unreachable'
      ? observation.reason
      : observation.kind === 'found'
        ? null
        : `upstream answered ${observation.status}`;
  const moved = state !== entry.state || (state === 'changed' && upstream !== entry.upstream);
  const next: WatchEntry = {
    ...entry,
    state,
    // While changed, `upstream` keeps naming where the tag went; otherwise what was last seen.
    upstream: upstream ?? (state === 'unreachable' ? entry.upstream : null),
    since: moved ? now : entry.since,
    checkedAt: now,
    note,
  };
  if (!moved || state === 'pending' || (entry.state === 'pending' && state === 'ok')) return { entry: next };
  const event: WatchEvent = {
    registry: entry.registry,
    repository: entry.repository,
    tag: entry.tag,
    kind: state,
    previous: entry.state,
    oldDigest: entry.cached,
    newDigest: upstream,
    note,
    at: now,
  };
  return { entry: next, event };
}

function stateOf(
  observation: Exclude<Observation, { kind: 'skipped' }>,
  known: readonly string[],
): WatchState {
  switch (observation.kind) {
    case 'found':
      return known.includes(observation.digest) ? 'ok' : 'changed';
    case 'missing':
      return 'vanished';
    case 'refused':
      return 'unauthorized';
    case 'unreachable':
      return 'unreachable';
  }
}

/** Whether the tag's image should be kept from eviction: upstream no longer gives it out. */
export function isGone(state: WatchState): boolean {
  return state === 'vanished' || state === 'unauthorized';
}

/** The reference as people write it: `registry.test/e2e/small:v1` (port 443 left out). */
export function referenceOf(key: TagKey): string {
  return `${key.registry.replace(/:443$/, '')}/${key.repository}:${key.tag}`;
}
