// The bytes of a fill in memory, between upstream, the temp file and the readers.
// While the file can be written, chunks are kept as they arrive and written behind them in batches
// (one writev per WRITE_BATCH bytes, not one write per upstream chunk), and readers close behind
// the fill copy from memory instead of asking the disk for what just went by; upstream waits once
// QUEUE_LIMIT bytes are not yet in the file, and written chunks leave memory once TAIL_KEEP bytes
// are held.
// Once a write fails (disk full, read-only, I/O error), or when there never was a file, the file
// stops growing ("relaying"): what it holds is still read through the fill's open read handle,
// and every later byte stays in memory until every open reader has passed it. Upstream then
// waits for the slowest reader instead of the disk, RELAY_LIMIT bytes ahead at most.
import { BufferPool } from '../buffer-pool.ts';
import type { BlobWriter } from './blobs.ts';
import { asError } from './errors.ts';

// These bound the memory of a fill while the disk keeps up: QUEUE_LIMIT + TAIL_KEEP and a chunk.
// Twenty cold fills at once hold twenty times that (test/bench measures it): at 4 MiB + 1 MiB
// that was 100 MiB of the proxy's peak; a 256 KiB writev costs the disk no more than a 1 MiB one.
const MiB = 1024 * 1024;
/** Bytes that start a write; smaller remainders wait for more or for flush(). */
export const WRITE_BATCH = MiB / 4;
/** Bytes not yet in the file beyond which push() waits for the disk. */
export const QUEUE_LIMIT = 1 * MiB;
/** Written bytes kept in memory for readers a little behind the newest chunk. */
const TAIL_KEEP = MiB / 4;
/** Bytes held in memory once the file cannot grow, beyond which push() waits for the readers. */
export const RELAY_LIMIT = 4 * MiB;

/**
 * Upstream chunks are copied into slabs of this size as they arrive. TLS hands each 16 KiB
 * record over in a new buffer; kept until written, they lived through two scavenges, got
 * promoted, and waited for a full collection as garbage (tens of MiB with 20 fills at once).
 * Copied, they die young; the slabs go back to the pool once written and passed.
 */
const SLAB = MiB / 4;
const slabs = new BufferPool(SLAB, 64);
/** With fewer bytes free at the end of the last slab, space() lends a new slab instead. */
const MIN_SPACE = 16 * 1024;

interface Chunk {
  /** Offset of the slab's first byte in the blob. */
  readonly start: number;
  readonly slab: Buffer;
  /** Bytes of the slab filled so far; only the last slab grows. */
  length: number;
}

export interface WriteBehindHooks {
  /** After each chunk arrives and after each write reaches the file. */
  readonly onProgress: () => void;
  /** Once, when a write fails: from then on `written` is final and the writer is not used. */
  readonly onWriteFailure?: (error: Error) => void;
  /** The lowest position an open reader still needs, Infinity when none: rules relay memory. */
  readonly floor?: () => number;
}

export class WriteBehind {
  /** Undefined once a write failed, or from the start when there is no file: relaying. */
  #writer: BlobWriter | undefined;
  readonly #hooks: WriteBehindHooks;
  /** Chunks in memory, in blob order, contiguous: written ones first, then the unwritten. */
  #chunks: Chunk[] = [];
  /** Bytes handed to the writer so far (in the file, or in a write under way). */
  #handed = 0;
  #received = 0;
  /** Bytes in the file once it stopped growing. */
  #written = 0;
  #running: Promise<void> | undefined;
  #stopped = false;
  /** Wakes a push() waiting for readers to pass what is held. */
  #wake: (() => void) | undefined;
  /** The slab space() lent last: the socket may still read into it, so it never goes back to the pool. */
  #lent: Buffer | undefined;

  constructor(writer: BlobWriter | undefined, hooks: WriteBehindHooks) {
    this.#writer = writer;
    this.#hooks = hooks;
  }

  /** Bytes received from upstream so far (in memory, the file, or both). */
  get received(): number {
    return this.#received;
  }

  /** Bytes in the temp file so far: positional reads below this see them. */
  get written(): number {
    return this.#writer?.bytesWritten ?? this.#written;
  }

