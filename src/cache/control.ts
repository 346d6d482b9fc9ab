// The cache as an operator drives it (the admin API): totals, the listing, purge and an
// eviction pass on demand. Purges and passes, background ones included, run one at a time
// (Evictor.exclusive), so that two removals never work from the same stale snapshot.
import { statfs } from 'node:fs/promises';
import { listImages, totals, type RegistryListing, type Selector, type Totals } from './catalog.ts';
import type { Evictor, PassResult, Space } from './eviction.ts';
import type { CacheIndex } from './index.ts';
import { purge, type PurgeOptions, type PurgeResult } from './purge.ts';

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
  readonly statfs?: () => Promise<Space>;
}

export class CacheControl {
  readonly #options: CacheControlOptions;

  constructor(options: CacheControlOptions) {
    this.#options = options;
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
    const { index } = this.#options;
    return listImages(await index.snapshot(), index.layout, selector);
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
