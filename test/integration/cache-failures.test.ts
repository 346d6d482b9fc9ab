// A cache that cannot be written never fails a pull: a disk that fills up in the middle of a blob,
// a blob larger than the free space, and a cache directory that is read-only from the start.
// Real proxy, real tmpfs (skipped where this process may not mount one).
import { createHash, randomBytes } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { mountTmpfs, remountReadOnly } from '../helpers/tmpfs.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

async function bodyDigest(res: { body: AsyncIterable<unknown> }): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of res.body) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

describe('a cache that cannot be written', () => {
  it('serves a blob whole when the disk fills up during its fill, leaving no temp file', async (ctx) => {
    const dir = await mountTmpfs('8m');
    if (!dir) return ctx.skip();
    const upstream = await startFakeRegistry();
    const content = randomBytes(6 * 1024 * 1024);
    const digest = upstream.addBlob(content);
    const release = upstream.holdBlobs();
    const proxy = await startProxy({ registries: [upstream.authority], cache: { dir } });
    const blobPath = `/v2/big/app/blobs/${digest}`;

    // Two clients share the fill; it fits, so it starts storing (MISS) ...
    const responses = await Promise.all([
      proxy.fetch(upstream.authority, blobPath),
      proxy.fetch(upstream.authority, blobPath),
    ]);
    for (const res of responses) {
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-cache']).toBe('MISS');
      expect(res.headers['content-length']).toBe(String(content.length));
    }
    const digests = Promise.all(responses.map(bodyDigest));
    // ... and something else fills the disk while upstream still holds the second half.
    await fillUp(path.join(dir, 'filler'));
    release();
    expect(await digests).toEqual([digest, digest]);
    await proxy.app.fills.idle();
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
    expect(await readdir(path.join(dir, 'blobs'))).toEqual([]);
    expect(upstream.hits('GET', blobPath)).toBe(1);
    const warned = await proxy.waitForLog((l) => l.msg === 'cache not writable: serving without caching');
    expect(warned['code']).toBe('ENOSPC');
  });

  it('relays a blob larger than the free space whole, uncached from the start (BYPASS)', async (ctx) => {
    const dir = await mountTmpfs('8m');
    if (!dir) return ctx.skip();
    const upstream = await startFakeRegistry();
    const content = randomBytes(20 * 1024 * 1024);
    const digest = upstream.addBlob(content);
    const proxy = await startProxy({ registries: [upstream.authority], cache: { dir } });
    const blobPath = `/v2/big/app/blobs/${digest}`;
    for (let i = 0; i < 2; i += 1) {
      const res = await proxy.fetch(upstream.authority, blobPath);
      expect(res.headers['x-cache']).toBe('BYPASS');
      expect(await bodyDigest(res)).toBe(digest);
      await proxy.app.fills.idle();
      expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
    }
    expect(await readdir(path.join(dir, 'blobs'))).toEqual([]);
    expect(upstream.hits('GET', blobPath)).toBe(2);
  });

  it('starts on a read-only cache: what it holds is a hit, the rest is relayed uncached', async (ctx) => {
    const dir = await mountTmpfs('4m');
    if (!dir) return ctx.skip();
    const upstream = await startFakeRegistry();
    const cached = randomBytes(300_000);
    const cachedDigest = upstream.addBlob(cached);
    const other = randomBytes(5 * 1024 * 1024);
    const otherDigest = upstream.addBlob(other);
    const first = await startProxy({ registries: [upstream.authority], cache: { dir } });
    expect(await bodyDigest(await first.fetch(upstream.authority, `/v2/x/blobs/${cachedDigest}`))).toBe(
      cachedDigest,
    );
    await first.app.fills.idle();
    await first.close();
    await remountReadOnly(dir);

    const proxy = await startProxy({ registries: [upstream.authority], cache: { dir } });
    const hit = await proxy.fetch(upstream.authority, `/v2/x/blobs/${cachedDigest}`);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(await bodyDigest(hit)).toBe(cachedDigest);
    const relayed = await proxy.fetch(upstream.authority, `/v2/x/blobs/${otherDigest}`);
    expect(relayed.statusCode).toBe(200);
    expect(relayed.headers['x-cache']).toBe('BYPASS');
    expect(await bodyDigest(relayed)).toBe(otherDigest);
    const warned = await proxy.waitForLog((l) => l.msg === 'cache not writable: serving without caching');
    expect(warned['code']).toBe('EROFS');
  });
});

/** Writes zeros to `file` until the file system is full (ENOSPC ends it). */
async function fillUp(file: string): Promise<void> {
  const handle = await open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) await handle.write(chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close();
  }
}
