// Opening the cache at start: the directory brought into service (init.ts), the blob store,
// fills and manifest records on it, and, when it can be written, the index and the evictor
// that keep it within its bounds (book.ts), and the control the admin API drives. What happens is reported through callbacks: the
// cache does not log.
import { DiskBlobStore } from './blobs.ts';
import { IndexedBook, NoBook, type CacheBook } from './book.ts';
import type { WriteFailureListener } from './errors.ts';
import { CacheControl } from './control.ts';
import { removeFiles } from './eviction-files.ts';
import { Evictor, type EvictionConfig, type PassResult, type Victim } from './eviction.ts';
import { Fills } from './fills.ts';
import { CacheIndex, type OpenReport, type SyncStats } from './index.ts';
import type { CacheInit } from './init.ts';
import { ManifestStore } from './manifests.ts';
import { PublicMarks } from './public-marks.ts';

export interface OpenCacheOptions {
  readonly dir: string;
  readonly eviction: EvictionConfig;
  readonly onWriteFailure: WriteFailureListener;
  /** A pass that evicted something, or left a bound unmet. */
  readonly onPass: (result: PassResult) => void;
  /** The index could not be opened or written, or a pass failed: eviction is off or delayed. */
  readonly onIndexError: (error: unknown) => void;
  /** A reconcile after an unclean stop, run in the background, finished. */
  readonly onReconciled?: (stats: SyncStats) => void;
}

export interface OpenedCache {
  readonly store: DiskBlobStore;
  readonly fills: Fills;
  readonly manifests: ManifestStore;
  readonly marks: PublicMarks;
  readonly book: CacheBook;
  /** Listing, purge and eviction on demand (the admin API); undefined without an index. */
  readonly control: CacheControl | undefined;
  readonly init: CacheInit;
  /** How the index was found; undefined when the cache keeps none (read-only, or it failed). */
  readonly index: OpenReport | undefined;
  /** Stops eviction and writes the index's queue. */
  close(): Promise<void>;
}

export async function openCache(options: OpenCacheOptions): Promise<OpenedCache> {
  const store = new DiskBlobStore(options.dir);
  const init = await store.init();
  const onWriteFailure = options.onWriteFailure;
  const manifests = new ManifestStore(store.layout, store, { onWriteFailure });
  const index = init.writable ? await openIndex(store.layout.root, options) : undefined;
  const remove = async (victim: Victim) => {
    manifests.forget(victim.digest);
    await removeFiles(store.layout)(victim);
  };
  let evictor: Evictor | undefined;
  const book: CacheBook = index
    ? new IndexedBook({
        index,
        evictor: (inUse) =>
          (evictor = new Evictor({
            index,
            config: options.eviction,
            inUse,
            remove,
            onError: options.onIndexError,
          })),
        onPass: options.onPass,
      })
    : new NoBook();
  const control =
    index && evictor
      ? new CacheControl({
          index,
          evictor,
          maxSize: options.eviction.maxSize,
          remove,
          inUse: (digest) => book.inUse(digest),
          onError: options.onIndexError,
        })
      : undefined;
  return {
    store,
    fills: new Fills(store, { onWriteFailure }),
    manifests,
    marks: new PublicMarks(store.layout),
    book,
    control,
    init,
    index: index?.opened,
    close: () => book.close(),
  };
}

async function openIndex(root: string, options: OpenCacheOptions): Promise<CacheIndex | undefined> {
  let index: CacheIndex;
  try {
    index = await CacheIndex.open(root, { onError: options.onIndexError });
  } catch (error) {
    options.onIndexError(error);
    return undefined;
  }
  if (index.opened.unclean) {
    void index.reconcile().then((stats) => options.onReconciled?.(stats), options.onIndexError);
  }
  return index;
}
