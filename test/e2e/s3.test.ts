// storage.type s3 seen from outside (issue 24): pullthrough keeps its cache in a bucket of an
// S3 emulator (s3rver, in this process on a loopback port), and skopeo pulls
// registry.test/e2e/small:v1 through it twice. The registry's log: the first pull fetches the
// config and the layer once each, the second no blob at all; the objects are in the bucket and
// no blob is in cache.dir. A second pullthrough on the same bucket with redirect: true answers
// the blob GETs with a 307 to a presigned URL, which skopeo and podman follow: a hit for a cache
// it never filled, still with no upstream blob GET.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { startS3 } from '../helpers/s3.ts';
import { setupPodman } from './env/clients/podman.ts';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectBlobsFromCache, expectPullLogged } from './env/expect-pull.ts';
import type { Pullthrough } from './env/proxy.ts';
import { countDuring, reportCounts } from './env/upstream-counts.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const world = useWorld();
const AWS_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

function blobKey(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return `blobs/sha256/${hex.slice(0, 2)}/${hex}`;
}

async function copy(proxy: Pullthrough, label: string) {
  const { images } = world();
  const ref = `docker://${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  const dest = world().mkdir(label);
  const from = proxy.log.mark();
  const counts = await countDuring(world().registries, async () => {
    expectSuccess(
      label,
      await skopeoCopy(world(), ref, dest, { certDir: proxy.caCertDir, proxy: proxy.url }),
    );
  });
  return { counts, from };
}

test('skopeo pulls twice through pullthrough on S3 storage: the second pull fetches no blob', async () => {
  const s3 = await startS3();
  const { images } = world();
  const image = images.small;
  const proxy = await world().startProxy('proxy-s3', { storage: s3.storage(), env: AWS_ENV });

  const first = await copy(proxy, 'skopeo-s3-1');
  await expectPullLogged(proxy.log, REGISTRY, image, first.from);
  const second = await copy(proxy, 'skopeo-s3-2');
  await expectPullLogged(proxy.log, REGISTRY, image, second.from);
  console.info(
    `[e2e] s3 pull 2: proxy blob GETs → ${expectBlobsFromCache(proxy.log.requests(REGISTRY, second.from), image)}`,
  );
  reportCounts('skopeo (s3)', [first.counts, second.counts]);
  expect(first.counts.blobGet).toBe(2);
  expect(second.counts.blobGet).toBe(0);

  const objects = await s3.objects();
  console.info(`[e2e] s3 bucket: ${objects.map((o) => `${o.key} (${o.size} B)`).join(', ')}`);
  const keys = objects.map((object) => object.key);
  for (const digest of [image.manifest.digest, image.config.digest, image.layer.digest]) {
    expect(keys).toContain(blobKey(digest));
  }
  expect(objects.find((o) => o.key === blobKey(image.layer.digest))?.size).toBe(image.layer.size);
  expect(existsSync(join(proxy.cacheDir, 'blobs', 'sha256'))).toBe(false);

  // Another pullthrough on the same bucket, redirecting: skopeo follows the 307s to the bucket.
  const redirecting = await world().startProxy('proxy-s3-redirect', {
    storage: s3.storage({ redirect: true }),
    env: AWS_ENV,
  });
  const third = await copy(redirecting, 'skopeo-s3-redirect');
  reportCounts('skopeo (s3, redirect)', [third.counts]);
  expect(third.counts.blobGet).toBe(0);
  const base = `/v2/${image.repository}/blobs/`;
  for (const digest of [image.config.digest, image.layer.digest]) {
    const line = await redirecting.log.waitForRequest(REGISTRY, 'GET', `${base}${digest}`, {
      from: third.from,
    });
    expect(line.status).toBe(307);
    expect(line['cache']).toBe('hit');
  }

  // podman (containers/image too) follows them the same way.
  const podman = setupPodman(world());
  const pulled = redirecting.log.mark();
  const ref = `${REGISTRY}/${image.repository}:${image.tag}`;
  const fourth = await countDuring(world().registries, async () => {
    expectSuccess(
      'podman pull (redirect)',
      await podman.run(['pull', '--quiet', '--cert-dir', redirecting.caCertDir, ref], {
        proxy: redirecting.url,
      }),
    );
  });
  reportCounts('podman (s3, redirect)', [fourth]);
  expect(fourth.blobGet).toBe(0);
  const layer = await redirecting.log.waitForRequest(REGISTRY, 'GET', `${base}${image.layer.digest}`, {
    from: pulled,
  });
  expect(layer.status).toBe(307);
});
