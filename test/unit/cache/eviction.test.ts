import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { removeFiles, removeRecords } from '../../../src/cache/eviction-files.ts';
import { Evictor, type EvictionConfig, type Space } from '../../../src/cache/eviction.ts';
import { CacheIndex } from '../../../src/cache/index.ts';
import { scanBlobs, scanManifestMetas, scanTags } from '../../../src/cache/index-scan.ts';
import type { BlobStore } from '../../../src/cache/blobs.ts';
import type { RecordKey, RecordStore } from '../../../src/cache/records.ts';
import { parseDigest } from '../../../src/oci/digest.ts';
import { CacheImages, HOST, type CachedImage } from '../../helpers/cache-images.ts';
import { tempDir } from '../../helpers/tmp.ts';

const DAY = 86_400_000;
const LAYER = 10_000;

interface Setup {
  readonly config?: Partial<EvictionConfig>;
  readonly space?: Space;
  readonly start?: number;
}

async function setup(options: Setup = {}) {
  const dir = await tempDir();
  let now = options.start ?? 1_000_000;
  const time = { now: () => now, advance: (ms: number) => (now += ms) };
  const index = await CacheIndex.open(dir, { now: time.now, flushDelayMs: 60_000, touchGranularityMs: 0 });
  const images = await CacheImages.create(dir, index);
  const inUse = new Set<string>();
  const space = { current: options.space };
  const config: EvictionConfig = {
    maxSize: 1e12,
    minFree: { bytes: 0 },
    inactive: 0,
    pins: [],
    budgets: [],
    ...options.config,
  };
  const errors: unknown[] = [];
  const makeEvictor = (overrides: Partial<EvictionConfig> = {}) =>
    new Evictor({
      index,
      config: { ...config, ...overrides },
      remove: removeFiles(index.layout),
      inUse: (digest) => inUse.has(digest),
      statfs: () => Promise.resolve(space.current ?? { free: 1e15, total: 1e15 }),
      now: time.now,
      onError: (error) => errors.push(error),
    });
  /** One image with one layer of its own of LAYER bytes (plus `shared` layers), pulled now. */
  const pull = async (repository: string, extra: Partial<Parameters<CacheImages['image']>[0]> = {}) => {
    const image = await images.image({
      repository,
      tag: 'latest',
      layers: [repository.padEnd(LAYER, '.')],
      ...extra,
    });
    index.touch(image.manifest);
    time.advance(1000);
    return image;
  };
  return { dir, time, index, images, inUse, space, makeEvictor, pull, errors };
}

/** Rows and files agree: same digests and sizes, kinds match meta files, tag rows match tag files. */
async function expectConsistent(index: CacheIndex): Promise<void> {
  const files = new Map<string, number>();
  for await (const batch of scanBlobs(index.layout))
    for (const blob of batch) files.set(blob.digest, blob.size);
  const snapshot = await index.snapshot();
  expect(new Map([...snapshot.entries].map(([digest, row]) => [digest, row.size]))).toEqual(files);
  const metas = await scanManifestMetas(index.layout);
  const manifests = [...snapshot.entries.values()]
    .filter((row) => row.kind === 'manifest')
    .map((row) => row.digest);
  expect(new Set(manifests)).toEqual(new Set([...metas].filter((digest) => files.has(digest))));
  const tagFiles = (await scanTags(index.layout)).map(
    (t) => `${t.host} ${t.repository}:${t.tag} ${t.digest}`,
  );
  const tagRows = snapshot.tags.map((t) => `${t.host} ${t.repo}:${t.tag} ${t.digest}`);
  expect(tagRows.sort()).toEqual(tagFiles.sort());
  expect(index.usage().total).toBe([...files.values()].reduce((a, b) => a + b, 0));
}

const present = (index: CacheIndex, image: CachedImage) =>
  image.digests.filter((d) => index.get(d) !== undefined);

