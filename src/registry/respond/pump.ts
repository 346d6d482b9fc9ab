// Sends a ByteSource (a cached blob, a fill in progress) to a client through a few reused
// buffers: a buffer goes back to the pool only when the socket has taken its bytes (the write
// callback), so a GiB costs no allocation per chunk and no garbage for V8 to collect. The same
// bound is the backpressure: at most DEPTH buffers are written and not yet flushed per response.
import type { ServerResponse } from 'node:http';
import { finished } from 'node:stream/promises';
import { BufferPool } from '../../buffer-pool.ts';
import type { ByteSource } from '../../cache/blobs.ts';
import type { Outcome } from '../outcome.ts';

/**
 * 256 KiB × 2 per response: large enough that the per-read and per-write overhead vanishes,
 * small enough that hundreds of clients fit in a few hundred MiB (test/bench measures both).
 * Each buffer in flight is held twice, plain and TLS-encrypted, until the kernel takes it: 4 deep,
 * 20 cold pulls at once peaked ~20 MiB higher than 2 deep, and a cached GiB went no faster.
 */
export const CHUNK_SIZE = 256 * 1024;
const DEPTH = 2;

/** Shared by all responses. */
const sharedPool = new BufferPool(CHUNK_SIZE, 64);

interface InFlight {
  readonly buffer: Buffer;
  readonly flushed: Promise<void>;
  done: boolean;
}

/**
 * Writes `source` to `res` and ends it; resolves once the response is finished. With `length`,
 * a source that ends short is an error (the client must not take a short body as complete).
 * Rejects if the client goes away or a read fails; the caller then destroys the socket.
 * Closes `source` in every case.
 */
export async function pump(
  source: ByteSource,
  res: ServerResponse,
  outcome: Outcome,
  options: { length?: number | undefined; pool?: BufferPool } = {},
): Promise<void> {
  const pool = options.pool ?? sharedPool;
  // Rejects when the client closes before the end: a write to a destroyed socket may never call
  // its callback, so every wait below races this.
  // Not Promise.race([flushed, ended]) per buffer: each race leaves a reaction on `ended` until
  // the response ends, ~16k per GiB, and 20 hits of a 4 GiB blob held ~90 MiB of them.
  const ended = finished(res);
  const waiting = new Set<(error: Error) => void>();
  let closed: Error | undefined;
  ended.catch((error: unknown) => {
    closed = error instanceof Error ? error : new Error(String(error));
    for (const fail of waiting) fail(closed);
  });
  const inFlight: InFlight[] = [];
  let sent = 0;
  try {
    for (;;) {
      let buffer: Buffer;
      if (inFlight.length < DEPTH) buffer = pool.take();
      else {
        const oldest = inFlight.shift()!;
        await oldest.flushed;
        buffer = oldest.buffer;
      }
      const count = await source.read(buffer);
      if (count === 0) {
        pool.give(buffer);
        break;
      }
      sent += count;
      outcome.bytes += count;
      const chunk = count === buffer.length ? buffer : buffer.subarray(0, count);
      const flushed = new Promise<void>((resolve, reject) => {
        if (closed) return reject(closed);
        waiting.add(reject);
        res.write(chunk, (error) => {
          waiting.delete(reject);
          if (error) reject(error);
          else resolve();
        });
      });
      const entry: InFlight = { buffer, flushed, done: false };
      void flushed.then(
        () => (entry.done = true),
        () => (entry.done = true),
      );
      inFlight.push(entry);
    }
    if (options.length !== undefined && sent !== options.length)
      throw new Error(`blob source ended after ${sent} of ${options.length} bytes`);
    res.end();
    await ended;
  } finally {
    // Buffers the socket still holds (a client gone mid-write) are left to the GC.
    for (const entry of inFlight) if (entry.done) pool.give(entry.buffer);
    await source.close();
  }
}
