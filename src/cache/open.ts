// Opening the cache at start: the directory brought into service (init.ts), the blob store,
// fills and manifest records on it, and, when it can be written, the index and the evictor
// that keep it within its bounds (book.ts), opened in the background so that a rebuild never
// delays the start, and the control the admin API drives once the index is open. What happens
// is reported through callbacks: the cache does not log. With another storage backend (storage/:
// an S3 bucket) the blobs and records live there, and the directory keeps the index, the fills'
// temp files and the public marks.
import { DiskBlobStore, type BlobStore } from './blobs.ts';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { DeferredBook, IndexedBook, NoBook, type CacheBook, type Readers } from './book.ts';
import type { WriteFailureListener } from './errors.ts';
import { CacheControl } from './control.ts';
import { removeFiles, removeRecords, removeTagRecord } from './eviction-files.ts';
import { Evictor, type EvictionConfig, type PassResult, type Victim } from './eviction.ts';
import { Fills } from './fills.ts';
import { CacheIndex, type OpenReport, type SyncStats } from './index.ts';
import type { ContentScan } from './index-scan.ts';
import type { CacheInit } from './init.ts';
import { ManifestStore } from './manifests.ts';
import { PublicMarks } from './public-marks.ts';
import type { RecordStore } from './records.ts';

/** Blobs and records kept elsewhere than the cache directory (storage/). */
export interface ExternalStorage {
  readonly blobs: BlobStore;
  readonly records: RecordStore;
  /** What the index is rebuilt and reconciled from; without one, it never is. */
  readonly scan?: ContentScan;
}

export interface OpenCacheOptions {
  readonly dir: string;
  readonly eviction: EvictionConfig;
  readonly onWriteFailure: WriteFailureListener;
  /** A pass that evicted something, or left a bound unmet. */
  readonly onPass: (result: PassResult) => void;
  /** The index could not be opened or written, or a pass failed: eviction is off or delayed. */
  readonly onIndexError: (error: unknown) => void;
  /** The index is open (at once, or after a rebuild in the background): how it was found. */
  readonly onIndexOpen?: (report: OpenReport) => void;
  /** A reconcile after an unclean stop, run in the background, finished. */
  readonly onReconciled?: (stats: SyncStats) => void;
  /**
   * Several processes share the directory (cluster/): no index (one sqlite file per directory
   * counts and evicts for one process only), and temp files are swept at start only once idle
   * this long, since another replica may be writing them.
   */
  readonly shared?: { readonly tempIdleMs: number };
  /** Where blobs and records live instead of `dir` (storage.type: s3). */
  readonly storage?: ExternalStorage;
}

/** What the bookkeeper holds: the book the registry endpoints feed, and the admin API's control. */
export interface KeptBooks {
  readonly book: IndexedBook;
  readonly control: CacheControl;
  readonly index: CacheIndex;
}

/** Opens the books for the bookkeeper; `now` is the time of the event being applied. */
export type Keep = (
  readers: Readers,
  inUse: (digest: string) => boolean,
  now: () => number,
) => Promise<KeptBooks | undefined>;

export interface OpenedCache {
  readonly store: BlobStore;
  readonly fills: Fills;
  readonly manifests: ManifestStore;
  readonly marks: PublicMarks;
  readonly book: CacheBook;
  /** Listing, purge and eviction on demand (the admin API), once the index is open; undefined without one. */
  readonly control: () => Promise<CacheControl | undefined>;
  readonly init: CacheInit;
  /**
   * With `shared`: opens the index (rebuilt from the files or the bucket), the evictor and the
   * control, for the one replica that keeps the books of all; `inUse` asks every replica's readers.
   */
  readonly keep?: Keep;
  /** Stops eviction and writes the index's queue. */
  close(): Promise<void>;
}

