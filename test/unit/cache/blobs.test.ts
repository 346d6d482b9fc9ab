import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskBlobStore, type ByteSource } from '../../../src/cache/blobs.ts';
import { DigestMismatchError, digestOf } from '../../../src/oci/digest.ts';
import { tempDir } from '../../helpers/tmp.ts';
import { mountTmpfs, remountReadOnly } from '../../helpers/tmpfs.ts';

/** Everything `source` gives, read through a 4-byte buffer so that it takes several reads. */
async function drain(source: ByteSource): Promise<string> {
  const buffer = Buffer.alloc(4);
  let out = '';
  for (let count; (count = await source.read(buffer)) > 0;) out += buffer.toString('latin1', 0, count);
  await source.close();
  return out;
}

describe('DiskBlobStore', () => {
  it('publishes a verified blob by rename under blobs/<alg>/<2 hex>/<hex>', async () => {
    const store = new DiskBlobStore(await tempDir());
    await store.init();
    const content = Buffer.from('layer bytes');
    const digest = digestOf(content);
    const writer = await store.begin(digest);
    await writer.write(content.subarray(0, 3));
    await writer.write([content.subarray(3, 5), content.subarray(5, 5), content.subarray(5)]);
    expect(writer.bytesWritten).toBe(content.length);
    expect(await store.stat(digest)).toBeUndefined();
    await writer.commit(content.length);
    expect(await store.stat(digest)).toEqual({ size: content.length });
    const hex = digest.slice('sha256:'.length);
    expect(await readdir(path.join(store.layout.blobsDir, 'sha256', hex.slice(0, 2)))).toEqual([hex]);
    expect(await drain(await store.open(digest))).toBe('layer bytes');
    expect(await drain(await store.open(digest, { start: 6, end: 10 }))).toBe('bytes');
    expect(await drain(await store.open(digest, { start: 6, end: 6 }))).toBe('b');
    expect((await store.readAll(digest)).toString()).toBe('layer bytes');
    expect(await readdir(store.layout.tmpDir)).toEqual([]);
    const listed = [];
    for await (const entry of store.list()) listed.push(entry);
    expect(listed).toEqual([{ digest, size: content.length }]);
    await store.delete(digest);
    expect(await store.stat(digest)).toBeUndefined();
  });

  it('refuses a blob whose bytes do not match and leaves no file', async () => {
    const store = new DiskBlobStore(await tempDir());
    await store.init();
    const digest = digestOf(Buffer.from('expected'));
    const writer = await store.begin(digest);
    await writer.write(Buffer.from('something else'));
    await expect(writer.commit()).rejects.toThrow(DigestMismatchError);
    expect(await store.stat(digest)).toBeUndefined();
    expect(await readdir(store.layout.tmpDir)).toEqual([]);
  });

  it('sweeps temp files left by a previous process at init', async () => {
    const root = await tempDir();
    await mkdir(path.join(root, 'tmp'), { recursive: true });
    await writeFile(path.join(root, 'tmp', `sha256-${'c'.repeat(64)}.abc`), randomBytes(100));
    const store = new DiskBlobStore(root);
    expect(await store.init()).toEqual({ sweptTempFiles: 1, writable: true });
    expect(await readdir(store.layout.tmpDir)).toEqual([]);
  });

  it('publishes without hashing when the caller verifies (a fill hashes each byte once)', async () => {
    const store = new DiskBlobStore(await tempDir());
    await store.init();
    const digest = digestOf(Buffer.from('expected'));
    const writer = await store.begin(digest, { callerVerifies: true });
    await writer.write(Buffer.from('expected'));
    await writer.commit();
    expect((await store.readAll(digest)).toString()).toBe('expected');
  });

  it('starts on a read-only cache: serves what it holds and says why nothing new is stored', async (ctx) => {
    const dir = await mountTmpfs('1m');
    if (!dir) return ctx.skip();
    const content = Buffer.from('cached layer');
    const digest = digestOf(content);
    const before = new DiskBlobStore(dir);
    await before.init();
    const writer = await before.begin(digest);
    await writer.write(content);
    await writer.commit();
    await writeFile(path.join(before.layout.tmpDir, `sha256-${'c'.repeat(64)}.abc`), 'left by a crash');
    await remountReadOnly(dir);

    const store = new DiskBlobStore(dir);
    expect(await store.init()).toEqual({
      sweptTempFiles: 0,
      writable: false,
      code: 'EROFS',
      reason: `cache directory ${dir} is read-only: serving what is cached, relaying the rest uncached`,
    });
    expect(await drain(await store.open(digest))).toBe('cached layer');
    await expect(store.begin(digestOf(Buffer.from('new')))).rejects.toMatchObject({ code: 'EROFS' });
  });

  it('starts on an empty read-only directory, and says there is nothing to serve', async (ctx) => {
    const dir = await mountTmpfs('1m');
    if (!dir) return ctx.skip();
    await remountReadOnly(dir);
    for (const root of [dir, path.join(dir, 'cache')]) {
      const store = new DiskBlobStore(root);
      expect(await store.init()).toEqual({
        sweptTempFiles: 0,
        writable: false,
        code: 'EROFS',
        reason: `cache directory ${root} is read-only and empty: nothing cached to serve`,
      });
      expect(await store.stat(digestOf(Buffer.from('x')))).toBeUndefined();
      const listed = [];
      for await (const entry of store.list()) listed.push(entry);
      expect(listed).toEqual([]);
    }
  });

  it('starts on a full disk', async (ctx) => {
    const dir = await mountTmpfs('1m');
    if (!dir) return ctx.skip();
    await writeFile(path.join(dir, 'ballast'), Buffer.alloc(2 * 1024 * 1024)).catch(() => undefined);
    const store = new DiskBlobStore(dir);
    expect(await store.init()).toMatchObject({ writable: false, code: 'ENOSPC' });
    expect(await readdir(store.layout.tmpDir)).toEqual([]);
  });

  it('never builds a path from something that is not a digest', async () => {
    const store = new DiskBlobStore(await tempDir());
    await store.init();
    await expect(store.stat('sha256:../../etc/passwd')).rejects.toThrow(TypeError);
    await expect(store.open('../x')).rejects.toThrow(TypeError);
    await expect(store.begin('sha256:zz')).rejects.toThrow(TypeError);
  });
});
