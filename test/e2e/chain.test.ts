// registries[].mirrors with a real client (issue 19): pullthrough intercepts registry.test with
// the mirrors [origin.test:5999 (nothing listens there), registry-v6.test (a second registry on
// the same storage)]. skopeo pulls registry.test/e2e/small:v1 through it: the tag is resolved at
// registry.test, which serves no blob; the config and the layer come from registry-v6.test, each
// registry's own log says so, and pullthrough logs the down mirror once.
import { expect, test } from 'vitest';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectPullLogged } from './env/expect-pull.ts';
import { countUpstream, marks, reportCounts, servedBetween } from './env/upstream-counts.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { ORIGIN, REGISTRY, REGISTRY_V6 } from './env/world.ts';

const world = useWorld({ proxy: false });

test('skopeo pulls through a mirror chain: blobs from the second mirror, the tag from the registry', async () => {
  const w = world();
  const image = w.images.small;
  const down = `${ORIGIN}:5999`;
  const proxy = await w.startProxy('proxy-chain', {
    registries: [{ host: REGISTRY, mirrors: [down, REGISTRY_V6] }, REGISTRY_V6],
  });
  const registry = w.registries.find((r) => r.name === REGISTRY);
  const mirror = w.registries.find((r) => r.name === REGISTRY_V6);
  if (!registry || !mirror) throw new Error('the world has no registry.test or registry-v6.test');

  const from = proxy.log.mark();
  const before = await marks([registry, mirror]);
  expectSuccess(
    'skopeo copy through the chain',
    await skopeoCopy(w, `docker://${REGISTRY}/${image.repository}:${image.tag}`, w.mkdir('chain'), {
      certDir: proxy.caCertDir,
      proxy: proxy.url,
    }),
  );
  await expectPullLogged(proxy.log, REGISTRY, image, from);
  const after = await marks([registry, mirror]);
  const atRegistry = countUpstream(servedBetween([registry], before.slice(0, 1), after.slice(0, 1)));
  const atMirror = countUpstream(servedBetween([mirror], before.slice(1), after.slice(1)));
  reportCounts(`skopeo: ${REGISTRY}`, [atRegistry]);
  reportCounts(`skopeo: ${REGISTRY_V6} (mirror)`, [atMirror]);

  // registry.test resolved the tag and answered who may read each blob (HEADs): no blob GET.
  expect(atRegistry.blobGet).toBe(0);
  expect(atRegistry.manifestGetByTag).toBe(1);
  // registry-v6.test, the mirror, served the config and the layer, and nothing else.
  const base = `/v2/${image.repository}/blobs`;
  expect(atMirror.requests.map((r) => `${r.method} ${r.uri}`).sort()).toEqual(
    [`GET ${base}/${image.config.digest}`, `GET ${base}/${image.layer.digest}`].sort(),
  );
  const failing = await proxy.log.waitForLine((l) => l.msg === 'mirror failing: skipped for a while', {
    from,
  });
  expect(failing).toMatchObject({ mirror: down, reason: 'unreachable' });
  const layer = await proxy.log.waitForRequest(REGISTRY, 'GET', `${base}/${image.layer.digest}`, { from });
  expect(layer).toMatchObject({ cache: 'miss', source: `${REGISTRY_V6}:443` });
});
