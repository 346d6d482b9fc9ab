// One fill: the upstream body of one digest, hashed as it arrives, written to a temp file behind
// it (write-behind.ts), and read by every client that asks while it runs, each from its own
// offset at its own pace (fill-cursor.ts): a slow client never slows the fill while the file
// can be written, and a client that leaves does not stop it.
// A disk that fails (at open, part-way, at the final flush, at close or rename) never fails the
// readers: the temp file is unlinked at once and the fill goes on as a relay from upstream,
// still verified, storing nothing. On a digest or size mismatch, or an upstream fault, every
// reader fails (never a short body that looks complete) and nothing is published.
import { EventEmitter } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { DigestVerifier, type ParsedDigest } from '../oci/digest.ts';
import type { BlobWriter, ByteRange, ByteSource } from './blobs.ts';
import { asError } from './errors.ts';
import { FillCursor } from './fill-cursor.ts';
import { WriteBehind } from './write-behind.ts';

/**
 * A body that hands its bytes to a sink as views of a buffer it reuses (upstream/h1/body.ts):
 * the sink copies them before write() returns, and asks for a pause with room().
 */
export interface PushedBody {
  pushTo(sink: {
    write(view: Buffer): void;
    room(): Promise<void> | undefined;
    space(): Buffer | undefined;
  }): Promise<void>;
  destroy(error?: Error): void;
}

export interface FillSource {
  /**
   * The upstream body. The fill reads it to the end; leaving early (nobody left to read a fill
   * that cannot be stored) destroys it, so the fill never has to.
   */
  readonly body: AsyncIterable<Buffer> | (AsyncIterable<Buffer> & PushedBody);
  /** Content-Length announced upstream, if any: checked at the end. */
  readonly size: number | undefined;
}

export type FillState = 'running' | 'done' | 'failed';

/**
 * How a fill ended, when its content was right (otherwise `settled` rejects): published, or not
 * stored because the disk refused (`cause`, its error); every reader got the whole blob either way.
 */
export type FillResult =
  { readonly stored: true; readonly size: number } | { readonly stored: false; readonly cause: Error };

/** Where a fill writes: its temp file (written by `writer`, read through `file`), or why none. */
export type FillTarget =
  { readonly writer: BlobWriter; readonly file: FileHandle } | { readonly cause: Error };

/** What the owner of the fills hears from one. */
export interface FillHooks {
  /** Once: the fill takes no new reader from byte 0 any more (it ended, or dropped bytes). */
  readonly retired: () => void;
  /** Once, when the fill has settled. */
  readonly ended: () => void;
  /** Once, when the disk refused a write, after the temp file is gone. */
  readonly writeFailed: (error: Error, path: string) => void;
}

export class Fill extends EventEmitter {
  readonly digest: string;
  readonly size: number | undefined;
  /** Settles once every byte has arrived and been verified (or not). Never unhandled. */
  readonly settled: Promise<FillResult>;
  #state: FillState = 'running';
  #error: Error | undefined;
  #writeFailure: Error | undefined;
  #abandoned = false;
  #retired = false;
  #notifying = false;
  #fileClosed = false;
  readonly #cursors = new Set<FillCursor>();
  readonly #behind: WriteBehind;
  readonly #verifier: DigestVerifier;
  readonly #writer: BlobWriter | undefined;
  readonly #file: FileHandle | undefined;
  readonly #hooks: FillHooks;

