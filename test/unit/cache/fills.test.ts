// Fills when the disk fails: at open, part-way, at rename. Every reader still gets the whole,
// verified blob; nothing is published; no temp file is left; memory stays bounded.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskBlobStore, type BlobStore, type BlobWriter, type ByteSource } from '../../../src/cache/blobs.ts';
import type { WriteFailureContext } from '../../../src/cache/errors.ts';
import { Fills } from '../../../src/cache/fills.ts';
import { RELAY_LIMIT } from '../../../src/cache/write-behind.ts';
import { DigestMismatchError, digestOf } from '../../../src/oci/digest.ts';
import { tempDir } from '../../helpers/tmp.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 64 * KiB;

function errno(code: string, syscall: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected, ${syscall} '${file}'`), { code, syscall, path: file });
}

/**
 * A disk store whose writers fail as told: `begin` refuses to open, or write number `failWrite`
 * writes half of its first chunk and then fails with ENOSPC, as a disk that fills up does.
 */
function faulty(disk: DiskBlobStore, faults: { begin?: string; failWrite?: number }): BlobStore {
  return {
    stat: (digest) => disk.stat(digest),
    open: (digest, range) => disk.open(digest, range),
    readAll: (digest) => disk.readAll(digest),
    delete: (digest) => disk.delete(digest),
    list: () => disk.list(),
    async begin(digest, options) {
      if (faults.begin) throw errno(faults.begin, 'open', path.join(disk.layout.tmpDir, 'refused'));
      const writer = await disk.begin(digest, options);
      let writes = 0;
      const wrapped: BlobWriter = {
        tempPath: writer.tempPath,
        get bytesWritten() {
          return writer.bytesWritten;
        },
        async write(chunks) {
          if (++writes !== faults.failWrite) return writer.write(chunks);
          const first = Buffer.isBuffer(chunks) ? chunks : chunks[0]!;
          await writer.write(first.subarray(0, first.length >> 1));
          throw errno('ENOSPC', 'write', writer.tempPath);
        },
        commit: (size) => writer.commit(size),
        abort: () => writer.abort(),
      };
      return wrapped;
    },
  };
}

/** An upstream body the test feeds; counts what the fill took and whether it was destroyed. */
class Feed implements AsyncIterable<Buffer> {
  taken = 0;
  destroyed = false;
  #queue: Buffer[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  push(content: Buffer): void {
    for (let at = 0; at < content.length; at += CHUNK) this.#queue.push(content.subarray(at, at + CHUNK));
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    let finished = false;
    try {
      for (;;) {
        const chunk = this.#queue.shift();
        if (chunk) {
          this.taken += chunk.length;
          yield chunk;
        } else if (this.#ended) {
          finished = true;
          return;
        } else await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      this.destroyed = !finished;
    }
  }
}

async function readAll(source: ByteSource, size = 256 * KiB): Promise<Buffer> {
  const parts: Buffer[] = [];
  const buffer = Buffer.alloc(size);
  try {
    for (let count; (count = await source.read(buffer)) > 0;)
      parts.push(Buffer.from(buffer.subarray(0, count)));
  } finally {
    await source.close();
  }
  return Buffer.concat(parts);
}

async function setup(faults: { begin?: string; failWrite?: number }) {
  const disk = new DiskBlobStore(await tempDir());
  await disk.init();
  const failures: Array<{ code: string | undefined; tempFiles: string[] } & WriteFailureContext> = [];
  let failed: () => void = () => undefined;
  const failure = new Promise<void>((resolve) => (failed = resolve));
  const fills = new Fills(faulty(disk, faults), {
    onWriteFailure: (error, context) => {
      const tempFiles = readdirSync(disk.layout.tmpDir);
      failures.push({ code: (error as NodeJS.ErrnoException).code, tempFiles, ...context });
      failed();
    },
  });
  return { disk, fills, failures, failure };
}

describe('Fills when the disk fails', () => {
  it('ENOSPC part-way: fast, slow and late readers all get the blob, the temp file goes at once', async () => {
    const { disk, fills, failures, failure } = await setup({ failWrite: 3 });
    const content = randomBytes(12 * MiB);
    const digest = digestOf(content);
    const feed = new Feed();
    const fill = await fills.claim(digest).start({ body: feed, size: content.length });
    expect(fill.caching).toBe(true);
    const fast = readAll(fill.open());
    const slow = fill.open();
    feed.push(content.subarray(0, 512 * KiB));
    const head = Buffer.alloc(256 * KiB);
    const headLength = await slow.read(head); // then it falls behind
    feed.push(content.subarray(512 * KiB));
    feed.end();

    await failure;
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ code: 'ENOSPC', tempFiles: [], digest });
    expect(path.dirname(failures[0]!.path)).toBe(disk.layout.tmpDir);
    expect(fill.caching).toBe(false);
    expect(fill.state).toBe('running');
    // Joins after the failure: the bytes the file took are read through the unlinked file.
    expect(fills.lookup(digest)).toBe(fill);
    expect(fill.joinable).toBe(true);
    const late = readAll(fill.open());
    const rest = readAll(slow);

    expect((await fast).equals(content)).toBe(true);
    expect(Buffer.concat([head.subarray(0, headLength), await rest]).equals(content)).toBe(true);
    expect((await late).equals(content)).toBe(true);
    expect(await fill.settled).toMatchObject({ stored: false, cause: { code: 'ENOSPC' } });
    expect(await disk.stat(digest)).toBeUndefined();
    expect(await readdir(disk.layout.tmpDir)).toEqual([]);
    expect(failures).toHaveLength(1);
  });

  it('a temp file that cannot be opened: the fill relays from memory and a waiter joins it', async () => {
    const { disk, fills, failures } = await setup({ begin: 'EROFS' });
    const content = randomBytes(3 * MiB + 5);
    const digest = digestOf(content);
    const claim = fills.claim(digest);
    const waiting = fills.lookup(digest);
    expect(waiting).toBeInstanceOf(Promise);
    const feed = new Feed();
    const fill = await claim.start({ body: feed, size: content.length });
    expect(fill.caching).toBe(false);
    expect((fill.writeFailure as NodeJS.ErrnoException).code).toBe('EROFS');
    const starter = readAll(fill.open());
    const joined = await waiting;
    expect(joined).toBe(fill);
    expect(fill.joinable).toBe(true);
    const waiter = readAll(fill.open());
    feed.push(content);
    feed.end();
    expect((await starter).equals(content)).toBe(true);
    expect((await waiter).equals(content)).toBe(true);
    expect(await fill.settled).toMatchObject({ stored: false, cause: { code: 'EROFS' } });
    expect(failures).toEqual([
      { code: 'EROFS', tempFiles: [], path: path.join(disk.layout.tmpDir, 'refused'), digest },
    ]);
    expect(await disk.stat(digest)).toBeUndefined();
  });

  it('a rename that fails: readers complete, nothing is published, no temp file is left', async () => {
    const { disk, fills, failures } = await setup({});
    // A real failure at commit: blobs/sha256 is a file, so the blob's directory cannot be made.
    await writeFile(path.join(disk.layout.blobsDir, 'sha256'), 'not a directory');
    const content = randomBytes(6 * MiB);
    const digest = digestOf(content);
    const feed = new Feed();
    const fill = await fills.claim(digest).start({ body: feed, size: content.length });
    const fast = readAll(fill.open());
    const slow = fill.open();
    const head = Buffer.alloc(64 * KiB);
    feed.push(content);
    feed.end();
    const headLength = await slow.read(head);
    const result = await fill.settled;
    expect(result.stored).toBe(false);
    expect(fill.caching).toBe(false);
    expect((await fast).equals(content)).toBe(true);
    // The slow reader reads the rest from the temp file, unlinked by now.
    expect(await readdir(disk.layout.tmpDir)).toEqual([]);
    expect(Buffer.concat([head.subarray(0, headLength), await readAll(slow)]).equals(content)).toBe(true);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ tempFiles: [], digest });
    expect(await readdir(disk.layout.blobsDir)).toEqual(['sha256']);
  });

  it('a digest mismatch after a write failure still fails every reader, last byte held back', async () => {
    const { disk, fills, failure } = await setup({ failWrite: 1 });
    const content = randomBytes(3 * MiB);
    const digest = digestOf(randomBytes(3 * MiB)); // same size, other bytes
    const feed = new Feed();
    const fill = await fills.claim(digest).start({ body: feed, size: content.length });
    const got = [0, 0];
    const readers = [fill.open(), fill.open()].map(async (source, index) => {
      const buffer = Buffer.alloc(128 * KiB);
      try {
        for (let count; (count = await source.read(buffer)) > 0;) got[index]! += count;
      } finally {
        await source.close();
      }
    });
    const outcomes = Promise.allSettled(readers);
    feed.push(content.subarray(0, 2 * MiB));
    await failure;
    expect(fill.caching).toBe(false);
    feed.push(content.subarray(2 * MiB));
    feed.end();
    for (const outcome of await outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(DigestMismatchError);
    }
    await expect(fill.settled).rejects.toThrow(DigestMismatchError);
    expect(got.every((count) => count < content.length)).toBe(true);
    expect(await disk.stat(digest)).toBeUndefined();
    expect(await readdir(disk.layout.tmpDir)).toEqual([]);
  });

  it('holds a bounded amount while a reader is slow after a failure; one that leaves lets go', async () => {
    const { fills, failure } = await setup({ failWrite: 1 });
    const content = randomBytes(32 * MiB);
    const digest = digestOf(content);
    const feed = new Feed();
    feed.push(content); // upstream could send it all at once
    feed.end();
    const fill = await fills.claim(digest).start({ body: feed, size: content.length });
    const fast = readAll(fill.open());
    const slow = fill.open();
    await failure;
    const buffer = Buffer.alloc(64 * KiB);
    let position = 0;
    let maxHeld = 0;
    let maxAhead = 0;
    while (position < 16 * MiB) {
      const count = await slow.read(buffer);
      expect(buffer.subarray(0, count).equals(content.subarray(position, position + count))).toBe(true);
      position += count;
      await new Promise((resolve) => setImmediate(resolve));
      maxHeld = Math.max(maxHeld, fill.held);
      maxAhead = Math.max(maxAhead, feed.taken - position);
    }
    // Upstream waited for the slow reader: never more than the limit and one chunk ahead of it.
    expect(maxHeld).toBeLessThanOrEqual(RELAY_LIMIT + CHUNK);
    expect(maxAhead).toBeLessThanOrEqual(RELAY_LIMIT + CHUNK);
    expect(feed.taken).toBeLessThan(content.length);
    // Leaving releases its hold: the fill could not finish (nor the fast reader) otherwise.
    await slow.close();
    expect((await fast).equals(content)).toBe(true);
    expect(await fill.settled).toMatchObject({ stored: false });
    expect(feed.destroyed).toBe(false);
    expect(fill.held).toBe(0);
  });

  it('stops fetching a relay that every reader has left, and takes no new reader', async () => {
    const { fills } = await setup({ begin: 'ENOSPC' });
    const content = randomBytes(12 * MiB);
    const digest = digestOf(content);
    const feed = new Feed();
    feed.push(content);
    feed.end();
    const fill = await fills.claim(digest).start({ body: feed, size: content.length });
    const reader = fill.open();
    await reader.read(Buffer.alloc(256 * KiB));
    await reader.close();
    expect(await fill.settled).toMatchObject({ stored: false });
    expect(feed.destroyed).toBe(true);
    expect(feed.taken).toBeLessThanOrEqual(RELAY_LIMIT + 2 * CHUNK);
    expect(fill.joinable).toBe(false);
    expect(fills.lookup(digest)).toBeUndefined();
    await fills.idle();
  });
});
