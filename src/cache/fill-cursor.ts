// One reader of a fill: its own offset and pace, bytes copied from memory while it keeps close to
// the fill and read from the temp file (through the fill's handle) when it falls behind. It
// never returns the last byte of a sized blob before the fill has verified the digest.
import { once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import type { ByteSource } from './blobs.ts';
import type { Fill } from './fill.ts';
import type { WriteBehind } from './write-behind.ts';

export interface CursorHooks {
  /** After each read: a relay may drop what every reader has passed. */
  readonly moved: () => void;
  readonly release: () => void;
}

export class FillCursor implements ByteSource {
  readonly #fill: Fill;
  readonly #behind: WriteBehind;
  readonly #file: FileHandle | undefined;
  /** Exclusive. */
  readonly #end: number;
  readonly #hooks: CursorHooks;
  #position: number;

  constructor(
    fill: Fill,
    behind: WriteBehind,
    file: FileHandle | undefined,
    start: number,
    end: number,
    hooks: CursorHooks,
  ) {
    this.#fill = fill;
    this.#behind = behind;
    this.#file = file;
    this.#position = start;
    this.#end = end;
    this.#hooks = hooks;
  }

  /** The first byte this reader still needs (Infinity once it has all it asked for). */
  get needs(): number {
    return this.#position < this.#end ? this.#position : Infinity;
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
        if (count === 0) count = await this.#readFile(buffer, limit);
        this.#position += count;
        this.#hooks.moved();
        return count;
      }
      if (fill.state === 'done') return 0;
      await once(fill, 'progress');
    }
  }

  close(): Promise<void> {
    this.#hooks.release();
    return Promise.resolve();
  }

  /**
   * Bytes gone from memory are in the file: written chunks leave memory first, and once the file
   * stops growing, the rest leave only when every open reader has passed them.
   */
  async #readFile(buffer: Buffer, limit: number): Promise<number> {
    const length = Math.min(limit, this.#behind.written) - this.#position;
    if (!this.#file || length <= 0) throw new Error('fill lost bytes a reader still needs');
    const { bytesRead } = await this.#file.read(buffer, 0, Math.min(length, buffer.length), this.#position);
    if (bytesRead === 0) throw new Error('temp file shorter than written');
    return bytesRead;
  }
}
