// The watch itself: rounds of revalidations, one per `watch.interval`, each spread over the
// interval; the state of every watched tag (in memory: after a restart, states are found again
// from the cache's own digests within one round); the automatic pin of a tag whose upstream
// went away; and the reports of each change (the caller logs and counts, the webhook sends).
import type { CacheControl } from '../cache/control.ts';
import type { TagRecord } from '../cache/manifests.ts';
import type { PublicKey } from '../cache/public-marks.ts';
import { Pins } from '../config/pins.ts';
import { AnonymousTokens, checkTag, type Send } from './check.ts';
import { interleave, RateLimiter, spread, systemClock, type Clock } from './pace.ts';
import {
  isGone,
  newEntry,
  observe,
  referenceOf,
  type Observation,
  type WatchEntry,
  type WatchEvent,
} from './state.ts';
import { keyOf, selectTargets, type Target } from './targets.ts';
import { payloadOf, type Webhook } from './webhook.ts';

/** Media types a client takes when the cache has no record to copy the Accept from. */
const DEFAULT_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];

export interface WatcherOptions {
  readonly intervalMs: number;
  readonly windowMs: number;
  readonly ratePerSecond: number;
  /** The cache's control (listing, pins) once its index is open; undefined: nothing to watch. */
  readonly control: () => Promise<CacheControl | undefined>;
  readonly tagRecord: (registry: string, repository: string, tag: string) => Promise<TagRecord | undefined>;
  /** The registry's policy (`share`: the proxy's own credentials are used; checked as is). */
  readonly shares: (registry: string) => boolean;
  /** Whether upstream served this digest of the repository to anonymous clients (cache/public-marks.ts). */
  readonly isPublic: (key: PublicKey) => Promise<boolean>;
  readonly send: Send;
  readonly webhook?: Webhook | undefined;
  readonly clock?: Clock;
  readonly checkTimeoutMs?: number;
  /**
   * Wait before the first round; default the interval, at most a minute: the index is open by
   * then, and a fleet of proxies restarted together does not ask upstream all at once.
   */
  readonly startDelayMs?: number;
  /** A change of state, after its pin was set or removed. */
  readonly onEvent?: (event: WatchEvent, entry: WatchEntry) => void;
  /** After every check: how many watched tags are in each state, per registry. */
  readonly onStates?: (counts: readonly StateCount[]) => void;
  /** A round that could not run (the listing failed), or a pin that could not be set. */
  readonly onError?: (error: unknown) => void;
}

export interface StateCount {
  readonly registry: string;
  readonly state: WatchEntry['state'];
  readonly count: number;
}

/** What `/admin/watch` answers. */
export interface WatchListing {
  readonly intervalMs: number;
  readonly windowMs: number;
  readonly ratePerSecond: number;
  readonly tags: readonly WatchEntry[];
}

export class Watcher {
  readonly #options: WatcherOptions;
  readonly #clock: Clock;
  readonly #limiter: RateLimiter;
  readonly #tokens = new AnonymousTokens();
  readonly #entries = new Map<string, WatchEntry>();
  readonly #stop = new AbortController();
  #running: Promise<void> | undefined;
  /** Rounds finished (tests wait on it through roundsDone). */
  #rounds = 0;
  readonly #roundWaiters: Array<{ count: number; resolve: () => void }> = [];

  constructor(options: WatcherOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#limiter = new RateLimiter(options.ratePerSecond, this.#clock);
  }

