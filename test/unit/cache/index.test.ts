import { open as openFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { CacheIndex } from '../../../src/cache/index.ts';
import { parseDigest } from '../../../src/oci/digest.ts';
import { CacheImages, HOST } from '../../helpers/cache-images.ts';
import { tempDir } from '../../helpers/tmp.ts';

/** A clock the test moves by hand. */
function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

async function setup(options: { flushCount?: number; touchGranularityMs?: number } = {}) {
  const dir = await tempDir();
  const time = clock();
  const index = await CacheIndex.open(dir, {
    now: time.now,
    flushDelayMs: 60_000,
    touchGranularityMs: 0,
    ...options,
  });
  const images = await CacheImages.create(dir, index);
  return { dir, time, index, images };
}

const blobPath = (images: CacheImages, digest: string) => images.blobs.layout.blobPath(parseDigest(digest)!);
const metaPath = (images: CacheImages, digest: string) =>
  images.blobs.layout.manifestMetaPath(parseDigest(digest)!);

describe('CacheIndex', () => {
  it('keeps sizes, last use, references and tags across close and open', async () => {
    const { dir, time, index, images } = await setup();
    const app = await images.image({ repository: 'team/app', tag: 'v1', layers: ['layer a', 'layer b'] });
    time.advance(5000);
    index.touch(app.manifest);
    expect(index.usage().total).toBe(app.size);
    index.close();

    const again = await CacheIndex.open(dir);
    expect(again.opened).toMatchObject({ state: 'existing', unclean: false });
    expect(again.usage()).toEqual({ total: app.size, byHost: new Map([[HOST, app.size]]) });
    expect(again.get(app.manifest)).toMatchObject({
      kind: 'manifest',
      host: HOST,
      repo: 'team/app',
      lastUsed: 1_005_000,
    });
    expect(again.get(app.layers[0]!)).toMatchObject({ kind: 'blob', host: HOST, lastUsed: 1_000_000 });
    const snapshot = await again.snapshot();
    expect(snapshot.children.get(app.manifest)?.toSorted()).toEqual([app.config, ...app.layers].sort());
    expect(snapshot.tags).toEqual([{ host: HOST, repo: 'team/app', tag: 'v1', digest: app.manifest }]);
    again.close();
  });

  it('a touched index refreshes the manifests under it; configs and layers age with their image', async () => {
    const { time, index, images } = await setup();
    const amd = await images.image({ repository: 'multi', layers: ['amd64 layer', 'shared'] });
    const arm = await images.image({ repository: 'multi', layers: ['arm64 layer', 'shared'] });
    const top = await images.imageIndex([amd, arm], 'multi', 'latest');
    time.advance(1000);
    index.touch(top);
    for (const digest of [top, amd.manifest, arm.manifest])
      expect(index.get(digest)?.lastUsed).toBe(1_001_000);
    for (const digest of [amd.config, ...amd.layers]) expect(index.get(digest)?.lastUsed).toBe(1_000_000);
    time.advance(1000);
    index.touch(amd.layers[0]!);
    expect(index.get(amd.layers[0]!)?.lastUsed).toBe(1_002_000);
    expect(index.get(amd.manifest)?.lastUsed).toBe(1_001_000);
    index.close();
  });

  it('writes a digest touched again within touchGranularityMs once', async () => {
    const { time, index, images } = await setup({ touchGranularityMs: 60_000 });
    const app = await images.image({ repository: 'app', layers: ['l'] });
    index.touch(app.manifest);
    time.advance(30_000);
    index.touch(app.manifest);
    expect(index.get(app.manifest)?.lastUsed).toBe(1_000_000);
    time.advance(30_000);
    index.touch(app.manifest);
    expect(index.get(app.manifest)?.lastUsed).toBe(1_060_000);
    index.close();
  });

  it('batches hot-path writes: nothing reaches the file until flushCount are queued, usage counts them at once', async () => {
    const { dir, index, images } = await setup({ flushCount: 3 });
    const rowsOnDisk = () => {
      const reader = new DatabaseSync(path.join(dir, 'index.db'), { readOnly: true });
      const count = (reader.prepare('SELECT count(*) AS n FROM blobs').get() as { n: number }).n;
      reader.close();
      return count;
    };
    images.index = undefined;
    const a = await images.blob('a');
    const b = await images.blob('b');
    const c = await images.blob('c');
    index.recordBlob(a, 1, { host: HOST });
    index.recordBlob(b, 1, { host: HOST });
    expect(rowsOnDisk()).toBe(0);
    expect(index.usage().total).toBe(2);
    index.recordBlob(c, 1, { host: HOST });
    expect(rowsOnDisk()).toBe(3);
    expect(index.usage().total).toBe(3);
    index.close();
  });

  it('says when the previous process did not close it', async () => {
    const { dir, index, images } = await setup();
    await images.blob('x');
    index.flush();
    const second = await CacheIndex.open(dir);
    expect(second.opened).toMatchObject({ state: 'existing', unclean: true });
    second.close();
    index.close();
  });

  it('rebuilds a deleted index from the files: kinds, references, tags, origin, mtimes as last use', async () => {
    const { dir, index, images } = await setup();
    const app = await images.image({ repository: 'team/app', tag: 'v1', layers: ['l1', 'l2'] });
    const loose = await images.blob('a blob no manifest names');
    await utimes(blobPath(images, app.layers[0]!), 2000, 2000);
    index.close();
    await rm(path.join(dir, 'index.db'));

    const rebuilt = await CacheIndex.open(dir);
    expect(rebuilt.opened.state).toBe('missing');
    expect(rebuilt.opened.rebuilt).toMatchObject({ added: app.digests.length + 1, tagsAdded: 1 });
    expect(rebuilt.usage().total).toBe(app.size + 'a blob no manifest names'.length);
    expect(rebuilt.get(app.manifest)).toMatchObject({ kind: 'manifest', host: HOST, repo: 'team/app' });
    expect(rebuilt.get(app.layers[0]!)).toMatchObject({ kind: 'blob', host: HOST, lastUsed: 2_000_000 });
    expect(rebuilt.get(loose)).toMatchObject({ kind: 'blob', host: null });
    expect((await rebuilt.snapshot()).children.get(app.manifest)?.toSorted()).toEqual(
      [app.config, ...app.layers].sort(),
    );
    expect(rebuilt.tagsOf(app.manifest)).toEqual([
      { host: HOST, repo: 'team/app', tag: 'v1', digest: app.manifest },
    ]);
    rebuilt.close();
    expect((await CacheIndex.open(dir)).opened.state).toBe('existing');
  });

  it('rebuilds an index.db that is not a database, or whose pages are damaged', async () => {
    const { dir, index, images } = await setup();
    const app = await images.image({ repository: 'app', tag: 'v1', layers: ['l'.repeat(5000)] });
    index.close();
    const file = path.join(dir, 'index.db');
    await writeFile(file, 'this is not sqlite at all, and far too short');
    const fromGarbage = await CacheIndex.open(dir);
    expect(fromGarbage.opened.state).toBe('corrupt');
    expect(fromGarbage.usage().total).toBe(app.size);
    fromGarbage.close();

    // Overwrite every page after the header page with noise: the schema survives, the data does not.
    const { size } = await stat(file);
    const handle = await openFile(file, 'r+');
    await handle.write(Buffer.alloc(size - 4096, 0xa5), 0, size - 4096, 4096);
    await handle.close();
    const fromDamage = await CacheIndex.open(dir);
    expect(fromDamage.opened.state).toBe('corrupt');
    expect(fromDamage.get(app.manifest)?.kind).toBe('manifest');
    fromDamage.close();
  });

  it('rebuilds an index of another schema version', async () => {
    const { dir, index } = await setup();
    index.close();
    const db = new DatabaseSync(path.join(dir, 'index.db'));
    db.exec("UPDATE meta SET value = '0' WHERE key = 'schema'");
    db.close();
    const reopened = await CacheIndex.open(dir);
    expect(reopened.opened.state).toBe('outdated');
    reopened.close();
  });

  it('reconcile drops rows whose file is gone and adds files it lacks, leaving agreeing rows alone', async () => {
    const { time, index, images } = await setup();
    const kept = await images.image({ repository: 'kept', tag: 'v1', layers: ['kept layer'] });
    const lost = await images.image({ repository: 'lost', tag: 'v1', layers: ['lost layer'] });
    const demoted = await images.image({ repository: 'demoted', layers: ['demoted layer'] });
    time.advance(1000);
    index.touch(kept.manifest);
    images.index = undefined;
    const unknown = await images.image({ repository: 'unknown', tag: 'v2', layers: ['unknown layer'] });
    index.flush();
    for (const digest of lost.digests) await rm(blobPath(images, digest));
    await rm(images.blobs.layout.tagPath(HOST, 'lost', 'v1'));
    await rm(metaPath(images, demoted.manifest));

    const stats = await index.reconcile();
    expect(stats).toEqual({
      added: unknown.digests.length,
      dropped: lost.digests.length,
      rekinded: 1,
      tagsAdded: 1,
      tagsDropped: 1,
    });
    expect(index.get(kept.manifest)).toMatchObject({ lastUsed: 1_001_000, repo: 'kept' });
    for (const digest of lost.digests) expect(index.get(digest)).toBeUndefined();
    expect(index.get(demoted.manifest)?.kind).toBe('blob');
    expect((await index.snapshot()).children.has(demoted.manifest)).toBe(false);
    expect(index.get(unknown.layers[0]!)).toMatchObject({ kind: 'blob', host: HOST, repo: 'unknown' });
    expect(index.get(unknown.manifest)?.kind).toBe('manifest');
    expect(index.usage().total).toBe(kept.size + demoted.size + unknown.size);
    expect(await index.reconcile()).toEqual({
      added: 0,
      dropped: 0,
      rekinded: 0,
      tagsAdded: 0,
      tagsDropped: 0,
    });
    index.close();
  });
});
