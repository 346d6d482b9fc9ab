// Purge on a real cache directory and index: what a selector removes, what it must keep (a
// manifest another tag still names, layers of remaining images, what is being read), and that
// an index's platform manifests go with the index, and referrers records go with their subject.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { listImages } from '../../../src/cache/catalog.ts';
import { removeFiles } from '../../../src/cache/eviction-files.ts';
import { Evictor } from '../../../src/cache/eviction.ts';
import { CacheIndex } from '../../../src/cache/index.ts';
import { purge } from '../../../src/cache/purge.ts';
import { parseDigest } from '../../../src/oci/digest.ts';
import { CacheImages, HOST } from '../../helpers/cache-images.ts';
import { tempDir } from '../../helpers/tmp.ts';

async function setup() {
  const dir = await tempDir();
  const index = await CacheIndex.open(dir, { flushDelayMs: 60_000 });
  const images = await CacheImages.create(dir, index);
  const inUse = new Set<string>();
  const options = { index, remove: removeFiles(index.layout), inUse: (digest: string) => inUse.has(digest) };
  const present = (digest: string) => existsSync(index.layout.blobPath(parseDigest(digest)!));
  return { index, images, inUse, options, present };
}

describe('purge', () => {
  it('keeps a manifest another tag names, and the layers a remaining image shares', async () => {
    const { index, images, options, present } = await setup();
    const a = await images.image({ repository: 'lib/a', tag: 'v1', layers: ['shared', 'own-a'] });
    const b = await images.image({ repository: 'lib/b', tag: 'v1', layers: ['shared', 'own-b'] });
    // lib/a:latest names the same manifest as lib/a:v1.
    await images.manifests.putTag(HOST, 'lib/a', 'latest', {
      digest: a.manifest,
      mediaType: 'x',
      size: 1,
      checkedAt: 0,
    });
    index.recordTag(HOST, 'lib/a', 'latest', a.manifest);

    const first = await purge({ registry: HOST, repository: 'lib/a', tag: 'v1' }, options);
    expect(first).toEqual({ tags: 1, images: 0, files: 0, bytes: 0, inUse: [] });
    expect(present(a.manifest)).toBe(true);

    const second = await purge({ registry: 'registry.example', repository: 'lib/a', tag: 'latest' }, options);
    expect(second).toMatchObject({ tags: 1, images: 1, files: 3 });
    expect(a.digests.map(present)).toEqual([false, false, true, false]); // manifest, config, shared, own
    expect(b.digests.every(present)).toBe(true);
    const left = await listImages(await index.snapshot(), index.layout);
    expect(left.flatMap((r) => r.repositories.map((repo) => repo.repository))).toEqual(['lib/b']);
  });

  it('takes an index with its platform manifests, and what a repository pulled by digest', async () => {
    const { index, images, options, present } = await setup();
    const amd = await images.image({ repository: 'lib/x', layers: ['amd'] });
    const arm = await images.image({ repository: 'lib/x', layers: ['arm'] });
    const top = await images.imageIndex([amd, arm], 'lib/x', 'v1');
    const byDigest = await images.image({ repository: 'lib/x', layers: ['untagged'] });
    const other = await images.image({ repository: 'lib/y', tag: 'v1', layers: ['y'] });

    const listed = await listImages(await index.snapshot(), index.layout, { repository: 'lib/x' });
    const unique = new Set([top, ...amd.digests, ...arm.digests]); // the two share their config
    const size = [...unique].reduce((sum, digest) => sum + (index.get(digest)?.size ?? 0), 0);
    expect(listed[0]?.repositories[0]?.tags[0]).toMatchObject({ tag: 'v1', digest: top, size });

    const result = await purge({ registry: HOST, repository: 'lib/x' }, options);
    expect(result).toMatchObject({ tags: 1, images: 2, inUse: [] });
    expect([top, ...amd.digests, ...arm.digests, ...byDigest.digests].some(present)).toBe(false);
    expect(other.digests.every(present)).toBe(true);
  });

  it('leaves what is being read, and purges everything (stray blobs too) with no selector', async () => {
    const { images, inUse, options, present } = await setup();
    const a = await images.image({ repository: 'lib/a', tag: 'v1', layers: ['a'] });
    const b = await images.image({ repository: 'lib/b', tag: 'v1', layers: ['b'] });
    inUse.add(b.layers[0]!);
    const stray = await images.blob('stray');

    const result = await purge({}, options);
    expect(result).toMatchObject({ tags: 2, images: 2, inUse: [b.manifest] });
    expect(a.digests.some(present)).toBe(false);
    expect(present(stray)).toBe(false);
    expect(b.digests.every(present)).toBe(true); // left whole, untagged: eviction takes it later
  });

  it('removes the referrers records of the subjects it removes, and all of a purged repository', async () => {
    const { images, options } = await setup();
    const a = await images.image({ repository: 'lib/a', tag: 'v1', layers: ['a'] });
    const kept = await images.image({ repository: 'lib/a', tag: 'v2', layers: ['kept'] });
    const b = await images.image({ repository: 'lib/b', tag: 'v1', layers: ['b'] });
    const record = { digest: `sha256:${'e'.repeat(64)}`, mediaType: 'x', size: 1, checkedAt: 0 };
    const uncached = `sha256:${'d'.repeat(64)}`; // a subject whose referrers alone were asked
    const put = (repo: string, subject: string, filter = '') =>
      images.manifests.putReferrers(HOST, repo, subject, filter, record);
    await put('lib/a', a.manifest);
    await put('lib/a', a.manifest, 'application/vnd.dev.cosign.artifact.sig.v1+json');
    await put('lib/a', kept.manifest);
    await put('lib/b', b.manifest);
    await put('lib/b', uncached);
    const has = async (repo: string, subject: string) =>
      (await images.manifests.getReferrers(HOST, repo, subject, '')) !== undefined;

    await purge({ registry: HOST, repository: 'lib/a', tag: 'v1' }, options);
    expect(await has('lib/a', a.manifest)).toBe(false);
    const filtered = 'application/vnd.dev.cosign.artifact.sig.v1+json';
    expect(await images.manifests.getReferrers(HOST, 'lib/a', a.manifest, filtered)).toBeUndefined();
    expect(await has('lib/a', kept.manifest)).toBe(true);

    await purge({ registry: HOST, repository: 'lib/b' }, options);
    expect(await has('lib/b', b.manifest)).toBe(false);
    expect(await has('lib/b', uncached)).toBe(false);
    expect(await has('lib/a', kept.manifest)).toBe(true);
  });

  it('runs no eviction pass while a purge holds the evictor', async () => {
    const { index, images, options } = await setup();
    await images.image({ repository: 'lib/a', tag: 'v1', layers: ['a'] });
    const config = { maxSize: 1e12, minFree: { bytes: 0 }, inactive: 0, pins: [], budgets: [] };
    const evictor = new Evictor({ index, config, remove: options.remove });
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const purged = evictor.exclusive(async () => {
      await gate;
      return purge({}, options);
    });
    const pass = evictor.pass(); // asked for during the purge: must see what the purge left
    release();
    expect((await purged).images).toBe(1);
    expect((await pass).usage.before).toBe(0);
  });
});