  /** The file cannot grow (it failed, or never was): memory holds what readers still need. */
  get relaying(): boolean {
    return this.#writer === undefined;
  }

  /** Bytes of the blob held in memory now. */
  get held(): number {
    return this.#received - this.#memoryStart();
  }

  /** Whether a reader starting at `position` finds every later byte, in the file or memory. */
  canRead(position: number): boolean {
    return this.#memoryStart() <= Math.max(position, this.written);
  }

  /**
   * Takes `chunk`; waits for the disk while QUEUE_LIMIT bytes are not in the file yet, or, when
   * relaying, for the readers while RELAY_LIMIT bytes are held. Never rejects: a write that fails
   * turns the fill into a relay (onWriteFailure).
   */
  async push(chunk: Buffer): Promise<void> {
    this.take(chunk);
    await this.room();
  }

  /**
   * Copies `chunk` in at once (it may be a view of a buffer its owner reuses as soon as this
   * returns) and starts a write when a batch is ready. Follow it with room() to keep the bounds.
   */
  take(chunk: Buffer): void {
    if (chunk.length === 0 || this.#stopped) return;
    const last = this.#chunks.at(-1);
    if (last && isNext(chunk, last)) {
      // Read in place, into the space lent by space(): nothing to copy.
      last.length += chunk.length;
      this.#received += chunk.length;
      this.#arrived();
      return;
    }
    for (let from = 0; from < chunk.length;) {
      let tail = this.#chunks.at(-1);
      // Bytes from elsewhere never go into the space lent last: the socket may read into it next.
      if (
        tail === undefined ||
        tail.length === SLAB ||
        (tail.slab === this.#lent && chunk.buffer !== this.#lent.buffer)
      ) {
        tail = { start: this.#received, slab: slabs.take(), length: 0 };
        this.#chunks.push(tail);
      }
      const count = chunk.copy(tail.slab, tail.length, from);
      tail.length += count;
      from += count;
      this.#received += count;
    }
    this.#arrived();
  }

  /**
   * Memory the next socket read may fill: the free end of the last slab, or a new slab when that
   * has less than MIN_SPACE free. A chunk given to take() that starts right where the slab's bytes
   * end is kept where it is; anything else is copied as usual (so bytes read elsewhere, or read
   * here after this slab was dropped, are still right). Only the newest space is the caller's:
   * each call takes back the one before. Undefined once stopped.
   */
  space(): Buffer | undefined {
    if (this.#stopped) return undefined;
    let tail = this.#chunks.at(-1);
    if (tail === undefined || SLAB - tail.length < MIN_SPACE) {
      tail = { start: this.#received, slab: slabs.take(), length: 0 };
      this.#chunks.push(tail);
    }
    this.#lent = tail.slab;
    return tail.slab.subarray(tail.length);
  }

  #arrived(): void {
    this.#hooks.onProgress();
    if (this.#writer && this.#received - this.written >= WRITE_BATCH) void this.#kick(false);
  }

  /** Undefined while there is room for more; else settles once the disk or the readers made some. */
  room(): Promise<void> | undefined {
    if (this.#stopped) return undefined;
    if (this.#writer) return this.#received - this.written >= QUEUE_LIMIT ? this.#waitForDisk() : undefined;
    if (this.held < RELAY_LIMIT) return undefined;
    this.readersMoved();
    return this.held < RELAY_LIMIT ? undefined : this.#waitForReaders();
  }

  async #waitForDisk(): Promise<void> {
    await this.#running;
    // The write under way may have failed: the fill is a relay now, bounded by its readers.
    if (this.relaying) await this.#waitForReaders();
  }

  async #waitForReaders(): Promise<void> {
    while (this.relaying && !this.#stopped && this.held >= RELAY_LIMIT) {
      this.readersMoved();
      if (this.held < RELAY_LIMIT) break;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Writes what is left; resolves once every byte received is in the file, or it failed. */
  async flush(): Promise<void> {
    while (this.#writer && !this.#stopped && this.written < this.#received) await this.#kick(true);
  }

  /**
   * Copies bytes from `position` (below `received`) up to `limit` (exclusive) into `buffer` from
   * memory; returns how many, 0 when `position` is no longer in memory (it is in the file).
   */
  copy(position: number, buffer: Buffer, limit: number): number {
    const chunks = this.#chunks;
    if (chunks.length === 0 || position < chunks[0]!.start) return 0;
    let index = 0;
    while (index < chunks.length && chunks[index]!.start + chunks[index]!.length <= position) index++;
    let copied = 0;
    let at = position;
    const stop = Math.min(limit, position + buffer.length);
    for (; index < chunks.length && at < stop; index++) {
      const { start, slab, length } = chunks[index]!;
      const from = at - start;
      const count = Math.min(length - from, stop - at);
      slab.copy(buffer, copied, from, from + count);
      copied += count;
      at += count;
    }
    return copied;
  }

  /**
   * When relaying: drops the chunks that the file holds or that every open reader has passed,
   * and lets upstream go on if that made room. Call when a reader moves, opens or leaves.
   */
  readersMoved(): void {
    if (!this.relaying) return;
    const floor = Math.max(this.#hooks.floor?.() ?? Infinity, this.#written);
    let drop = 0;
    while (drop < this.#chunks.length && this.#chunks[drop]!.start + this.#chunks[drop]!.length <= floor)
      drop++;
    this.#drop(drop);
    if (this.held < RELAY_LIMIT || this.#stopped) this.#wakeUp();
  }

  /** Takes no more chunks and starts no more writes; resolves when the write under way ends. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wakeUp();
    await this.#running;
  }

  /** Drops every chunk from memory (the fill is over: readers use the file, or fail). */
  release(): void {
    this.#drop(this.#chunks.length);
  }

  /** Gives the first `count` slabs back to the pool: no reader or write may use them any more. */
  #drop(count: number): void {
    if (count === 0) return;
    for (const chunk of this.#chunks.splice(0, count)) if (chunk.slab !== this.#lent) slabs.give(chunk.slab);
  }

  #memoryStart(): number {
    return this.#chunks[0]?.start ?? this.#received;
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Starts writing unless a write is under way; resolves when that run of writes ends. */
  #kick(all: boolean): Promise<void> {
    // Cleared in a callback, never synchronously, so it cannot run before the assignment.
    this.#running ??= this.#drain(all).finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Never rejects: a failure makes the fill a relay. */
  async #drain(all: boolean): Promise<void> {
    const writer = this.#writer;
    if (!writer) return;
    try {
      while (!this.#stopped && this.#handed < this.#received) {
        if (!all && this.#received - this.written < WRITE_BATCH) break;
        // Bytes appended to the last slab after this point go in the next write.
        const batch: Buffer[] = [];
        for (const { start, slab, length } of this.#chunks) {
          const from = Math.max(this.#handed - start, 0);
          if (from < length) batch.push(slab.subarray(from, length));
        }
        this.#handed = this.#received;
        await writer.write(batch);
        this.#trim();
        this.#hooks.onProgress();
      }
    } catch (error) {
      if (this.#stopped) return;
      // What the writer got into the file before it failed is still read from there.
      this.#written = writer.bytesWritten;
      this.#writer = undefined;
      this.#hooks.onWriteFailure?.(asError(error));
    }
  }

  /** Drops written slabs from the front while more than TAIL_KEEP bytes stay in memory. */
  #trim(): void {
    const written = this.written;
    let drop = 0;
    for (; drop < this.#chunks.length; drop++) {
      const chunk = this.#chunks[drop]!;
      if (chunk.start + chunk.length > written) break;
      const next = this.#chunks[drop + 1];
      // Bytes that would remain in memory without this slab.
      const remaining = this.#received - (next?.start ?? this.#received);
      if (remaining < TAIL_KEEP) break;
    }
    this.#drop(drop);
  }
}

/** Whether `chunk` lies in `tail`'s slab right after its bytes: read there, in place. */
function isNext(chunk: Buffer, tail: Chunk): boolean {
  const { slab } = tail;
  return (
    chunk.buffer === slab.buffer &&
    chunk.byteOffset === slab.byteOffset + tail.length &&
    chunk.byteOffset + chunk.length <= slab.byteOffset + slab.length
  );
}
