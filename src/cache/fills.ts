// Fills in progress: one upstream fetch per digest at a time, shared by every client that asks
// while it runs. The fill writes the upstream body into the store's temp file at upstream speed
// (hashing on the way, in batches: write-behind.ts); each client reads from its own offset at its
// own pace, from memory while it keeps up and from the file when it falls behind, so every waiter
// has its response headers at once, a slow client never slows the fill, and a client that leaves
// does not stop it.
// On a digest or size mismatch, or an upstream fault, every reader fails (never a short body that
// looks complete) and nothing is published.
import { EventEmitter, once } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import type { BlobStore, BlobWriter, ByteRange, ByteSource } from './blobs.ts';
import { WriteBehind } from './write-behind.ts';

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

export class Fill extends EventEmitter {
  readonly digest: string;
  readonly size: number | undefined;
  /** Settles when the blob is published (resolves) or dropped (rejects). Never unhandled. */
  readonly settled: Promise<void>;
  #state: FillState = 'running';
  #error: Error | undefined;
  #readers = 0;
  #notifying = false;
  readonly #behind: WriteBehind;
  readonly #file: FileHandle;
  readonly #onIdle: () => void;

  /** Starts consuming `source` into `writer`; `file` is the temp file opened for reading. */
  constructor(digest: string, source: FillSource, writer: BlobWriter, file: FileHandle, onIdle: () => void) {
    super();
    this.setMaxListeners(0);
    this.digest = digest;
    this.size = source.size;
    this.#file = file;
    this.#onIdle = onIdle;
    this.#behind = new WriteBehind(writer, () => this.#notify());
    this.settled = this.#run(source, writer).then(
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

  /** The blob (or `range` of it), read as the fill grows; close it when done. */
  open(range?: ByteRange): ByteSource {
    this.#readers += 1;
    let released = false;
    const start = range?.start ?? 0;
    const end = range ? range.end + 1 : Infinity;
    return new FillCursor(this, this.#behind, this.#file, start, end, () => {
      if (released) return;
      released = true;
      this.#readers -= 1;
      this.#maybeClose();
    });
  }

  async #run(source: FillSource, writer: BlobWriter): Promise<void> {
    try {
      for await (const chunk of source.body) await this.#behind.push(chunk);
      await this.#behind.flush();
      await writer.commit(source.size);
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  /**
   * Wakes the readers once per turn of the event loop, not once per upstream chunk: TLS hands
   * over 16 KiB records, several per socket read, and a reader woken for each would send each
   * on its own (a write to the client per 16 KiB).
   */
  #notify(): void {
    if (this.#notifying) return;
    this.#notifying = true;
    setImmediate(() => {
      this.#notifying = false;
      this.emit('progress');
    });
  }

  #settle(state: FillState, error?: Error): void {
    this.#state = state;
    this.#error = error;
    this.#behind.release();
    this.emit('progress');
    this.#onIdle();
    this.#maybeClose();
  }

  #maybeClose(): void {
    if (this.#state !== 'running' && this.#readers === 0) void this.#file.close().catch(() => undefined);
  }
}

class FillCursor implements ByteSource {
  readonly #fill: Fill;
  readonly #behind: WriteBehind;
  readonly #file: FileHandle;
  /** Exclusive. */
  readonly #end: number;
  readonly #release: () => void;
  #position: number;

  constructor(
    fill: Fill,
    behind: WriteBehind,
    file: FileHandle,
    start: number,
    end: number,
    release: () => void,
  ) {
    this.#fill = fill;
    this.#behind = behind;
    this.#file = file;
    this.#position = start;
    this.#end = end;
    this.#release = release;
  }

  async read(buffer: Buffer): Promise<number> {
    for (;;) {
      if (this.#position >= this.#end) return 0;
      const fill = this.#fill;
      const behind = this.#behind;
      if (fill.state === 'failed') throw fill.error ?? new Error('fill failed');
      // The last byte of a sized blob is held back until the digest is verified: with a
      // Content-Length, the final byte is what makes the client take the response as complete.
      const ceiling =
        fill.state === 'done' || fill.size === undefined
          ? behind.received
          : Math.min(behind.received, fill.size - 1);
      const limit = Math.min(ceiling, this.#end);
      if (limit > this.#position) {
        let count = behind.copy(this.#position, buffer, limit);
        if (count === 0) {
          // Gone from memory, so in the file (written chunks leave memory first).
          const length = Math.min(limit, behind.written) - this.#position;
          ({ bytesRead: count } = await this.#file.read(
            buffer,
            0,
            Math.min(length, buffer.length),
            this.#position,
          ));
          if (count === 0) throw new Error('temp file shorter than written');
        }
        this.#position += count;
        return count;
      }
      if (fill.state === 'done') return 0;
      await once(fill, 'progress');
    }
  }

  close(): Promise<void> {
    this.#release();
    return Promise.resolve();
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
    const fill = new Fill(digest, source, writer, file, () => {
      if (this.#active.get(digest) === fill) this.#active.delete(digest);
      if (this.#active.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
    });
    this.#active.set(digest, fill);
    return fill;
  }

  /** Resolves when no fill is running (tests and shutdown wait on it; no polling). */
  idle(): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
