// A cache that cannot be written never fails a pull, proven with skopeo against caches on small
// tmpfs file systems made for the test: a layer larger than the free space, a full disk, a
// read-only disk at start (with and without content) and one made read-only while running. Each
// pull must succeed on the first try (skopeo verifies every digest), and no temp file may stay.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectPullLogged } from './env/expect-pull.ts';
import type { TestImage } from './env/image.ts';
import type { Pullthrough, RequestLine } from './env/proxy.ts';
import { bindReadOnly, fillUp, mountTmpfs, remount, tempFiles } from './env/small-fs.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const MiB = 1024 * 1024;
const world = useWorld({
  images: {
    big: { repository: 'e2e/disk-big', tag: 'v1', file: 'big.bin', size: 24 * MiB },
    other: { repository: 'e2e/disk-other', tag: 'v1', file: 'other.bin', size: 2 * MiB },
  },
});

/** Pulls `image` through `proxy` with skopeo; resolves with the proxy's request lines of that pull. */
async function pull(proxy: Pullthrough, image: TestImage, label: string): Promise<RequestLine[]> {
  const from = proxy.log.mark();
  const ref = `docker://${REGISTRY}/${image.repository}:${image.tag}`;
  const dest = world().mkdir(`${label}-${Date.now()}`);
  expectSuccess(label, await skopeoCopy(world(), ref, dest, { certDir: proxy.caCertDir, proxy: proxy.url }));
  expect(existsSync(join(dest, image.layer.digest.slice('sha256:'.length)))).toBe(true);
  return expectPullLogged(proxy.log, REGISTRY, image, from);
}

function layerLine(lines: readonly RequestLine[], image: TestImage): RequestLine {
  const line = lines.find((l) => l.method === 'GET' && l.path.endsWith(`/blobs/${image.layer.digest}`));
  if (line === undefined) throw new Error(`no layer GET among ${JSON.stringify(lines)}`);
  return line;
}

function blobFile(proxy: Pullthrough, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(proxy.cacheDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

test('a layer larger than the free space pulls completely, uncached, on the first try', async () => {
  const cache = mountTmpfs(join(world().dir, 'fs-small'), '8m');
  const proxy = await world().startProxy('proxy-small-fs', { cache: { dir: cache } });
  const big = world().image('big');
  const lines = await pull(proxy, big, 'skopeo copy (24 MiB layer, 8 MiB cache)');
  expect(layerLine(lines, big)['aborted']).toBeUndefined();
  expect(layerLine(lines, big)['cache']).toBe('bypass'); // larger than the free space: not admitted
  expect(existsSync(blobFile(proxy, big.layer.digest))).toBe(false);
  expect(tempFiles(cache)).toEqual([]);
  // The next pull of it goes through again, just as completely.
  await pull(proxy, big, 'skopeo copy (again)');
  expect(tempFiles(cache)).toEqual([]);
  await proxy.stop();
});

test('on a full disk, a cached image pulls from the cache by tag and a new one pulls uncached', async () => {
  const cache = mountTmpfs(join(world().dir, 'fs-full'), '16m');
  const proxy = await world().startProxy('proxy-full-fs', { cache: { dir: cache } });
  const { small } = world().images;
  await pull(proxy, small, 'skopeo copy (cold)');
  fillUp(cache);
  const again = await pull(proxy, small, 'skopeo copy (cached, disk full)');
  expect(layerLine(again, small)['cache']).toBe('hit');
  const other = world().image('other');
  const lines = await pull(proxy, other, 'skopeo copy (new image, disk full)');
  // The free-space guard knows the disk is full before the fill starts: BYPASS from the first byte.
  expect(layerLine(lines, other)['cache']).toBe('bypass');
  expect(existsSync(blobFile(proxy, other.layer.digest))).toBe(false);
  expect(tempFiles(cache)).toEqual([]);
  await proxy.stop();

  // The same cache made read-only: the proxy starts, says so, serves what it has, relays the rest.
  remount(cache, 'ro');
  const readOnly = await world().startProxy('proxy-read-only', { cache: { dir: cache } });
  await readOnly.log.waitForLine((l) => /read-only/.test(String(l.msg)));
  expect(layerLine(await pull(readOnly, small, 'skopeo copy (read-only, cached)'), small)['cache']).toBe(
    'hit',
  );
  expect(layerLine(await pull(readOnly, other, 'skopeo copy (read-only, new)'), other)['cache']).toBe(
    'bypass',
  );
  await readOnly.stop();
});

test('an empty read-only cache directory starts and relays everything', async () => {
  const cache = mountTmpfs(join(world().dir, 'fs-empty-ro'), '1m');
  remount(cache, 'ro');
  const proxy = await world().startProxy('proxy-empty-ro', { cache: { dir: cache } });
  const line = await proxy.log.waitForLine((l) => /read-only/.test(String(l.msg)));
  expect(JSON.stringify(line)).not.toMatch(/ENOENT/);
  const lines = await pull(proxy, world().images.small, 'skopeo copy (empty read-only cache)');
  expect(layerLine(lines, world().images.small)['cache']).toBe('bypass');
  await proxy.stop();
});

test('a cache made read-only while running keeps serving pulls', async () => {
  const cache = mountTmpfs(join(world().dir, 'fs-turns-ro'), '16m');
  const proxy = await world().startProxy('proxy-turns-ro', { cache: { dir: cache } });
  const { small } = world().images;
  await pull(proxy, small, 'skopeo copy (cold)');
  // What the cache stores turns read-only (the index, open for writing, stays as it is).
  for (const part of ['blobs', 'manifests', 'tags', 'public', 'tmp']) bindReadOnly(join(cache, part));
  for (let i = 0; i < 3; i += 1) {
    expect(layerLine(await pull(proxy, small, `skopeo copy (read-only ${i + 1})`), small)['cache']).toBe(
      'hit',
    );
  }
  const other = world().image('other');
  expect(layerLine(await pull(proxy, other, 'skopeo copy (read-only, new)'), other)['cache']).toBe('bypass');
  expect(tempFiles(cache)).toEqual([]);
  await proxy.stop();
});
