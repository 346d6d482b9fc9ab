import { describe, expect, it } from 'vitest';
import { DiskBlobStore, type BlobWriter } from '../../../src/cache/blobs.ts';
import { QUEUE_LIMIT, WRITE_BATCH, WriteBehind } from '../../../src/cache/write-behind.ts';
import { digestOf } from '../../../src/oci/digest.ts';
import { tempDir } from '../../helpers/tmp.ts';

const KiB = 1024;

/** `count` chunks of `size` bytes, each filled with its own index, so any misplaced byte shows. */
function chunks(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, index) => Buffer.alloc(size, index % 251));
}

async function writerFor(content: Buffer): Promise<BlobWriter> {
  const store = new DiskBlobStore(await tempDir());
  await store.init();
  return store.begin(digestOf(content));
}

describe('WriteBehind', () => {
  it('writes every chunk in order in batches, and serves the recent ones from memory', async () => {
    const parts = chunks(400, 16 * KiB); // 6.25 MiB: several batches, some dropped from memory
    const content = Buffer.concat(parts);
    const writer = await writerFor(content);
    const writes: number[] = [];
    const write = writer.write.bind(writer);
    writer.write = (batch) => {
      // Bytes per write: chunks are copied into slabs, so the batches are not the chunks.
      writes.push(Buffer.isBuffer(batch) ? batch.length : batch.reduce((sum, part) => sum + part.length, 0));
      return write(batch);
    };
    let progress = 0;
    const behind = new WriteBehind(writer, { onProgress: () => progress++ });
    for (const part of parts) await behind.push(part);
    expect(behind.received).toBe(content.length);
    // The newest bytes are in memory whether or not they reached the file yet.
    const buffer = Buffer.alloc(40 * KiB);
    const position = content.length - 40 * KiB - 5;
    expect(behind.copy(position, buffer, content.length)).toBe(40 * KiB);
    expect(buffer.equals(content.subarray(position, position + 40 * KiB))).toBe(true);
    // A copy stops at `limit`.
    expect(behind.copy(position, buffer, position + 7)).toBe(7);
    await behind.flush();
    expect(behind.written).toBe(content.length);
    // The oldest bytes left memory once written: the caller reads them from the file.
    expect(behind.copy(0, buffer, content.length)).toBe(0);
    expect(writes.length).toBeLessThan(parts.length / 8);
    expect(writes.reduce((sum, count) => sum + count, 0)).toBe(content.length);
    expect(progress).toBeGreaterThanOrEqual(parts.length);
    await writer.commit(content.length);
  });

  it('keeps what a failed write did not take until the readers pass it, and waits for them', async () => {
    const parts = chunks(600, 16 * KiB); // 9.4 MiB
    const content = Buffer.concat(parts);
    const writer = await writerFor(content);
    const write = writer.write.bind(writer);
    let writes = 0;
    writer.write = async (batch) => {
      if (++writes === 2)
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return write(batch);
    };
    const failures: Error[] = [];
    let reader = 0;
    const behind = new WriteBehind(writer, {
      onProgress: () => undefined,
      onWriteFailure: (error) => failures.push(error),
      floor: () => reader,
    });
    let pushed = 0;
    const pushing = (async () => {
      for (const part of parts) {
        await behind.push(part);
        pushed++;
      }
      await behind.flush(); // resolves: the failure is the fill's to report, not flush's
    })();
    const out = Buffer.alloc(content.length);
    let maxHeld = 0;
    while (reader < content.length) {
      await new Promise((resolve) => setImmediate(resolve));
      maxHeld = Math.max(maxHeld, behind.held);
      const limit = behind.received;
      if (reader >= limit) continue;
      // Below `written`, the bytes are in the file (the fill reads them there); above, in memory.
      let count = behind.copy(reader, out.subarray(reader), limit);
      if (count === 0) {
        expect(reader).toBeLessThan(behind.written);
        count = Math.min(behind.written, limit) - reader;
        out.set(content.subarray(reader, reader + count), reader); // stands for the file read
      }
      reader += count;
      behind.readersMoved();
    }
    await pushing;
    expect(out.equals(content)).toBe(true);
    expect(pushed).toBe(parts.length);
    expect(failures.map((error) => (error as NodeJS.ErrnoException).code)).toEqual(['ENOSPC']);
    expect(behind.relaying).toBe(true);
    expect(behind.written).toBe(WRITE_BATCH); // the first batch; the file took no more
    // Upstream waited for the reader: never more than the relay limit and a chunk in memory.
    expect(maxHeld).toBeLessThanOrEqual(4 * 1024 * KiB + 16 * KiB);
    await writer.abort();
  });

  it('makes upstream wait while the disk is behind by the queue limit', async () => {
    const parts = chunks(512, 16 * KiB); // 8 MiB
    const content = Buffer.concat(parts);
    const writer = await writerFor(content);
    const write = writer.write.bind(writer);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    writer.write = async (batch) => {
      await gate;
      return write(batch);
    };
    const behind = new WriteBehind(writer, { onProgress: () => undefined });
    let pushed = 0;
    const pushing = (async () => {
      for (const part of parts) {
        await behind.push(part);
        pushed++;
      }
    })();
    await new Promise((resolve) => setImmediate(resolve));
    // Blocked on the disk: no more than the queue limit taken in.
    expect(pushed * 16 * KiB).toBeLessThanOrEqual(QUEUE_LIMIT);
    release();
    await pushing;
    await behind.flush();
    await writer.commit(content.length);
    expect(pushed).toBe(parts.length);
  });

  it('keeps bytes read into the space it lends where they landed, and copies the rest', async () => {
    const content = Buffer.concat(chunks(100, 10 * KiB)); // 1000 KiB: several slabs
    const writer = await writerFor(content);
    const behind = new WriteBehind(writer, { onProgress: () => undefined });
    let at = 0;
    for (let read = 0; at < content.length; read++) {
      const space = behind.space()!;
      if (read % 4 === 3) {
        // Bytes from elsewhere between a lend and its read: copied, and not into the lent space.
        const piece = Buffer.from(content.subarray(at, at + 3 * KiB));
        behind.take(piece);
        at += piece.length;
      }
      // A socket read: as much as fits, at most a TLS record.
      const count = content.subarray(at, at + Math.min(space.length, 16 * KiB)).copy(space);
      behind.take(space.subarray(0, count));
      at += count;
    }
    expect(behind.received).toBe(content.length);
    const buffer = Buffer.alloc(64 * KiB);
    const position = content.length - buffer.length;
    expect(behind.copy(position, buffer, content.length)).toBe(buffer.length);
    expect(buffer.equals(content.subarray(position))).toBe(true);
    await behind.flush();
    // The writer checks the file's digest.
    await writer.commit(content.length);
  });

  it('never gives the slab it lent last back to the pool, where another fill would take it', () => {
    const hooks = { onProgress: () => undefined };
    const behind = new WriteBehind(undefined, hooks);
    behind.take(Buffer.alloc(40 * KiB, 7));
    // The free end of the slab holding those bytes; a foreign chunk then goes to a new slab.
    const first = behind.space()!;
    behind.take(Buffer.alloc(5 * KiB, 8));
    // A socket may still read into this one after release().
    const last = behind.space()!;
    // Compared as booleans: a failing toBe() would print two 256 KiB buffers, for minutes.
    expect(last.buffer === first.buffer).toBe(false);
    behind.release();
    // The pool hands out the slab given back last: the first, never the one lent last.
    const next = new WriteBehind(undefined, hooks).space()!;
    expect(next.buffer === first.buffer).toBe(true);
  });
});
