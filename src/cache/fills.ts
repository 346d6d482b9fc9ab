// Fills in progress: one upstream fetch per digest at a time, shared by every client that asks
// while it runs. The fill writes the upstream body into the store's temp file at upstream speed
// (hashing on the way); each client reads that file from its own offset at its own pace, so
// every waiter has its response headers at once, a slow client never slows the fill, and a
// client that leaves does not stop it. On a digest or size mismatch, or an upstream fault, every
// reader is destroyed (never a short body that looks complete) and nothing is published.
import { EventEmitter, once } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { BlobStore, ByteRange } from './blobs.ts';

export interface FillSource {
  /**
   * The upstream body. The fill iterates it to the end; leaving the loop early (a write that
   * fails) makes the iterator destroy it, so the fill never has to.
   */
  readonly body: AsyncIterable<Buffer>;
  /** Content-Length announced upstream, if any: checked at the end. */
  readonly size: number | undefined;
}

type FillState = 'running' | 'done' | 'failed';

const READ_CHUNK = 1024 * 1024;

export class Fill extends EventEmitter {
  readonly digest: string;
  readonly size: number | undefined;
  /** Settles when the blob is published (resolves) or dropped (rejects). Never unhandled. */
  readonly settled: Promise<void>;
  #state: FillState = 'running';
  #error: Error | undefined;
  #written = 0;
  #readers = 0;
  readonly #file: FileHandle;
  readonly #onIdle: () => void;

  constructor(
    digest: string,
    size: number | undefined,
    file: FileHandle,
    run: (fill: Fill) => Promise<void>,
    onIdle: () => void,
  ) {
    super();
    this.setMaxListeners(0);
    this.digest = digest;
    this.size = size;
    this.#file = file;
    this.#onIdle = onIdle;
    this.settled = run(this).then(
      () => this.#settle('done'),
      (error: unknown) => {
        this.#settle('failed', error instanceof Error ? error : new Error(String(error)));
        throw error;
      },
    );
    this.settled.catch(() => undefined);
  }

  get state(): FillState {
    return this.#state;
  }

  get error(): Error | undefined {
    return this.#error;
  }

  /** Bytes safely in the temp file so far. */
  get written(): number {
    return this.#written;
  }

  /** Called by the pump after each chunk reached the file. */
  progress(written: number): void {
    this.#written = written;
    this.emit('progress');
  }

  /** A stream of the blob (or of `range`) that follows the fill as it grows. */
  reader(range?: ByteRange): Readable {
    this.#readers += 1;
    return new FillReader(this, this.#file, range?.start ?? 0, range?.end ?? Number.POSITIVE_INFINITY, () => {
      this.#readers -= 1;
      this.#maybeClose();
    });
  }

  #settle(state: FillState, error?: Error): void {
    this.#state = state;
    this.#error = error;
    this.emit('progress');
    this.#onIdle();
    this.#maybeClose();
  }

  #maybeClose(): void {
    if (this.#state !== 'running' && this.#readers === 0) void this.#file.close().catch(() => undefined);
  }
}

class FillReader extends Readable {
  readonly #fill: Fill;
  readonly #file: FileHandle;
  readonly #end: number;
  readonly #release: () => void;
  #position: number;
  #reading = false;

  constructor(fill: Fill, file: FileHandle, start: number, end: number, release: () => void) {
    super({ highWaterMark: READ_CHUNK });
    this.#fill = fill;
    this.#file = file;
    this.#position = start;
    this.#end = end;
    this.#release = release;
  }

  override _read(): void {
    if (this.#reading) return;
    this.#reading = true;
    this.#next().then(
      () => (this.#reading = false),
      (error: unknown) => this.destroy(error instanceof Error ? error : new Error(String(error))),
    );
  }

  async #next(): Promise<void> {
    for (;;) {
      if (this.destroyed) return;
      if (this.#position > this.#end) {
        this.push(null);
        return;
      }
      const fill = this.#fill;
      if (fill.state === 'failed') throw fill.error ?? new Error('fill failed');
      // The last byte of a sized blob is held back until the digest is verified: with a
      // Content-Length, the final byte is what makes the client take the response as complete.
      const ceiling =
        fill.state === 'done' || fill.size === undefined
          ? fill.written
          : Math.min(fill.written, fill.size - 1);
      const available = ceiling - this.#position;
      if (available > 0) {
        const length = Math.min(available, this.#end + 1 - this.#position, READ_CHUNK);
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await this.#file.read(buffer, 0, length, this.#position);
        if (bytesRead === 0) throw new Error('temp file shorter than written');
        this.#position += bytesRead;
        this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
        return;
      }
      if (fill.state === 'done') {
        this.push(null);
        return;
      }
      await once(fill, 'progress');
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#release();
    callback(error);
  }
}

/** A caller's exclusive right to start the fill of one digest; joiners wait on it. */
export interface Claim {
  /** Starts the fill (see Fills.start); joiners receive it. */
  start(source: FillSource): Promise<Fill>;
  /** Gives the claim up without a fill (upstream said no, or the cache cannot be written). */
  release(): void;
}

/** The fills running now, by digest, and the claims about to start one. */
export class Fills {
  readonly #active = new Map<string, Fill>();
  readonly #claims = new Map<string, Promise<Fill | undefined>>();
  readonly #store: BlobStore;
  #idle: Array<() => void> = [];

  constructor(store: BlobStore) {
    this.#store = store;
  }

  get size(): number {
    return this.#active.size;
  }

  /**
   * The running fill of `digest`, or a promise of the one being started (undefined if that
   * start fails), or undefined when nobody is fetching it. Synchronous, so that a caller can
   * check and then claim without another request slipping in between.
   */
  lookup(digest: string): Fill | Promise<Fill | undefined> | undefined {
    return this.#active.get(digest) ?? this.#claims.get(digest);
  }

  /** Claims `digest`: until start() or release(), lookup() hands joiners a promise. */
  claim(digest: string): Claim {
    let settle: (fill: Fill | undefined) => void = () => undefined;
    const promise = new Promise<Fill | undefined>((resolve) => (settle = resolve));
    this.#claims.set(digest, promise);
    let done = false;
    const finish = (fill: Fill | undefined) => {
      if (done) return;
      done = true;
      if (this.#claims.get(digest) === promise) this.#claims.delete(digest);
      settle(fill);
    };
    return {
      start: async (source) => {
        try {
          const fill = await this.#start(digest, source);
          finish(fill);
          return fill;
        } catch (error) {
          finish(undefined);
          throw error;
        }
      },
      release: () => finish(undefined),
    };
  }

  /**
   * Starts filling `digest` from `source`. Rejects before consuming anything if the cache cannot
   * be written (the caller then streams the body to its client without caching).
   */
  async #start(digest: string, source: FillSource): Promise<Fill> {
    const writer = await this.#store.begin(digest);
    let file: FileHandle;
    try {
      file = await open(writer.tempPath, 'r');
    } catch (error) {
      await writer.abort();
      throw error;
    }
    const fill = new Fill(
      digest,
      source.size,
      file,
      async (self) => {
        try {
          for await (const chunk of source.body) {
            await writer.write(chunk);
            self.progress(writer.bytesWritten);
          }
          await writer.commit(source.size);
        } catch (error) {
          await writer.abort();
          throw error;
        }
      },
      () => {
        if (this.#active.get(digest) === fill) this.#active.delete(digest);
        if (this.#active.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
      },
    );
    this.#active.set(digest, fill);
    return fill;
  }

  /** Resolves when no fill is running (tests and shutdown wait on it; no polling). */
  idle(): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