export async function openCache(options: OpenCacheOptions): Promise<OpenedCache> {
  const disk = new DiskBlobStore(options.dir);
  const init = await disk.init(options.shared ? { keepTempNewerThanMs: options.shared.tempIdleMs } : {});
  const onWriteFailure = options.onWriteFailure;
  const { storage } = options;
  const store = storage?.blobs ?? disk;
  const manifests = new ManifestStore(disk.layout, store, {
    onWriteFailure,
    ...(storage ? { records: storage.records } : {}),
  });
  const removeStored = storage ? removeRecords(storage.records, storage.blobs) : removeFiles(disk.layout);
  const remove = async (victim: Victim) => {
    manifests.forget(victim.digest);
    await removeStored(victim);
  };
  let control: CacheControl | undefined;
  const books = (readers: Readers, inUse: (digest: string) => boolean, now?: () => number) =>
    openBooks({ root: disk.layout.root, options, remove, readers, inUse, ...(now ? { now } : {}) });
  // Replicas sharing the directory or the bucket keep no index each: one of them at a time, the
  // bookkeeper (cluster/book.ts), opens it through `keep`.
  const indexed = init.writable && !options.shared;
  const book: CacheBook = indexed
    ? new DeferredBook(async (readers) => {
        const kept = await books(readers, (digest) => readers.has(digest));
        control = kept?.control;
        return kept?.book;
      })
    : new NoBook();
  return {
    store,
    fills: new Fills(store, { onWriteFailure }),
    manifests,
    marks: new PublicMarks(disk.layout),
    book,
    control: async () => {
      if (book instanceof DeferredBook) await book.whenOpen();
      return control;
    },
    init,
    ...(init.writable && options.shared
      ? {
          keep: (readers: Readers, inUse: (digest: string) => boolean, now: () => number) =>
            books(readers, inUse, now),
        }
      : {}),
    close: () => book.close(),
  };
}

/** The index, its evictor and the admin control over them, opened (undefined: the index would not open). */
async function openBooks(parts: {
  root: string;
  options: OpenCacheOptions;
  remove: (victim: Victim) => Promise<void>;
  readers: Readers;
  inUse: (digest: string) => boolean;
  /**
   * The bookkeeper's clock (when each replica's event happened): with it, whatever index is there
   * is rebuilt from the files (a bookkeeper taking over a stale one).
   */
  now?: () => number;
}): Promise<KeptBooks | undefined> {
  const { options, remove, readers, inUse, now } = parts;
  if (now) await removeIndexFiles(parts.root);
  const index = await openIndex(parts.root, options, now);
  if (!index) return undefined;
  const evictor = new Evictor({
    index,
    config: options.eviction,
    inUse,
    remove,
    onError: options.onIndexError,
  });
  const { storage } = options;
  const control = new CacheControl({
    index,
    evictor,
    maxSize: options.eviction.maxSize,
    configPins: options.eviction.pins,
    remove,
    inUse,
    onError: options.onIndexError,
    ...(storage ? { removeTag: (tag) => removeTagRecord(storage.records, tag) } : {}),
    ...(storage ? { stores: storage } : {}),
  });
  return { book: new IndexedBook({ index, readers, evictor, onPass: options.onPass }), control, index };
}

async function removeIndexFiles(root: string): Promise<void> {
  const file = path.join(root, 'index.db');
  await Promise.all(['', '-wal', '-shm'].map((suffix) => rm(file + suffix, { force: true })));
}

/**
 * Opens the index (rebuilding it from the files when it is missing or unreadable), reports how
 * it was found, and reconciles it with the files in the background after an unclean stop.
 */
async function openIndex(
  root: string,
  options: OpenCacheOptions,
  now?: () => number,
): Promise<CacheIndex | undefined> {
  let index: CacheIndex;
  try {
    const scan = options.storage?.scan;
    index = await CacheIndex.open(root, {
      onError: options.onIndexError,
      ...(scan ? { scan } : {}),
      ...(now ? { now } : {}),
    });
  } catch (error) {
    options.onIndexError(error);
    return undefined;
  }
  options.onIndexOpen?.(index.opened);
  // Another store without a scan cannot be reconciled: the directory's files are not its content.
  if (index.opened.unclean && (!options.storage || options.storage.scan)) {
    void index.reconcile().then((stats) => options.onReconciled?.(stats), options.onIndexError);
  }
  return index;
}
