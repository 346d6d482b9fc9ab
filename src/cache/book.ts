// The cache's bookkeeping as the registry endpoints see it: what is being read (never evicted
// under a reader), what was used (recency for eviction), what was stored and tagged (the index),
// and whether a new fill may be stored (the size cap and the free-space floor). Built on the
// index and the evictor when the cache can be written; a read-only cache keeps no books.
import { NotAdmittedError } from './errors.ts';
import type { Evictor, PassResult } from './eviction.ts';
import type { CacheIndex, Source } from './index.ts';

export interface CacheBook {
  /** A client reads `digest` from the cache until the returned function is called (idempotent). */
  reading(digest: string): () => void;
  /** Whether a client is reading `digest` now. */
  inUse(digest: string): boolean;
  /** `digest` was served: recently used (a manifest refreshes its image). */
  used(digest: string): void;
  /** Whether a new fill of `size` bytes (unknown: undefined) from `host` may be stored; why not. */
  admit(size: number | undefined, host: string): Promise<NotAdmittedError | undefined>;
  storedBlob(digest: string, size: number, source: Source): void;
  storedManifest(digest: string, content: Uint8Array, source: Source): void;
  tagged(host: string, repository: string, tag: string, digest: string): void;
  /** What the cache holds, as the index counts it; undefined without an index. */
  usage(): { bytes: number; files: number } | undefined;
  /** Stops background passes and writes what is queued. */
  close(): Promise<void>;
}

/** Readers by digest: shared by every kind of book, since even a read-only cache has readers. */
export class Readers {
  readonly #counts = new Map<string, number>();

  acquire(digest: string): () => void {
    this.#counts.set(digest, (this.#counts.get(digest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#counts.get(digest) ?? 1) - 1;
      if (left === 0) this.#counts.delete(digest);
      else this.#counts.set(digest, left);
    };
  }

  has(digest: string): boolean {
    return this.#counts.has(digest);
  }
}

/** Books of a cache without an index (read-only, or an index that could not be opened). */
export class NoBook implements CacheBook {
  readonly #readers: Readers;

  constructor(readers = new Readers()) {
    this.#readers = readers;
  }

  reading(digest: string): () => void {
    return this.#readers.acquire(digest);
  }

  inUse(digest: string): boolean {
    return this.#readers.has(digest);
  }

  used(): void {}

  admit(): Promise<NotAdmittedError | undefined> {
    return Promise.resolve(undefined);
  }

  storedBlob(): void {}
  storedManifest(): void {}
  tagged(): void {}

  usage(): undefined {
    return undefined;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export interface IndexedBookOptions {
  readonly index: CacheIndex;
  /** The readers the evictor asks about (counted before this book existed, by DeferredBook). */
  readonly readers: Readers;
  readonly evictor: Evictor;
  /** How often bounds are checked without a store (expiry, disks filled by others). */
  readonly checkIntervalMs?: number;
  /** Each pass that evicted something or left a bound unmet. */
  readonly onPass?: (result: PassResult) => void;
}

/** Books kept in the index, with eviction after stores and on a timer. */
export class IndexedBook implements CacheBook {
  readonly #readers: Readers;
  readonly #index: CacheIndex;
  readonly #evictor: Evictor;
  readonly #onPass: ((result: PassResult) => void) | undefined;
  readonly #timer: NodeJS.Timeout;

  constructor(options: IndexedBookOptions) {
    this.#readers = options.readers;
    this.#index = options.index;
    this.#evictor = options.evictor;
    this.#onPass = options.onPass;
    this.#timer = setInterval(() => this.#check(), options.checkIntervalMs ?? 60_000).unref();
  }

  reading(digest: string): () => void {
    return this.#readers.acquire(digest);
  }

  inUse(digest: string): boolean {
    return this.#readers.has(digest);
  }

  used(digest: string): void {
    this.#index.touch(digest);
  }

  async admit(size: number | undefined, host: string): Promise<NotAdmittedError | undefined> {
    if (await this.#evictor.admit(size ?? 0, host)) return undefined;
    return new NotAdmittedError('larger than the cache allows, or the disk is below cache.minFree');
  }

  storedBlob(digest: string, size: number, source: Source): void {
    this.#index.recordBlob(digest, size, source);
    this.#check();
  }

  storedManifest(digest: string, content: Uint8Array, source: Source): void {
    this.#index.recordManifest(digest, content, source);
    this.#check();
  }

  tagged(host: string, repository: string, tag: string, digest: string): void {
    this.#index.recordTag(host, repository, tag, digest);
  }

  usage(): { bytes: number; files: number } {
    return { bytes: this.#index.usage().total, files: this.#index.files() };
  }

  /** Evicts in the background when a bound is passed (after a store, and on the timer). */
  #check(): void {
    void this.#evictor.schedule().then((result) => {
      if (result && (result.evicted.length > 0 || result.unmet.length > 0)) this.#onPass?.(result);
    });
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#evictor.stop();
    this.#index.close();
  }
}

/**
 * Books while the index opens in the background (a rebuild from the files takes seconds with a
 * large cache, and start-up must not wait for it): readers are counted all along, what is
 * stored, tagged or used meanwhile is queued and handed to the index's book once it is open,
 * and nothing is evicted before.
 */
export class DeferredBook implements CacheBook {
  readonly #readers = new Readers();
  readonly #waiting = new NoBook(this.#readers);
  #book: CacheBook | undefined;
  /** Calls made before the index was open; dropped if it never opens. */
  #queued: Array<(book: CacheBook) => void> | undefined = [];
  readonly #opened: Promise<unknown>;

  /** `open` gets the readers to share; its book takes over once it resolves (undefined: none). */
  constructor(open: (readers: Readers) => Promise<CacheBook | undefined>) {
    this.#opened = open(this.#readers).then((book) => {
      const queued = this.#queued ?? [];
      this.#queued = undefined;
      this.#book = book ?? this.#waiting;
      for (const call of queued) call(this.#book);
    });
  }

  reading(digest: string): () => void {
    return (this.#book ?? this.#waiting).reading(digest);
  }

  inUse(digest: string): boolean {
    return this.#readers.has(digest);
  }

  admit(size: number | undefined, host: string): Promise<NotAdmittedError | undefined> {
    return (this.#book ?? this.#waiting).admit(size, host);
  }

  used(digest: string): void {
    this.#call((book) => book.used(digest));
  }

  storedBlob(digest: string, size: number, source: Source): void {
    this.#call((book) => book.storedBlob(digest, size, source));
  }

  storedManifest(digest: string, content: Uint8Array, source: Source): void {
    this.#call((book) => book.storedManifest(digest, content, source));
  }

  tagged(host: string, repository: string, tag: string, digest: string): void {
    this.#call((book) => book.tagged(host, repository, tag, digest));
  }

  /** Unknown (undefined) until the index is open. */
  usage(): { bytes: number; files: number } | undefined {
    return (this.#book ?? this.#waiting).usage();
  }

  /** Resolves once the index is open, or known not to open. */
  async whenOpen(): Promise<void> {
    await this.#opened;
  }

  async close(): Promise<void> {
    await this.#opened;
    await this.#book?.close();
  }

  #call(call: (book: CacheBook) => void): void {
    if (this.#book) call(this.#book);
    else this.#queued?.push(call);
  }
}
