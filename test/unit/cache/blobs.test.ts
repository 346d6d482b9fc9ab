import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/cache/blobs.ts';
import { DigestMismatchError, digestOf } from '../../../src/oci/digest.ts';
import { tempDir } from '../../helpers/tmp.ts';

describe('DiskBlobStore', () => {
  it('publishes a verified blob by rename under blobs/<alg>/<2 hex>/<hex>', async () => {
    const store = new DiskBlobStore(await tempDir());
    await store.init();
    const content = Buffer.from('layer bytes');
    const digest = digestOf(content);
    const writer = await store.begin(digest);
    await writer.write(content.subarray(0, 3));
    await writer.write(content.subarray(3));
    expect(await store.stat(digest)).toBeUndefined();
    await writer.commit(content.length);
    expect(await store.stat(digest)).toEqual({ size: content.length });
    const hex = digest.slice('sha256:'.length);
    expect(await readdir(path.join(store.layout.blobsDir, 'sha256', hex.slice(0, 2)))).toEqual([hex]);
    expect(await text(store.read(digest))).toBe('layer bytes');
    expect(await text(store.read(digest, { start: 6, end: 10 }))).toBe('bytes');
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
    expect(await store.init()).toEqual({ sweptTempFiles: 1 });
    expect(await readdir(store.layout.tmpDir)).toEqual([]);
  });

  it('never builds a path from something that is not a digest', async () => {
    const store = new DiskBlobStore(await tempDir());
    await store.init();
    await expect(store.stat('sha256:../../etc/passwd')).rejects.toThrow(TypeError);
    expect(() => store.read('../x')).toThrow(TypeError);
    await expect(store.begin('sha256:zz')).rejects.toThrow(TypeError);
  });
});