describe('Evictor', () => {
  it('evicts the least recently used image whole, with its tags, and stops under the low-water mark', async () => {
    const { index, makeEvictor, pull } = await setup();
    const [a, b, c] = [await pull('a'), await pull('b'), await pull('c')];
    const maxSize = a.size + b.size + c.size; // 100 %: past the 95 % mark
    const result = await makeEvictor({ maxSize }).pass();
    expect(result.evicted).toEqual([
      { root: a.manifest, reason: 'cap', digests: a.digests, bytes: a.size, lastUsed: 1_000_000 },
    ]);
    expect(result.freedBytes).toBe(a.size);
    expect(result.usage).toEqual({ before: maxSize, after: b.size + c.size });
    expect(index.usage().total).toBeLessThanOrEqual(maxSize * 0.9);
    expect(present(index, a)).toEqual([]);
    expect(present(index, b)).toEqual(b.digests);
    expect((await index.snapshot()).tags.map((tag) => tag.repo).sort()).toEqual(['b', 'c']);
    await expectConsistent(index);
    index.close();
  });

  it('frees as many images as it takes, oldest first, and no more', async () => {
    const { index, makeEvictor, pull } = await setup();
    const pulled: CachedImage[] = [];
    for (let i = 0; i < 10; i++) pulled.push(await pull(`img${i}`));
    const total = pulled.reduce((sum, image) => sum + image.size, 0);
    // 130 % of maxSize: 90 % of it is 69 % of the images, so 4 of 10 equal images must go (3 leave 70 %).
    const maxSize = Math.floor(total / 1.3);
    const result = await makeEvictor({ maxSize }).pass();
    expect(result.evicted.map((e) => e.root)).toEqual(pulled.slice(0, 4).map((image) => image.manifest));
    expect(result.usage.after).toBeLessThanOrEqual(maxSize * 0.9);
    expect(result.usage.after + (pulled[3]?.size ?? 0)).toBeGreaterThan(maxSize * 0.9);
    await expectConsistent(index);
    index.close();
  });

  it('a re-pulled image outlives older ones; a layer shared with a recent image survives', async () => {
    const { index, makeEvictor, pull, time } = await setup();
    const base = 'shared base layer'.padEnd(LAYER, '.');
    const old = await pull('old', { layers: ['old own layer'.padEnd(LAYER, '.'), base] });
    const middle = await pull('middle');
    const recent = await pull('recent', { layers: ['recent own layer'.padEnd(LAYER, '.'), base] });
    index.touch(middle.manifest); // re-pulled: now the most recent
    time.advance(1000);
    const total = old.size + middle.size + recent.size - LAYER;
    const result = await makeEvictor({ maxSize: total }).pass();
    expect(result.evicted.map((e) => e.root)).toEqual([old.manifest]);
    const shared = old.layers[1]!;
    expect(result.evicted[0]?.digests).not.toContain(shared);
    expect(index.get(shared)).toBeDefined();
    expect(present(index, recent)).toEqual(recent.digests);
    expect(present(index, middle)).toEqual(middle.digests);
    await expectConsistent(index);
    index.close();
  });

  it('a base layer shared with a recent image does not make an old image recent', async () => {
    const { index, makeEvictor, pull } = await setup();
    const base = 'shared base layer'.padEnd(LAYER, '.');
    const old = await pull('old', { layers: ['old own layer'.padEnd(LAYER, '.'), base] });
    const middle = await pull('middle');
    const recent = await pull('recent', { layers: ['recent own layer'.padEnd(LAYER, '.'), base] });
    const total = old.size + middle.size + recent.size - LAYER;
    const result = await makeEvictor({ maxSize: total }).pass();
    expect(result.evicted.map((e) => e.root)).toEqual([old.manifest]);
    expect(present(index, middle)).toEqual(middle.digests);
    index.close();
  });

  it('keeps a multi-platform image whole: a platform manifest pulled by digest keeps its index', async () => {
    const { index, images, makeEvictor, pull, time } = await setup();
    const amd = await images.image({ repository: 'multi', layers: ['amd'.padEnd(LAYER, '.')] });
    const arm = await images.image({ repository: 'multi', layers: ['arm'.padEnd(LAYER, '.')] });
    const top = await images.imageIndex([amd, arm], 'multi', 'latest');
    time.advance(1000);
    const other = await pull('other');
    index.touch(arm.manifest); // a client pulls its platform straight by digest
    time.advance(1000);
    const multiSize = amd.size + arm.size + (index.get(top)?.size ?? 0);
    const result = await makeEvictor({ maxSize: multiSize + other.size }).pass();
    expect(result.evicted.map((e) => e.root)).toEqual([other.manifest]);
    const again = await makeEvictor({ maxSize: multiSize / 2 }).pass();
    expect(again.evicted.map((e) => e.root)).toEqual([top]);
    expect(new Set(again.evicted[0]?.digests)).toEqual(new Set([top, ...amd.digests, ...arm.digests]));
    await expectConsistent(index);
    index.close();
  });

  it('never deletes content in use: the image is skipped whole and the next one goes', async () => {
    const { index, inUse, makeEvictor, pull } = await setup();
    const [a, b, c] = [await pull('a'), await pull('b'), await pull('c')];
    inUse.add(a.layers[0]!);
    const result = await makeEvictor({ maxSize: a.size + b.size + c.size }).pass();
    expect(result.skipped.inUse).toEqual([a.manifest]);
    expect(result.evicted.map((e) => e.root)).toEqual([b.manifest]);
    expect(present(index, a)).toEqual(a.digests);
    await expectConsistent(index);
    index.close();
  });

  it('a file that cannot be removed keeps its row and is reported; the rest of the image goes', async () => {
    const { index, makeEvictor, pull, errors } = await setup();
    const [a, b, c] = [await pull('a'), await pull('b'), await pull('c')];
    const stuck = a.layers[0]!;
    const failing = new Evictor({
      index,
      config: {
        maxSize: a.size + b.size + c.size,
        minFree: { bytes: 0 },
        inactive: 0,
        pins: [],
        budgets: [],
      },
      remove: async (victim) => {
        if (victim.digest === stuck) throw new Error('EACCES');
        await removeFiles(index.layout)(victim);
      },
      onError: (error) => errors.push(error),
    });
    const result = await failing.pass();
    // a freed little, so b went too.
    expect(result.evicted.map((e) => e.digests)).toEqual([[a.manifest, a.config], b.digests]);
    expect(errors).toEqual([new Error('EACCES')]);
    expect(present(index, a)).toEqual([stuck]);
    await expectConsistent(index);
    // Orphaned now, the layer is an image of its own, and the oldest: the next pass takes it first.
    const next = await makeEvictor({ maxSize: index.usage().total }).pass();
    expect(next.evicted.map((e) => e.root)).toEqual([stuck]);
    index.close();
  });

  it('keeps pinned images, counts them, reports them, and says when only they are left', async () => {
    const { index, makeEvictor, pull } = await setup();
    const pinned = await pull('team/postgres');
    const other = await pull('team/app');
    const maxSize = pinned.size + other.size;
    const pins = ['registry.example/team/postgres:latest'];
    const result = await makeEvictor({ maxSize, pins }).pass();
    expect(result.evicted.map((e) => e.root)).toEqual([other.manifest]);
    expect(result.skipped.pinned).toEqual([pinned.manifest]);
    expect(result.onlyPinnedLeft).toBe(false);

    const tight = await makeEvictor({ maxSize: pinned.size / 2, pins }).pass();
    expect(tight.evicted).toEqual([]);
    expect(tight.unmet).toEqual([{ reason: 'cap' }]);
    expect(tight.onlyPinnedLeft).toBe(true);
    expect(present(index, pinned)).toEqual(pinned.digests);
    expect(
      (await makeEvictor({ maxSize: pinned.size / 2, pins: ['registry.example/team/*'] }).pass())
        .onlyPinnedLeft,
    ).toBe(true);
    index.close();
  });

  it('removes images unused for `inactive`, even under the cap, but not pinned ones', async () => {
    const { index, makeEvictor, pull, time } = await setup();
    const stale = await pull('stale');
    const pinned = await pull('pinned');
    time.advance(2 * DAY);
    const fresh = await pull('fresh');
    const result = await makeEvictor({ inactive: DAY, pins: ['registry.example/pinned'] }).pass();
    expect(result.evicted.map((e) => [e.root, e.reason])).toEqual([[stale.manifest, 'inactive']]);
    expect(present(index, pinned)).toEqual(pinned.digests);
    expect(present(index, fresh)).toEqual(fresh.digests);
    index.close();
  });

  it('evicts to keep minFree on the filesystem, down to minFree plus the 5 % band', async () => {
    const { index, makeEvictor, pull, space } = await setup();
    const [a, b, c] = [await pull('a'), await pull('b'), await pull('c')];
    const total = 10 * a.size;
    // 10 % of the filesystem (one image) must stay free and 2 % is: eviction goes on until 15 %.
    space.current = { free: 0.02 * total, total };
    const result = await makeEvictor({ minFree: { percent: 10 }, maxSize: total }).pass();
    expect(result.evicted.map((e) => [e.root, e.reason])).toEqual([
      [a.manifest, 'minFree'],
      [b.manifest, 'minFree'],
    ]);
    expect(result.unmet).toEqual([]);
    expect(present(index, c)).toEqual(c.digests);
    index.close();
  });

  it('admit() refuses a fill larger than maxSize, or one minFree cannot make room for', async () => {
    const { index, makeEvictor, pull, space } = await setup();
    const [a, b, c] = [await pull('a'), await pull('b'), await pull('c')];
    const total = 10 * a.size;
    space.current = { free: 0.02 * total, total };
    const evictor = makeEvictor({ minFree: { percent: 10 }, maxSize: total });
    expect(await evictor.admit(total + 1)).toBe(false);
    // Room once a and b are evicted: admitted, and a pass is started.
    expect(await evictor.admit(a.size)).toBe(true);
    await evictor.idle();
    expect([a, b, c].map((image) => present(index, image).length > 0)).toEqual([false, false, true]);
    // The disk stays short (the statfs here ignores what eviction freed, as when something else
    // fills it): only c is left to evict, too little for this fill, which starts one more pass.
    expect(await evictor.admit(c.size / 2)).toBe(false);
    await evictor.idle();
    expect(present(index, c)).toEqual([]);
    expect(await evictor.admit(1)).toBe(false);
    await evictor.stop();
    space.current = { free: total, total };
    expect(await evictor.admit(c.size)).toBe(true);
    index.close();
  });

  it('reads free space with statfs on the cache directory by default', async () => {
    const { index } = await setup();
    const base = { maxSize: 1e12, inactive: 0, pins: [], budgets: [] };
    const remove = removeFiles(index.layout);
    const roomy = new Evictor({ index, remove, config: { ...base, minFree: { bytes: 1 } } });
    expect(await roomy.admit(1)).toBe(true);
    const impossible = new Evictor({ index, remove, config: { ...base, minFree: { percent: 100 } } });
    expect(await impossible.admit(1)).toBe(false);
    await impossible.stop();
    index.close();
  });

  it("enforces a registry's budget on its own images only; docker.io stands for Docker Hub", async () => {
    const { index, makeEvictor, pull } = await setup();
    const hubOld = await pull('library/old', { host: 'registry-1.docker.io:443' });
    const other = await pull('elsewhere');
    const hubNew = await pull('library/new', { host: 'index.docker.io:443' });
    const budgets = [{ registry: 'docker.io', maxSize: hubOld.size + hubNew.size }];
    const evictor = makeEvictor({ budgets });
    const result = await evictor.pass();
    expect(result.evicted.map((e) => [e.root, e.reason])).toEqual([[hubOld.manifest, 'budget']]);
    expect(present(index, other)).toEqual(other.digests);
    expect(await evictor.admit(hubNew.size * 3, 'registry-1.docker.io:443')).toBe(false);
    expect(await evictor.admit(hubNew.size * 3, HOST)).toBe(true);
    index.close();
  });

  it('schedule() is single-flight and runs a pass only when a bound is passed', async () => {
    const { index, makeEvictor, pull } = await setup();
    const a = await pull('a');
    const b = await pull('b');
    const idle = makeEvictor({ maxSize: (a.size + b.size) * 2 });
    expect(await idle.schedule()).toBeUndefined();
    const busy = makeEvictor({ maxSize: a.size + b.size });
    const first = busy.schedule();
    expect(busy.schedule()).toBe(first);
    expect((await first)?.evicted.map((e) => e.root)).toEqual([a.manifest]);
    expect(await busy.schedule()).toBeUndefined(); // under the high-water mark now
    index.close();
  });

  it('after a crash that deleted files but not rows, reconcile and the next pass leave a consistent cache', async () => {
    const { index, makeEvictor, pull, images } = await setup();
    const [a, b, c] = [await pull('a'), await pull('b'), await pull('c')];
    index.flush();
    // The first half of a's removal, as eviction-files.ts orders it: tag, meta, manifest bytes.
    await rm(images.blobs.layout.tagPath(HOST, 'a', 'latest'));
    await rm(images.blobs.layout.manifestMetaPath(parseDigest(a.manifest)!));
    await rm(images.blobs.layout.blobPath(parseDigest(a.manifest)!));
    expect(await index.reconcile()).toMatchObject({ dropped: 1, tagsDropped: 1 });
    await expectConsistent(index);
    // a's config and layer are orphans now: the oldest roots, and the first to go.
    const result = await makeEvictor({ maxSize: b.size + c.size + a.size - 1 }).pass();
    expect(new Set(result.evicted.flatMap((e) => e.digests))).toEqual(new Set([a.config, ...a.layers]));
    expect(present(index, b)).toEqual(b.digests);
    await expectConsistent(index);
    index.close();
  });

  it('after a crash that deleted rows but not files, reconcile brings the files back into the index', async () => {
    const { dir, index, pull } = await setup({ start: Date.now() });
    const [a, b] = [await pull('a'), await pull('b')];
    index.remove(a.digests);
    expect(index.usage().total).toBe(b.size);
    index.close();
    const reopened = await CacheIndex.open(dir);
    expect(await reopened.reconcile()).toMatchObject({ added: a.digests.length, tagsAdded: 1 });
    expect(reopened.usage().total).toBe(a.size + b.size);
    expect(reopened.get(a.manifest)?.kind).toBe('manifest');
    await expectConsistent(reopened);
    reopened.close();
  });

  it('evicts the referrers records of a manifest in its repository, through a RecordStore too', async () => {
    const { index, images, makeEvictor, pull } = await setup();
    const [a, b] = [await pull('a'), await pull('b')];
    const record = { digest: `sha256:${'e'.repeat(64)}`, mediaType: 'x', size: 1, checkedAt: 0 };
    for (const [repo, image] of [
      ['a', a],
      ['b', b],
    ] as const) {
      await images.manifests.putReferrers(HOST, repo, image.manifest, '', record);
    }
    await makeEvictor({ maxSize: a.size + b.size - 1 }).pass();
    expect(await images.manifests.getReferrers(HOST, 'a', a.manifest, '')).toBeUndefined();
    expect(await images.manifests.getReferrers(HOST, 'b', b.manifest, '')).toBeDefined();
    index.close();

    // Another backend (a bucket) cannot list: the unfiltered record goes by its key.
    const removed: RecordKey[] = [];
    const records: RecordStore = {
      read: () => Promise.resolve(undefined),
      write: () => Promise.resolve(),
      remove: (key: RecordKey) => Promise.resolve(void removed.push(key)),
    };
    const blobs = { delete: () => Promise.resolve() } as unknown as BlobStore;
    const subject = parseDigest(a.manifest)!;
    const tags = [{ host: HOST, repo: 'a', tag: 'latest', digest: a.manifest }];
    await removeRecords(
      records,
      blobs,
    )({ digest: a.manifest, kind: 'manifest', size: 1, tags, host: HOST, repo: 'a' });
    expect(removed).toContainEqual({ kind: 'referrers', host: HOST, name: 'a', subject, artifactType: '' });
  });
});