  /** Starts consuming `source` into `target` (or into memory only, when there is no file). */
  constructor(digest: ParsedDigest, source: FillSource, target: FillTarget, hooks: FillHooks) {
    super();
    this.setMaxListeners(0);
    this.digest = `${digest.algorithm}:${digest.hex}`;
    this.size = source.size;
    this.#verifier = new DigestVerifier(digest);
    this.#hooks = hooks;
    if ('cause' in target) this.#writeFailure = target.cause;
    else ({ writer: this.#writer, file: this.#file } = target);
    this.#behind = new WriteBehind(this.#writer, {
      onProgress: () => this.#notify(),
      onWriteFailure: (error) => this.#writeFailed(error),
      floor: () => this.#floor(),
    });
    this.settled = this.#run(source).then(
      (result) => {
        if (this.#abandoned) this.#settle('failed', new Error('fill abandoned: no reader, not cacheable'));
        else this.#settle('done');
        return result;
      },
      (error: unknown) => {
        this.#settle('failed', asError(error));
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

  /** False once the cache cannot be written: the fill relays upstream to its readers, unstored. */
  get caching(): boolean {
    return this.#writeFailure === undefined;
  }

  /** The disk's error, when the fill stores nothing because of it. */
  get writeFailure(): Error | undefined {
    return this.#writeFailure;
  }

  /**
   * Whether a new reader may still join from byte 0. Check it right before open(), in the same
   * turn of the event loop: a relay drops the bytes its readers have passed.
   */
  get joinable(): boolean {
    return this.#state === 'running' && this.#behind.canRead(0);
  }

  /** Bytes received from upstream so far (the dashboard's progress of a pull in flight). */
  get received(): number {
    return this.#behind.received;
  }

  /** Bytes of the blob held in memory now (bounded while relaying by RELAY_LIMIT and a chunk). */
  get held(): number {
    return this.#behind.held;
  }

  /** The blob (or `range` of it), read as the fill grows; close it when done. */
  open(range?: ByteRange): ByteSource {
    const start = range?.start ?? 0;
    if (this.#state !== 'failed' && (this.#fileClosed || !this.#behind.canRead(start)))
      throw new Error(`the fill of ${this.digest} has moved past byte ${start}`);
    const cursor = new FillCursor(this, this.#behind, this.#file, start, range ? range.end + 1 : Infinity, {
      moved: () => this.#readersMoved(),
      release: () => {
        if (!this.#cursors.delete(cursor)) return;
        this.#readersMoved();
        this.#maybeClose();
      },
    });
    this.#cursors.add(cursor);
    return cursor;
  }

  async #run(source: FillSource): Promise<FillResult> {
    try {
      const abandoned =
        'pushTo' in source.body ? await this.#pushed(source.body) : await this.#iterate(source.body);
      if (abandoned) return { stored: false, cause: this.#writeFailure! };
      this.#verifier.verify(this.size);
      await this.#behind.flush();
      if (this.#writer && !this.#writeFailure) {
        // Verified above: commit() only syncs, closes and renames, and any of those may fail.
        await this.#writer.commit().catch((error: unknown) => this.#writeFailed(asError(error)));
      }
      return this.#writeFailure
        ? { stored: false, cause: this.#writeFailure }
        : { stored: true, size: this.#verifier.size };
    } catch (error) {
      await this.#behind.stop();
      await this.#writer?.abort();
      throw error;
    }
  }

  /** Reads an iterable body; true when the fill was abandoned part-way. */
  async #iterate(body: AsyncIterable<Buffer>): Promise<boolean> {
    for await (const chunk of body) {
      this.#verifier.update(chunk);
      await this.#behind.push(chunk);
      if (this.#behind.relaying) this.#checkJoinable();
      // Returning leaves the loop: the iterator destroys the upstream body.
      if (this.#abandoned) return true;
    }
    return false;
  }

  /**
   * The hot path: the socket reads into the write-behind slabs themselves (space()), and each view
   * is hashed and kept where it landed; a view read elsewhere is copied in before the socket reads
   * again into the same buffer. No buffer is made per TLS record.
   */
  async #pushed(body: PushedBody): Promise<boolean> {
    const pushed = body.pushTo({
      write: (view) => {
        if (this.#abandoned) return;
        this.#verifier.update(view);
        this.#behind.take(view);
        if (this.#behind.relaying) this.#checkJoinable();
        // Destroyed without an error: the body then has nobody to tell, and pushTo() rejects.
        if (this.#abandoned) body.destroy();
      },
      room: () => this.#behind.room(),
      space: () => (this.#abandoned ? undefined : this.#behind.space()),
    });
    try {
      await pushed;
    } catch (error) {
      if (!this.#abandoned) throw error;
    }
    return this.#abandoned;
  }

  /** The disk refused: unlink the temp file now; readers keep the open read handle. */
  #writeFailed(error: Error): void {
    if (this.#writeFailure) return;
    this.#writeFailure = error;
    const writer = this.#writer!;
    void writer
      .abort()
      .catch(() => undefined)
      .then(() => this.#hooks.writeFailed(error, writer.tempPath));
    this.#readersMoved();
    this.#notify();
  }

  /** The lowest position an open reader still needs. */
  #floor(): number {
    let floor = Infinity;
    for (const cursor of this.#cursors) floor = Math.min(floor, cursor.needs);
    return floor;
  }

  #readersMoved(): void {
    if (!this.#behind.relaying) return;
    this.#behind.readersMoved();
    this.#checkJoinable();
  }

  /** A relay that dropped bytes takes no new readers; with none left, it stops fetching. */
  #checkJoinable(): void {
    if (this.#state !== 'running' || this.#behind.canRead(0)) return;
    this.#retire();
    if (this.#cursors.size === 0) this.#abandoned = true;
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
    // A relay keeps what its readers have not read yet; otherwise the file has it all.
    if (state === 'done' && this.#behind.relaying) this.#behind.readersMoved();
    else this.#behind.release();
    this.emit('progress');
    this.#retire();
    this.#hooks.ended();
    this.#maybeClose();
  }

  #retire(): void {
    if (this.#retired) return;
    this.#retired = true;
    this.#hooks.retired();
  }

  #maybeClose(): void {
    if (this.#state === 'running' || this.#cursors.size > 0 || this.#fileClosed) return;
    this.#fileClosed = true;
    void this.#file?.close().catch(() => undefined);
  }
}
