// A ByteSource over an object's body as the SDK hands it (a Node stream): each read copies the
// next bytes into the caller's buffer, so the sender's few reused buffers work as with a file.
import type { Readable } from 'node:stream';
import type { ByteSource } from '../cache/blobs.ts';

export class StreamSource implements ByteSource {
  readonly #stream: Readable;
  readonly #chunks: AsyncIterator<Buffer>;
  #pending: Buffer = Buffer.alloc(0);
  #closed = false;

  constructor(stream: Readable) {
    this.#stream = stream;
    this.#chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async read(buffer: Buffer): Promise<number> {
    while (this.#pending.length === 0) {
      if (this.#closed) return 0;
      const next = await this.#chunks.next();
      if (next.done) return 0;
      this.#pending = next.value;
    }
    const count = this.#pending.copy(buffer);
    this.#pending = this.#pending.subarray(count);
    return count;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#stream.destroy();
    }
    return Promise.resolve();
  }
}
