// Keeps the cache within its bounds by evicting whole images, least recently used first
// (eviction-plan.ts decides what an image is and what removing it frees; this file decides
// when and why, and drives the removal). Bounds, in the order a pass applies them:
//   inactive  images unused for `inactive` go, even under every bound
//   budget    a registry over HIGH_WATER of its maxSize loses images down to LOW_WATER of it
//   cap       past HIGH_WATER (95 %) of maxSize, images go until usage is under LOW_WATER (90 %)
//   minFree   when the filesystem has less free than minFree, images go until it has minFree
//             plus the same 5 % band (of maxSize or of the filesystem, whichever is smaller)
// The gap between the marks absorbs bursts: usage passes maxSize only by fills in flight while a
// pass runs. Pinned images and images with content in use (served or filled) are skipped and
// reported. Files go before rows (files first, root before children, so a crash leaves at worst
// rows without files and orphaned layers; reconcile() drops the former, eviction the latter).
import { statfs } from 'node:fs/promises';
import { parseAuthority } from '../http/destination.ts';
import { HostRules } from '../http/host-rules.ts';
import { removeVictims } from './eviction-files.ts';
import { EvictionPlan, type Image } from './eviction-plan.ts';
import type { CacheIndex, EntryRow, TagRow } from './index.ts';
import { Pins } from '../config/pins.ts';

export const HIGH_WATER = 0.95;
export const LOW_WATER = 0.9;

export type EvictReason = 'inactive' | 'budget' | 'cap' | 'minFree';

export type MinFree = { readonly bytes: number } | { readonly percent: number };

export interface EvictionConfig {
  readonly maxSize: number;
  readonly minFree: MinFree;
  /** ms; 0: never expire. */
  readonly inactive: number;
  /** Pin patterns (pins.ts). */
  readonly pins: readonly string[];
  /** Per-registry budgets: `registry` is a `registries` entry (`docker.io`, `host:port`, `*.domain`). */
  readonly budgets: ReadonlyArray<{ readonly registry: string; readonly maxSize: number }>;
  /** Fractions of a budget; defaults HIGH_WATER and LOW_WATER. */
  readonly highWater?: number;
  readonly lowWater?: number;
}

export interface Space {
  /** Bytes this process may still write on the cache's filesystem. */
  readonly free: number;
  /** Size of that filesystem. */
  readonly total: number;
}

/**
 * What the remove callback deletes: the blob, its manifest meta file, the tag files naming it,
 * and for a manifest the referrers records of it as a subject (eviction-files.ts).
 */
export interface Victim {
  readonly digest: string;
  readonly kind: EntryRow['kind'];
  readonly size: number;
  readonly tags: readonly TagRow[];
  /** The registry and repository that stored it (EntryRow), when known. */
  readonly host?: string | null;
  readonly repo?: string | null;
}

export interface EvictorOptions {
  readonly index: CacheIndex;
  readonly config: EvictionConfig;
  /** Deletes a victim's files (eviction-files.ts removeFiles, plus any in-memory copy). */
  readonly remove: (victim: Victim) => Promise<void>;
  /** Content being served or filled right now: never deleted under a reader. */
  readonly inUse?: (digest: string) => boolean;
  /** Free and total bytes of the cache's filesystem; default: statfs of the cache directory. */
  readonly statfs?: () => Promise<Space>;
  readonly now?: () => number;
  /** A pass that failed, or a file that could not be removed. */
  readonly onError?: (error: unknown) => void;
}

export interface EvictedImage {
  readonly root: string;
  readonly reason: EvictReason;
  /** Every digest removed with it, root first. */
  readonly digests: readonly string[];
  readonly bytes: number;
  readonly lastUsed: number;
}

export interface PassResult {
  readonly evicted: readonly EvictedImage[];
  readonly freedBytes: number;
  /** Roots left alone: pinned, or with content in use. */
  readonly skipped: { readonly pinned: readonly string[]; readonly inUse: readonly string[] };
  readonly usage: { readonly before: number; readonly after: number };
  /** Bounds still not met when nothing more could go (`budget` names its registry entry). */
  readonly unmet: ReadonlyArray<{ readonly reason: EvictReason; readonly registry?: string }>;
  /** A bound is unmet and everything left is pinned. */
  readonly onlyPinnedLeft: boolean;
}

interface Budget {
  readonly registry: string;
  readonly maxSize: number;
}

export class Evictor {
  readonly #options: EvictorOptions;
  readonly #config: EvictionConfig;
  #pins: Pins;
  readonly #budgets: HostRules<Budget>;
  readonly #now: () => number;
  readonly #high: number;
  readonly #low: number;
  #running: Promise<PassResult | undefined> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  /** Earliest time an unpinned image can turn inactive, as of the last pass. */
  #nextExpiry = 0;
  #pinnedBytes = 0;
  /** The last pass or exclusive() call: the next one starts after it. */
  #lock: Promise<unknown> = Promise.resolve();

