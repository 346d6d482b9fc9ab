// The cache as an operator drives it (the admin API): totals, the listing, purge and an
// eviction pass on demand. Purges and passes, background ones included, run one at a time
// (Evictor.exclusive), so that two removals never work from the same stale snapshot.
import { statfs } from 'node:fs/promises';
import { parsePin } from '../config/pins.ts';
import {
  listImages,
  totals,
  type CatalogStores,
  type RegistryListing,
  type Selector,
  type Totals,
} from './catalog.ts';
import type { Evictor, PassResult, Space } from './eviction.ts';
import type { CacheIndex } from './index.ts';
import { purge, type PurgeOptions, type PurgeResult } from './purge.ts';

/** Where the pins set at run time are kept: in the index, so that they survive a restart. */
const PINS_KEY = 'runtime-pins';

export interface CacheSummary extends Totals {
  readonly maxSize: number;
  /** Bytes this process may still write on the cache's filesystem; null when statfs fails. */
  readonly free: number | null;
  readonly filesystem: number | null;
}

export interface CacheControlOptions extends PurgeOptions {
  readonly index: CacheIndex;
  readonly evictor: Evictor;
  readonly maxSize: number;
  /** `cache.pin`: shown beside the pins set at run time, never changed by them. */
  readonly configPins: readonly string[];
  readonly statfs?: () => Promise<Space>;
  /** Where the listing reads tag records and indexes; default: the index's directory. */
  readonly stores?: CatalogStores;
}

export class CacheControl {
  readonly #options: CacheControlOptions;

  constructor(options: CacheControlOptions) {
    this.#options = options;
    options.evictor.setRuntimePins(this.#runtimePins());
  }

  /** The pins in force: from the configuration, and set at run time (kept in the index). */
  pins(): { readonly config: readonly string[]; readonly runtime: readonly string[] } {
    return { config: this.#options.configPins, runtime: this.#runtimePins() };
  }

  /** Whether `pattern` is a pin (config/pins.ts): a reference, or a repository glob. */
  isPin(pattern: string): boolean {
    return parsePin(pattern) !== undefined;
  }

  /** Pins `pattern` (check it with isPin first) until unpinned, across restarts. */
  pin(pattern: string): { readonly runtime: readonly string[] } {
    const runtime = [...new Set([...this.#runtimePins(), pattern])];
    this.#savePins(runtime);
    return { runtime };
  }

  /** Removes a pin set at run time (one from the configuration stays: edit cache.pin). */
  unpin(pattern: string): { readonly runtime: readonly string[]; readonly removed: boolean } {
    const before = this.#runtimePins();
    const runtime = before.filter((pin) => pin !== pattern);
    this.#savePins(runtime);
    return { runtime, removed: runtime.length !== before.length };
  }

  #runtimePins(): string[] {
    try {
      const parsed: unknown = JSON.parse(this.#options.index.meta(PINS_KEY) ?? '[]');
      return Array.isArray(parsed) ? parsed.filter((pin): pin is string => typeof pin === 'string') : [];
    } catch {
      return [];
    }
  }

  #savePins(runtime: readonly string[]): void {
    this.#options.index.setMeta(PINS_KEY, JSON.stringify(runtime));
    this.#options.evictor.setRuntimePins(runtime);
  }

  async summary(): Promise<CacheSummary> {
    const { index, maxSize } = this.#options;
    const space = await this.#space();
    return {
      ...totals(await index.snapshot()),
      maxSize,
      free: space?.free ?? null,
      filesystem: space?.total ?? null,
    };
  }

  async images(selector: Selector = {}): Promise<RegistryListing[]> {
    const { index, stores } = this.#options;
    return listImages(await index.snapshot(), index.layout, selector, stores);
  }

  /** Purges after any pass in progress; no pass starts during it (Evictor.exclusive). */
  purge(selector: Selector): Promise<PurgeResult> {
    return this.#options.evictor.exclusive(() => purge(selector, this.#options));
  }

  /** One eviction pass now (after any pass or purge in progress). */
  evict(): Promise<PassResult> {
    return this.#options.evictor.pass();
  }

  async #space(): Promise<Space | undefined> {
    try {
      if (this.#options.statfs) return await this.#options.statfs();
      const stats = await statfs(this.#options.index.layout.root);
      return { free: stats.bavail * stats.bsize, total: stats.blocks * stats.bsize };
    } catch {
      return undefined;
    }
  }
}
