// Copies what one socket reads into another through a few reused buffers, at the pace of the
// slower side: the source reads into buffers we hand it (net.connect's `onread`), so that a
// long download makes no garbage. Without it every read allocates a fresh 64 KiB buffer, and
// the external-memory GCs that follow cost more than the copying (test/bench/scenarios/tunnel.ts).
// Does not own either socket's life: ends, errors and teardown stay with the caller.
import type net from 'node:net';
import { BufferPool } from '../buffer-pool.ts';

/** Bytes per read: large enough that one read drains what loopback TCP holds at a time. */
export const RELAY_BUFFER_BYTES = 256 * 1024;
/** Bytes queued on the sink above which the source stops reading until the sink catches up. */
export const RELAY_HIGH_WATER_BYTES = 1024 * 1024;

export class Relay {
  /** Pass to `net.connect` for the source; a source made without it still works (see `from`). */
  readonly onread: net.OnReadOpts;
  readonly #sink: net.Socket;
  readonly #highWater: number;
  /** Buffers neither being read into nor waiting in the sink's write queue. */
  readonly #free: BufferPool;
  #source: net.Socket | undefined;
  #paused = false;

  constructor(sink: net.Socket, options: { bufferBytes?: number; highWaterBytes?: number } = {}) {
    this.#sink = sink;
    const bufferBytes = options.bufferBytes ?? RELAY_BUFFER_BYTES;
    this.#highWater = options.highWaterBytes ?? RELAY_HIGH_WATER_BYTES;
    // Keep only as many as one high-water mark's worth; more are left to the GC.
    this.#free = new BufferPool(bufferBytes, Math.ceil(this.#highWater / bufferBytes));
    this.onread = {
      // Called for the first read and again after each one: the buffer the next read fills.
      // It is never one that a write still holds, so a read cannot overwrite bytes in flight.
      buffer: () => this.#free.take(),
      callback: (nread, buffer) => this.#forward((buffer as Buffer).subarray(0, nread), buffer as Buffer),
    };
  }

  /**
   * Starts copying from `source` (connected, made with `onread` or not) and ends the sink after
   * the source's end. A source made without `onread` (a Connector that drops it) emits its
   * reads as 'data' events instead; they take the same way, minus the reuse.
   */
  from(source: net.Socket): void {
    this.#source = source;
    source.on('data', (chunk: Buffer) => {
      if (!this.#forward(chunk, undefined)) source.pause();
    });
    source.once('end', () => this.#sink.end());
  }

  /** Writes `chunk` (a view of `buffer`, if pooled) to the sink; false: stop reading for now. */
  #forward(chunk: Buffer, buffer: Buffer | undefined): boolean {
    const sink = this.#sink;
    if (sink.destroyed) return false;
    sink.write(chunk, buffer ? () => this.#release(buffer) : () => this.#resumeIfDrained());
    if (sink.writableLength < this.#highWater) return true;
    // Returning false from `onread.callback` pauses the source the same way (net.js onStreamRead).
    this.#paused = true;
    return false;
  }

  #release(buffer: Buffer): void {
    this.#free.give(buffer);
    this.#resumeIfDrained();
  }

  #resumeIfDrained(): void {
    // Resume at half the mark, not just below it: a pause and resume per chunk costs syscalls.
    if (!this.#paused || this.#sink.writableLength > this.#highWater / 2) return;
    this.#paused = false;
    const source = this.#source;
    if (source && !source.destroyed) source.resume();
  }
}
