// Free buffers of one size for code that streams through a few reused buffers instead of a new
// one per chunk (registry/respond/pump.ts for blob responses, proxy/relay.ts for tunnels): each buffer
// comes back once its bytes are written, so a GiB makes no garbage for V8 to collect.

export class BufferPool {
  readonly #free: Buffer[] = [];
  readonly #size: number;
  readonly #keep: number;

  /** Buffers of `size` bytes; at most `keep` free ones are kept, more are left to the GC. */
  constructor(size: number, keep: number) {
    this.#size = size;
    this.#keep = keep;
  }

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#size);
  }

  give(buffer: Buffer): void {
    if (this.#free.length < this.#keep) this.#free.push(buffer);
  }
}