  /** Starts the rounds, the first after startDelayMs. */
  start(): void {
    this.#running ??= this.#loop().catch((error: unknown) => {
      if (!this.#stop.signal.aborted) this.#options.onError?.(error);
    });
  }

  list(): WatchListing {
    const { intervalMs, windowMs, ratePerSecond } = this.#options;
    const tags = [...this.#entries.values()].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
    return { intervalMs, windowMs, ratePerSecond, tags };
  }

  /** Resolves once `count` rounds have finished. */
  roundsDone(count: number): Promise<void> {
    if (this.#rounds >= count) return Promise.resolve();
    return new Promise((resolve) => this.#roundWaiters.push({ count, resolve }));
  }

  async close(): Promise<void> {
    this.#stop.abort(new Error('watch stopped'));
    this.#options.webhook?.close();
    await this.#running;
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    const { startDelayMs, intervalMs } = this.#options;
    await this.#clock.sleep(startDelayMs ?? Math.min(intervalMs, 60_000), signal);
    while (!signal.aborted) {
      const start = this.#clock.now();
      try {
        await this.#round(start, signal);
      } catch (error) {
        if (signal.aborted) return;
        this.#options.onError?.(error);
      }
      this.#rounds += 1;
      for (const waiter of this.#roundWaiters.filter((w) => w.count <= this.#rounds)) {
        this.#roundWaiters.splice(this.#roundWaiters.indexOf(waiter), 1);
        waiter.resolve();
      }
      await this.#clock.sleep(start + this.#options.intervalMs - this.#clock.now(), signal);
    }
  }

  /** One round: the watched set as of now, each tag asked once at its slot of the interval. */
  async #round(start: number, signal: AbortSignal): Promise<void> {
    const control = await this.#options.control();
    if (!control) return;
    const { config, runtime } = control.pins();
    const listing = await control.images();
    const targets = selectTargets(listing, new Pins([...config, ...runtime]), start, this.#options.windowMs);
    this.#retain(targets, new Set(runtime));
    const ordered = interleave(targets, (target) => target.registry);
    const slots = spread(ordered.length, start, this.#options.intervalMs);
    for (const [i, target] of ordered.entries()) {
      await this.#clock.sleep((slots[i] ?? start) - this.#clock.now(), signal);
      // One tag that cannot be checked (its record unreadable) does not end the round.
      await this.#checkOne(target, control, signal).catch((error: unknown) => {
        if (signal.aborted) throw error;
        this.#options.onError?.(error);
      });
    }
  }

  /** Keeps the entries of the tags still watched, with the digest the cache holds now. */
  #retain(targets: readonly Target[], runtimePins: ReadonlySet<string>): void {
    const keys = new Set(targets.map(keyOf));
    for (const key of this.#entries.keys()) if (!keys.has(key)) this.#entries.delete(key);
    const now = this.#clock.now();
    for (const target of targets) {
      const entry = this.#entries.get(keyOf(target));
      this.#entries.set(
        keyOf(target),
        entry
          ? { ...entry, cached: target.digest, autoPin: stillPinned(entry, runtimePins) }
          : newEntry(target, target.digest, now),
      );
    }
    this.#reportStates();
  }

  async #checkOne(target: Target, control: CacheControl, signal: AbortSignal): Promise<void> {
    const key = keyOf(target);
    const record = await this.#options.tagRecord(target.registry, target.repository, target.tag);
    const variants = record ? [record, ...(record.alternates ?? [])] : [];
    const known = [target.digest, ...variants.map((variant) => variant.digest)];
    const observation = await this.#ask(target, variants, signal);
    const entry = this.#entries.get(key);
    if (!entry || signal.aborted) return;
    const result = observe(entry, observation, known, this.#clock.now());
    const next = result.event ? this.#repin(result.entry, control) : result.entry;
    this.#entries.set(key, next);
    this.#reportStates();
    if (!result.event) return;
    this.#options.onEvent?.(result.event, next);
    this.#options.webhook?.notify(payloadOf(result.event, next.autoPin));
  }

  /** Asks upstream as a client may: public tags anonymously, `share` registries with their login. */
  async #ask(
    target: Target,
    variants: readonly { mediaType: string }[],
    signal: AbortSignal,
  ): Promise<Observation> {
    const shares = this.#options.shares(target.registry);
    const key = { host: target.registry, name: target.repository, digest: target.digest };
    if (!shares && !(await this.#options.isPublic(key))) {
      return { kind: 'skipped', reason: 'private, and the registry has no share credentials: not checked' };
    }
    const accept =
      variants.length > 0 ? [...new Set(variants.map((variant) => variant.mediaType))] : DEFAULT_ACCEPT;
    return checkTag(
      { ...target, accept, anonymousToken: !shares },
      {
        send: this.#options.send,
        limiter: this.#limiter,
        tokens: this.#tokens,
        timeoutMs: this.#options.checkTimeoutMs ?? 30_000,
      },
      signal,
    );
  }

  /**
   * A tag gone upstream (vanished, unauthorized) gets a pin, unless one already holds it, so
   * that eviction keeps the copy the cluster now depends on; once the tag is answered again
   * (ok or changed), the pin this watch set goes. An operator's unpin is not undone.
   */
  #repin(entry: WatchEntry, control: CacheControl): WatchEntry {
    try {
      if (isGone(entry.state) && entry.autoPin === null) {
        const reference = referenceOf(entry);
        const { config, runtime } = control.pins();
        if (new Pins([...config, ...runtime]).tag(entry.registry, entry.repository, entry.tag)) return entry;
        control.pin(reference);
        return { ...entry, autoPin: reference };
      }
      if ((entry.state === 'ok' || entry.state === 'changed') && entry.autoPin !== null) {
        control.unpin(entry.autoPin);
        return { ...entry, autoPin: null };
      }
    } catch (error) {
      this.#options.onError?.(error);
    }
    return entry;
  }

  #reportStates(): void {
    if (!this.#options.onStates) return;
    const counts = new Map<string, StateCount>();
    for (const { registry, state } of this.#entries.values()) {
      const id = `${registry} ${state}`;
      counts.set(id, { registry, state, count: (counts.get(id)?.count ?? 0) + 1 });
    }
    this.#options.onStates([...counts.values()]);
  }
}

/** The watch's pin of a tag, unless an operator removed it (`cache unpin`) meanwhile. */
function stillPinned(entry: WatchEntry, runtimePins: ReadonlySet<string>): string | null {
  return entry.autoPin !== null && runtimePins.has(entry.autoPin) ? entry.autoPin : null;
}
