// The cache seen from outside: a blob pulled by skopeo and then by podman through the same
// pullthrough is fetched from the upstream registry once. The proxy's log says `cache: miss`, then
// `hit`; the registry's own log counts the upstream GETs.
import { expect, test } from 'vitest';
import { setupPodman } from './env/clients/podman.ts';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectPullLogged } from './env/expect-pull.ts';
import { servedRequests } from './env/registry.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const world = useWorld();

test('a layer pulled by skopeo and then podman is fetched upstream once', async () => {
  const { proxy, images, registries } = world();
  const image = images.small;
  const ref = `${REGISTRY}/${image.repository}:${image.tag}`;
  const blobPath = `/v2/${image.repository}/blobs/${image.layer.digest}`;
  const upstream = registries.find((registry) => registry.name === REGISTRY);
  if (upstream === undefined) throw new Error(`no ${REGISTRY} in the world`);
  const upstreamGets = (): number =>
    servedRequests(upstream).filter((r) => r.method === 'GET' && r.uri === blobPath).length;
  expect(upstreamGets()).toBe(0);

  const first = proxy.log.mark();
  expectSuccess(
    'skopeo copy (cold cache)',
    await skopeoCopy(world(), `docker://${ref}`, world().mkdir('cold'), {
      certDir: proxy.caCertDir,
      proxy: true,
    }),
  );
  await expectPullLogged(proxy.log, REGISTRY, image, first);
  expect((await proxy.log.waitForRequest(REGISTRY, 'GET', blobPath, { from: first }))['cache']).toBe('miss');

  const second = proxy.log.mark();
  const podman = setupPodman(world());
  expectSuccess(
    'podman pull (warm cache)',
    await podman.run(['pull', '--quiet', '--cert-dir', proxy.caCertDir, ref], { proxy: true }),
  );
  await expectPullLogged(proxy.log, REGISTRY, image, second);
  expect((await proxy.log.waitForRequest(REGISTRY, 'GET', blobPath, { from: second }))['cache']).toBe('hit');
  expect(upstreamGets()).toBe(1);
});