  constructor(options: EvictorOptions) {
    this.#options = options;
    this.#config = options.config;
    this.#pins = new Pins(options.config.pins);
    this.#budgets = new HostRules(
      options.config.budgets.map((budget) => ({ pattern: budget.registry, value: budget })),
    );
    this.#now = options.now ?? Date.now;
    this.#high = options.config.highWater ?? HIGH_WATER;
    this.#low = options.config.lowWater ?? LOW_WATER;
  }

  /** Pins set at run time (the admin API), on top of `cache.pin`: from the next pass on. */
  setRuntimePins(patterns: readonly string[]): void {
    this.#pins = new Pins([...this.#config.pins, ...patterns]);
  }

  /**
   * Whether a new fill of `size` bytes (for `host`, `host:port`) may be stored. No when it is
   * larger than maxSize or its registry's budget, or when the filesystem would keep less than
   * minFree even after evicting everything unpinned. Starts a pass when one is due.
   */
  async admit(size: number, host?: string): Promise<boolean> {
    if (size > this.#config.maxSize) return false;
    const budget = host === undefined ? undefined : this.#budgetOf(host);
    if (budget && size > budget.maxSize) return false;
    const usage = this.#options.index.usage().total;
    if (usage + size > this.#config.maxSize * this.#high) void this.schedule();
    const space = await this.#space();
    if (space === undefined) return true;
    const floor = minFreeBytes(this.#config.minFree, space);
    if (space.free - size >= floor) return true;
    void this.schedule();
    return space.free + Math.max(0, usage - this.#pinnedBytes) - size >= floor;
  }

  /**
   * Starts a pass in the background when a bound is passed (or an image may have expired);
   * single-flight: a call during a pass makes one more run after it. Never rejects.
   */
  schedule(): Promise<PassResult | undefined> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    const run = async (): Promise<PassResult | undefined> => {
      let result: PassResult | undefined;
      do {
        this.#again = false;
        if (await this.#due()) result = await this.pass();
      } while (this.#again);
      return result;
    };
    this.#running = run()
      .catch((error: unknown) => {
        this.#options.onError?.(error);
        return undefined;
      })
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Checks the bounds every `intervalMs` (expiry, and disks filled by others). */
  start(intervalMs = 60_000): void {
    this.#timer ??= setInterval(() => void this.schedule(), intervalMs).unref();
  }

  /** Resolves when no pass is running (one started by admit() or schedule() has finished). */
  async idle(): Promise<void> {
    await this.#running;
  }

  /** Stops the timer and waits for a running pass. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.idle();
  }

  /**
   * Runs `fn` while no pass runs, and starts no pass until it is done: a purge (purge.ts) and a
   * pass never remove from two snapshots at once. Never call pass() from inside `fn`.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  /** One eviction pass over every bound (after any purge or pass in progress). */
  pass(): Promise<PassResult> {
    return this.exclusive(() => this.#pass());
  }

  async #pass(): Promise<PassResult> {
    const started = this.#now();
    const snapshot = await this.#options.index.snapshot();
    const plan = await EvictionPlan.build(snapshot, this.#pins);
    const pass = new PassState(plan, started, snapshot.tags);
    const space = await this.#space();
    await this.#expire(pass);
    await this.#enforceBudgets(pass);
    const cap = this.#config.maxSize;
    if (plan.total > cap * this.#high) {
      await this.#evictWhile(pass, 'cap', plan.images, () => plan.total > cap * this.#low);
      if (plan.total > cap) pass.unmet.push({ reason: 'cap' });
    }
    if (space) await this.#keepFree(pass, space);
    this.#pinnedBytes = plan.pinnedBytes;
    this.#nextExpiry = this.#expiryAfter(plan);
    return pass.result(plan);
  }

  async #expire(pass: PassState): Promise<void> {
    if (this.#config.inactive <= 0) return;
    const cutoff = pass.started - this.#config.inactive;
    await this.#evictWhile(pass, 'inactive', pass.plan.images, (image) => image.lastUsed < cutoff);
  }

  async #enforceBudgets(pass: PassState): Promise<void> {
    const { plan } = pass;
    for (const budget of this.#config.budgets) {
      const used = () => this.#usageOf(plan, budget);
      if (used() <= budget.maxSize * this.#high) continue;
      const own = plan.images.filter((image) => image.host !== null && this.#budgetOf(image.host) === budget);
      await this.#evictWhile(pass, 'budget', own, () => used() > budget.maxSize * this.#low);
      if (used() > budget.maxSize) pass.unmet.push({ reason: 'budget', registry: budget.registry });
    }
  }

  async #keepFree(pass: PassState, space: Space): Promise<void> {
    const floor = minFreeBytes(this.#config.minFree, space);
    if (space.free >= floor) return;
    const band = (this.#high - this.#low) * Math.min(this.#config.maxSize, space.total);
    const freeNow = () => space.free + pass.freed;
    await this.#evictWhile(pass, 'minFree', pass.plan.images, () => freeNow() < floor + band);
    if (freeNow() < floor) pass.unmet.push({ reason: 'minFree' });
  }

  /** Evicts `images` in order while `more(image)` holds; skips what is gone, pinned or in use. */
  async #evictWhile(
    pass: PassState,
    reason: EvictReason,
    images: readonly Image[],
    more: (image: Image) => boolean,
  ): Promise<void> {
    for (const image of images) {
      if (!pass.plan.has(image.root) || pass.skippedInUse.has(image.root)) continue;
      if (!more(image)) return;
      await this.#evict(pass, image, reason);
    }
  }

  async #evict(pass: PassState, image: Image, reason: EvictReason): Promise<void> {
    const victims = pass.plan.removal(image.root);
    const inUse = this.#options.inUse;
    if (inUse && victims.some((entry) => inUse(entry.digest))) {
      pass.skippedInUse.add(image.root);
      return;
    }
    const removed = await removeVictims(victims, (digest) => pass.tagsOf(digest), this.#options);
    this.#options.index.remove(removed, pass.started);
    pass.plan.removed(removed);
    const gone = new Set(removed);
    const bytes = victims.reduce((sum, entry) => sum + (gone.has(entry.digest) ? entry.size : 0), 0);
    pass.freed += bytes;
    if (removed.length > 0) {
      pass.evicted.push({ root: image.root, reason, digests: removed, bytes, lastUsed: image.lastUsed });
    }
  }

  /** Whether a pass has anything to do, judged without reading the whole index. */
  async #due(): Promise<boolean> {
    const usage = this.#options.index.usage();
    if (usage.total > this.#config.maxSize * this.#high) return true;
    if (this.#config.inactive > 0 && this.#now() >= this.#nextExpiry) return true;
    for (const budget of this.#config.budgets) {
      let used = 0;
      for (const [host, bytes] of usage.byHost) if (this.#budgetOf(host) === budget) used += bytes;
      if (used > budget.maxSize * this.#high) return true;
    }
    const space = await this.#space();
    return space !== undefined && space.free < minFreeBytes(this.#config.minFree, space);
  }

  #expiryAfter(plan: EvictionPlan): number {
    if (this.#config.inactive <= 0) return Number.POSITIVE_INFINITY;
    const oldest = plan.images.find((image) => plan.has(image.root));
    return oldest === undefined
      ? this.#now() + this.#config.inactive
      : oldest.lastUsed + this.#config.inactive;
  }

  #usageOf(plan: EvictionPlan, budget: Budget): number {
    let used = 0;
    for (const [host, bytes] of plan.byHost) if (this.#budgetOf(host) === budget) used += bytes;
    return used;
  }

  #budgetOf(authority: string): Budget | undefined {
    const destination = parseAuthority(authority);
    return destination && this.#budgets.match(destination.host, destination.port);
  }

  /** Free space, when minFree is set; undefined (no bound) when it is not, or statfs fails. */
  async #space(): Promise<Space | undefined> {
    const { minFree } = this.#config;
    if (('bytes' in minFree ? minFree.bytes : minFree.percent) <= 0) return undefined;
    try {
      if (this.#options.statfs) return await this.#options.statfs();
      const stats = await statfs(this.#options.index.layout.root);
      return { free: stats.bavail * stats.bsize, total: stats.blocks * stats.bsize };
    } catch (error) {
      this.#options.onError?.(error);
      return undefined;
    }
  }
}

export function minFreeBytes(minFree: MinFree, space: Space): number {
  return 'bytes' in minFree ? minFree.bytes : (minFree.percent / 100) * space.total;
}

/** What one pass has done so far. */
class PassState {
  readonly plan: EvictionPlan;
  readonly started: number;
  readonly before: number;
  readonly evicted: EvictedImage[] = [];
  readonly skippedInUse = new Set<string>();
  readonly unmet: Array<{ reason: EvictReason; registry?: string }> = [];
  readonly #tags = new Map<string, TagRow[]>();
  freed = 0;

  constructor(plan: EvictionPlan, started: number, tags: readonly TagRow[]) {
    this.plan = plan;
    this.started = started;
    this.before = plan.total;
    for (const tag of tags) {
      const list = this.#tags.get(tag.digest);
      if (list) list.push(tag);
      else this.#tags.set(tag.digest, [tag]);
    }
  }

  tagsOf(digest: string): TagRow[] {
    return this.#tags.get(digest) ?? [];
  }

  result(plan: EvictionPlan): PassResult {
    const unpinnedLeft = plan.images.some((image) => plan.has(image.root));
    return {
      evicted: this.evicted,
      freedBytes: this.freed,
      skipped: { pinned: plan.pinnedRoots, inUse: [...this.skippedInUse] },
      usage: { before: this.before, after: plan.total },
      unmet: this.unmet,
      onlyPinnedLeft: this.unmet.length > 0 && !unpinnedLeft,
    };
  }
}
