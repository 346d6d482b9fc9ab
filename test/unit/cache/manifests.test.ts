import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/cache/blobs.ts';
import { CacheWriteError } from '../../../src/cache/errors.ts';
import { ManifestStore } from '../../../src/cache/manifests.ts';
import { DigestMismatchError, digestOf } from '../../../src/oci/digest.ts';
import { tempDir } from '../../helpers/tmp.ts';
import { mountTmpfs } from '../../helpers/tmpfs.ts';

const record = { digest: digestOf(Buffer.from('m')), mediaType: 'x', size: 1, checkedAt: 5 };

describe('ManifestStore', () => {
  it('keeps bytes by digest, the media type beside them, and tag records', async () => {
    const blobs = new DiskBlobStore(await tempDir());
    await blobs.init();
    const store = new ManifestStore(blobs.layout, blobs);
    const content = Buffer.from('{"schemaVersion":2}');
    const digest = digestOf(content);
    await store.put(digest, 'application/vnd.oci.image.manifest.v1+json', content);
    expect(await store.get(digest)).toEqual({
      digest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      content,
    });
    await expect(store.put(digestOf(Buffer.from('other')), 'x', content)).rejects.toThrow(
      DigestMismatchError,
    );

    const record = {
      digest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: content.length,
      checkedAt: 5,
    };
    await store.putTag('registry.example:443', 'lib/app', 'v1.2', record);
    expect(await store.getTag('registry.example:443', 'lib/app', 'v1.2')).toEqual(record);
    expect(await store.getTag('registry.example:443', 'lib/app', 'v9')).toBeUndefined();
  });

  it('answers repeated reads from memory, and reads the disk after a restart', async () => {
    const blobs = new DiskBlobStore(await tempDir());
    await blobs.init();
    const content = Buffer.from('{"schemaVersion":2,"layers":[]}');
    const digest = digestOf(content);
    await new ManifestStore(blobs.layout, blobs).put(
      digest,
      'application/vnd.oci.image.index.v1+json',
      content,
    );
    const store = new ManifestStore(blobs.layout, blobs); // a restart: nothing in memory
    const readAll = blobs.readAll.bind(blobs);
    let reads = 0;
    blobs.readAll = (d) => {
      reads++;
      return readAll(d);
    };
    for (let i = 0; i < 3; i++) expect((await store.get(digest))?.content).toEqual(content);
    expect(reads).toBe(1);
  });

  it('never builds a tag path from a name, tag or host outside the grammar', async () => {
    const blobs = new DiskBlobStore(await tempDir());
    await blobs.init();
    const store = new ManifestStore(blobs.layout, blobs);
    await expect(store.getTag('registry.example:443', '../../etc', 'v1')).rejects.toThrow(TypeError);
    await expect(store.getTag('registry.example:443', 'lib/app', '../x')).rejects.toThrow(TypeError);
    await expect(store.getTag('../..', 'lib/app', 'v1')).rejects.toThrow(TypeError);
  });

  it('on a full disk, put and putTag reject with CacheWriteError and leave no temp file', async (ctx) => {
    const dir = await mountTmpfs('1m');
    if (!dir) return ctx.skip();
    const blobs = new DiskBlobStore(dir);
    await blobs.init();
    const failures: Array<{ code: string | undefined; path: string; digest?: string }> = [];
    const store = new ManifestStore(blobs.layout, blobs, {
      onWriteFailure: (error, context) =>
        failures.push({ code: (error as NodeJS.ErrnoException).code, ...context }),
    });
    await writeFile(path.join(dir, 'ballast'), Buffer.alloc(2 * 1024 * 1024)).catch(() => undefined);
    const content = Buffer.from('{"schemaVersion":2}'.padEnd(8192, ' '));
    const digest = digestOf(content);

    await expect(store.put(digest, 'application/vnd.oci.image.manifest.v1+json', content)).rejects.toThrow(
      CacheWriteError,
    );
    await expect(store.putTag('registry.example:443', 'lib/app', 'v1', record)).rejects.toThrow(
      CacheWriteError,
    );
    expect(await readdir(blobs.layout.tmpDir)).toEqual([]);
    expect(await store.get(digest)).toBeUndefined();
    expect(failures.map((failure) => failure.code)).toEqual(['ENOSPC', 'ENOSPC']);
    expect(failures[0]?.digest).toBe(digest);
    expect(path.dirname(failures[0]!.path)).toBe(blobs.layout.tmpDir);
    // Content that does not match is still that, not a disk failure.
    await expect(store.put(digestOf(Buffer.from('other')), 'x', content)).rejects.toThrow(
      DigestMismatchError,
    );
  });

  it('a record whose directory cannot be made leaves no temp file', async () => {
    const blobs = new DiskBlobStore(await tempDir());
    await blobs.init();
    const store = new ManifestStore(blobs.layout, blobs);
    await writeFile(blobs.layout.tagsDir, 'not a directory');
    const error = await store
      .putTag('registry.example:443', 'lib/app', 'v1', record)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CacheWriteError);
    expect(((error as CacheWriteError).cause as NodeJS.ErrnoException).code).toMatch(/^E[A-Z]+$/);
    expect(await readdir(blobs.layout.tmpDir)).toEqual([]);
  });
});
