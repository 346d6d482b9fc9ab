// Pulls with the upstream gone. skopeo warms the cache through pullthrough by tag on both names
// (a tag is recorded per host; docker pulls from registry-v6.test), then both registry processes
// are stopped by PID. Each client, starting with an empty store, then pulls the same tag: the
// proxy serves the tag `stale` and every blob from its cache. A pull by digest needs no tag at
// all. Last, the registries start again and the tag is revalidated upstream once more.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { startContainerd } from './env/clients/containerd.ts';
import { DOCKER_CERTS_D, startDockerd } from './env/clients/dockerd.ts';
import { setupPodman } from './env/clients/podman.ts';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectBlobsFromCache, expectPullLogged } from './env/expect-pull.ts';
import type { RunResult } from './env/processes.ts';
import { probeV2 } from './env/registry.ts';
import { countDuring, reportCounts } from './env/upstream-counts.ts';
import { expectSuccess, report, useWorld } from './env/vitest.ts';
import { REGISTRY, REGISTRY_V6 } from './env/world.ts';

const world = useWorld();

function copyThroughProxy(host: string, reference: string, dest: string): Promise<RunResult> {
  const { proxy, images } = world();
  return skopeoCopy(world(), `docker://${host}/${images.small.repository}${reference}`, world().mkdir(dest), {
    certDir: proxy.caCertDir,
    proxy: true,
  });
}

/**
 * Runs one pull with the upstream down and checks what the proxy logged for it: the tag (GET or
 * HEAD) `stale`, each blob from the cache. Prints the proxy's lines first, so a failure says at
 * which request the client gave up.
 */
async function offlinePull(client: string, host: string, pull: () => Promise<RunResult>): Promise<void> {
  const { proxy, images } = world();
  const image = images.small;
  const from = proxy.log.mark();
  const result = await pull();
  const said = (): string =>
    proxy.log
      .requests(host, from)
      .map(
        (line) =>
          `${line.method} ${line.path} → ${line.status} ${String(line['cache'])}` +
          (line['aborted'] === true ? ' (aborted)' : ''),
      )
      .join('; ');
  if (result.code !== 0) console.info(`[e2e] offline ${client} failed; proxy: ${said()}`);
  expectSuccess(`${client} pull (upstream down)`, result);
  const lines = await expectPullLogged(proxy.log, host, image, from);
  console.info(`[e2e] offline ${client}; proxy: ${said()}`);
  const tag = lines.filter((line) => line.path === `/v2/${image.repository}/manifests/${image.tag}`);
  expect(tag.length).toBeGreaterThan(0);
  for (const line of tag) expect(line['cache']).toBe('stale');
  expectBlobsFromCache(lines, image);
}

test('warm the cache on both names, then stop both registries', async () => {
  const { proxy, images, registries, pki } = world();
  for (const host of [REGISTRY, REGISTRY_V6]) {
    const from = proxy.log.mark();
    expectSuccess(
      `skopeo copy from ${host} (warming)`,
      await copyThroughProxy(host, `:${images.small.tag}`, `warm-${host}`),
    );
    await expectPullLogged(proxy.log, host, images.small, from);
  }
  const started = performance.now();
  await Promise.all(registries.map((registry) => registry.stop()));
  report('registries stop', performance.now() - started);
  const ca = readFileSync(pki.caCrt, 'utf8');
  for (const registry of registries)
    await expect(probeV2(registry.name, 443, ca)).rejects.toThrow(/ECONNREFUSED/);
});

test('skopeo copy by tag with the upstream down', async () => {
  const { images } = world();
  await offlinePull('skopeo', REGISTRY, () =>
    copyThroughProxy(REGISTRY, `:${images.small.tag}`, 'offline-skopeo'),
  );
});

test('podman pull by tag with the upstream down', async () => {
  const { proxy, images } = world();
  const podman = setupPodman(world());
  const ref = `${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  await offlinePull('podman', REGISTRY, () =>
    podman.run(['pull', '--quiet', '--cert-dir', proxy.caCertDir, ref], { proxy: true }),
  );
});

test('ctr images pull by tag with the upstream down', async () => {
  const { proxy, images } = world();
  const containerd = await startContainerd(world());
  const ref = `${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  await offlinePull('ctr', REGISTRY, () =>
    containerd.ctr(['images', 'pull', '--tlscacert', proxy.caCrt, ref], { proxy: true }),
  );
});

test('docker pull by tag (registry-v6.test) with the upstream down', async () => {
  const { proxy, images } = world();
  const started = performance.now();
  const dockerd = await startDockerd(world(), { proxy: true });
  report('dockerd start', performance.now() - started);
  const remove = world().placeFile(join(DOCKER_CERTS_D, REGISTRY_V6, 'ca.crt'), readFileSync(proxy.caCrt));
  try {
    const ref = `${REGISTRY_V6}/${images.small.repository}:${images.small.tag}`;
    await offlinePull('docker', REGISTRY_V6, () => dockerd.docker(['pull', '--quiet', ref]));
  } finally {
    remove();
  }
});

test('skopeo copy by digest with the upstream down', async () => {
  const { proxy, images } = world();
  const image = images.small;
  const from = proxy.log.mark();
  expectSuccess(
    'skopeo copy by digest (upstream down)',
    await copyThroughProxy(REGISTRY, `@${image.manifest.digest}`, 'offline-by-digest'),
  );
  const lines = await expectPullLogged(proxy.log, REGISTRY, image, from);
  const manifest = lines.find(
    (line) => line.path === `/v2/${image.repository}/manifests/${image.manifest.digest}`,
  );
  expect(manifest?.['cache']).toBe('hit');
  expectBlobsFromCache(lines, image);
});

test('registries back: the tag is revalidated upstream, the blobs still come from the cache', async () => {
  const { proxy, images, registries } = world();
  const image = images.small;
  const started = performance.now();
  await Promise.all(registries.map((registry) => registry.start()));
  report('registries start', performance.now() - started);
  const from = proxy.log.mark();
  const counts = await countDuring(registries, async () => {
    expectSuccess('skopeo copy (upstream back)', await copyThroughProxy(REGISTRY, `:${image.tag}`, 'back'));
    await expectPullLogged(proxy.log, REGISTRY, image, from);
  });
  reportCounts('skopeo (upstream back)', [counts]);
  const tag = proxy.log
    .requests(REGISTRY, from)
    .find((line) => line.path === `/v2/${image.repository}/manifests/${image.tag}`);
  expect(tag?.['cache']).toBe('revalidated');
  expect(counts.blobGet).toBe(0);
  expect(counts.manifestHead).toBe(1);
});
