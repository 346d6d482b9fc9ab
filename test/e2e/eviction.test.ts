// A bounded cache seen from outside: with cache.maxSize at 10 MiB, skopeo and podman pull three
// images of ~3.3 MiB through pullthrough. The third passes 95 % of the cap: the least recently
// pulled image goes whole (the one pulled again by podman stays), the cache ends under the cap,
// and with the registries stopped the newest image still pulls completely from the cache while
// the evicted one cannot.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { setupPodman } from './env/clients/podman.ts';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectBlobsFromCache, expectPullLogged } from './env/expect-pull.ts';
import type { TestImage } from './env/image.ts';
import type { Pullthrough } from './env/proxy.ts';
import { expectFailure, expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const MiB = 1024 * 1024;
const SIZE = Math.round(3.3 * MiB);
const world = useWorld({
  images: {
    x: { repository: 'e2e/evict-x', tag: 'v1', file: 'x.bin', size: SIZE },
    y: { repository: 'e2e/evict-y', tag: 'v1', file: 'y.bin', size: SIZE },
    z: { repository: 'e2e/evict-z', tag: 'v1', file: 'z.bin', size: SIZE },
  },
});

function ref(image: TestImage): string {
  return `${REGISTRY}/${image.repository}:${image.tag}`;
}

async function skopeoPull(proxy: Pullthrough, image: TestImage, label: string) {
  const from = proxy.log.mark();
  const dest = world().mkdir(`${label.replace(/\W+/g, '-')}-${Date.now()}`);
  const result = await skopeoCopy(world(), `docker://${ref(image)}`, dest, {
    certDir: proxy.caCertDir,
    proxy: proxy.url,
  });
  return { result, from };
}

function blobFile(proxy: Pullthrough, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(proxy.cacheDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

function present(proxy: Pullthrough, image: TestImage): boolean[] {
  return [image.manifest.digest, image.config.digest, image.layer.digest].map((digest) => {
    try {
      return statSync(blobFile(proxy, digest)).isFile();
    } catch {
      return false;
    }
  });
}

/** Bytes of every blob file in the cache. */
function blobBytes(proxy: Pullthrough): number {
  const root = join(proxy.cacheDir, 'blobs', 'sha256');
  let total = 0;
  for (const prefix of readdirSync(root)) {
    for (const name of readdirSync(join(root, prefix))) total += statSync(join(root, prefix, name)).size;
  }
  return total;
}

test('the least recently used image is evicted whole; the newest still pulls offline', async () => {
  const proxy = await world().startProxy('proxy-bounded', { cache: { maxSize: '10MiB', minFree: '0%' } });
  const [x, y, z] = ['x', 'y', 'z'].map((key) => world().image(key)) as [TestImage, TestImage, TestImage];
  for (const [image, label] of [
    [x, 'skopeo copy x (cold)'],
    [y, 'skopeo copy y (cold)'],
  ] as const) {
    const { result, from } = await skopeoPull(proxy, image, label);
    expectSuccess(label, result);
    await expectPullLogged(proxy.log, REGISTRY, image, from);
  }
  // podman pulls x again: x is now more recent than y.
  const again = proxy.log.mark();
  const podman = setupPodman(world());
  expectSuccess(
    'podman pull x (cached)',
    await podman.run(['pull', '--quiet', '--cert-dir', proxy.caCertDir, ref(x)], { proxy: proxy.url }),
  );
  expectBlobsFromCache(await expectPullLogged(proxy.log, REGISTRY, x, again), x);

  const { result, from } = await skopeoPull(proxy, z, 'skopeo copy z (cold, past the mark)');
  expectSuccess('skopeo copy z', result);
  await expectPullLogged(proxy.log, REGISTRY, z, from);
  const evicted = await proxy.log.waitForLine((l) => l.msg === 'evicted', { from });
  expect(evicted['digest']).toBe(y.manifest.digest);
  await proxy.log.waitForLine((l) => l.msg === 'eviction pass', { from });
  expect(present(proxy, y)).toEqual([false, false, false]);
  expect(present(proxy, x)).toEqual([true, true, true]);
  expect(present(proxy, z)).toEqual([true, true, true]);
  expect(blobBytes(proxy)).toBeLessThan(10 * MiB);

  await Promise.all(world().registries.map((registry) => registry.stop()));
  const offline = await skopeoPull(proxy, z, 'skopeo copy z (registries stopped)');
  expectSuccess('skopeo copy z (registries stopped)', offline.result);
  expectBlobsFromCache(await expectPullLogged(proxy.log, REGISTRY, z, offline.from), z);
  const gone = await skopeoPull(proxy, y, 'skopeo copy y (evicted, registries stopped)');
  expectFailure('skopeo copy y (evicted, registries stopped)', gone.result);
});
