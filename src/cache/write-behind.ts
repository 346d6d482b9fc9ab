// The bytes of a fill between upstream and the temp file: chunks are kept in memory as they
// arrive and written to the file behind them in batches (one writev per WRITE_BATCH bytes, not one
// write per upstream chunk), and readers close behind the fill copy from memory instead of asking
// the disk for what just went by. Memory stays bounded: upstream waits once QUEUE_LIMIT bytes are
// not yet in the file, and written chunks are dropped once TAIL_KEEP bytes are held.
import type { BlobWriter } from './blobs.ts';

const MiB = 1024 * 1024;
/** Bytes that start a write; smaller remainders wait for more or for flush(). */
const WRITE_BATCH = 1 * MiB;
/** Bytes not yet in the file beyond which push() waits for the disk. */
const QUEUE_LIMIT = 4 * MiB;
/** Written bytes kept in memory for readers a little behind the newest chunk. */
const TAIL_KEEP = 1 * MiB;

interface Chunk {
  /** Offset of the chunk's first byte in the blob. */
  readonly start: number;
  readonly bytes: Buffer;
}

export class WriteBehind {
  readonly #writer: BlobWriter;
  readonly #onProgress: () => void;
  /** Chunks in memory, in blob order, contiguous: written ones first, then the unwritten. */
  #chunks: Chunk[] = [];
  /** Index into #chunks of the first chunk not yet handed to the writer. */
  #unwritten = 0;
  #received = 0;
  #running: Promise<void> | undefined;
  #error: Error | undefined;

  /** `onProgress` runs after each chunk arrives and after each write reaches the file. */
  constructor(writer: BlobWriter, onProgress: () => void) {
    this.#writer = writer;
    this.#onProgress = onProgress;
  }

  /** Bytes received from upstream so far (in memory, the file, or both). */
  get received(): number {
    return this.#received;
  }

  /** Bytes in the temp file so far: positional reads below this see them. */
  get written(): number {
    return this.#writer.bytesWritten;
  }

  /** Takes `chunk`; waits for the disk only when QUEUE_LIMIT bytes are not in the file yet. */
  async push(chunk: Buffer): Promise<void> {
    this.#throwIfFailed();
    if (chunk.length === 0) return;
    this.#chunks.push({ start: this.#received, bytes: chunk });
    this.#received += chunk.length;
    this.#onProgress();
    const queued = this.#received - this.written;
    if (queued >= WRITE_BATCH) void this.#kick(false);
    if (queued >= QUEUE_LIMIT) await this.#running;
    this.#throwIfFailed();
  }

  /** Writes what is left; resolves once every byte received is in the file. */
  async flush(): Promise<void> {
    while (this.written < this.#received && !this.#error) await this.#kick(true);
    this.#throwIfFailed();
  }

  /**
   * Copies bytes from `position` (below `received`) up to `limit` (exclusive) into `buffer` from
   * memory; returns how many, 0 when `position` is no longer in memory (it is in the file).
   */
  copy(position: number, buffer: Buffer, limit: number): number {
    const chunks = this.#chunks;
    if (chunks.length === 0 || position < chunks[0]!.start) return 0;
    let index = 0;
    while (index < chunks.length && chunks[index]!.start + chunks[index]!.bytes.length <= position) index++;
    let copied = 0;
    let at = position;
    const stop = Math.min(limit, position + buffer.length);
    for (; index < chunks.length && at < stop; index++) {
      const { start, bytes } = chunks[index]!;
      const from = at - start;
      const count = Math.min(bytes.length - from, stop - at);
      bytes.copy(buffer, copied, from, from + count);
      copied += count;
      at += count;
    }
    return copied;
  }

  /** Drops every chunk from memory (the fill is over: readers use the file). */
  release(): void {
    this.#chunks = [];
    this.#unwritten = 0;
  }

  #throwIfFailed(): void {
    if (this.#error) throw this.#error;
  }

  /** Starts writing unless a write is under way; resolves when that run of writes ends. */
  #kick(all: boolean): Promise<void> {
    // Cleared in a callback, never synchronously, so it cannot run before the assignment.
    this.#running ??= this.#drain(all).finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Never rejects: an error is kept for push() and flush() to throw. */
  async #drain(all: boolean): Promise<void> {
    try {
      while (this.#unwritten < this.#chunks.length) {
        if (!all && this.#received - this.written < WRITE_BATCH) break;
        const batch = this.#chunks.slice(this.#unwritten).map((chunk) => chunk.bytes);
        this.#unwritten = this.#chunks.length;
        await this.#writer.write(batch);
        this.#trim();
        this.#onProgress();
      }
    } catch (error) {
      this.#error = error instanceof Error ? error : new Error(String(error));
    }
  }

  /** Drops written chunks from the front while more than TAIL_KEEP bytes stay in memory. */
  #trim(): void {
    let drop = 0;
    while (drop < this.#unwritten) {
      const next = this.#chunks[drop + 1];
      // Bytes that would remain in memory without this chunk.
      const remaining = this.#received - (next?.start ?? this.#received);
      if (remaining < TAIL_KEEP) break;
      drop++;
    }
    if (drop === 0) return;
    this.#chunks = this.#chunks.slice(drop);
    this.#unwritten -= drop;
  }
}
