// Operating it as a user would, with the real CLI against a running pullthrough: `pullthrough
// warm` fills the cache through the proxy, after which skopeo's pull costs the registry no blob
// GET; `pullthrough cache ls --json` then lists the image, and `cache purge` makes the next pull
// fetch it again.
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { NODE_FLAGS } from '../../src/node-flags.ts';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectBlobsFromCache, expectPullLogged } from './env/expect-pull.ts';
import { nodeBinary, REPO_ROOT } from './env/proxy.ts';
import { run, type RunResult } from './env/processes.ts';
import { servedRequests } from './env/registry.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const TOKEN = 'e2e-admin-token-0123456789';
const world = useWorld();

function pullthrough(args: readonly string[]): Promise<RunResult> {
  return run(nodeBinary(), [...NODE_FLAGS, join(REPO_ROOT, 'src', 'main.ts'), ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: world().home, PULLTHROUGH_ADMIN_TOKEN: TOKEN },
    timeoutMs: 60_000,
  });
}

test('warm, then a skopeo pull costs no upstream blob GET; cache ls lists it; purge refetches', async () => {
  const proxy = await world().startProxy('proxy-operate', { admin: { token: TOKEN } });
  const image = world().images.small;
  const ref = `${REGISTRY}/${image.repository}:${image.tag}`;
  const registry = world().registries.find((r) => r.name === REGISTRY);
  if (registry === undefined) throw new Error(`no ${REGISTRY} in the world`);
  const blobGets = () =>
    servedRequests(registry).filter((r) => r.method === 'GET' && r.uri.includes('/blobs/')).length;

  const warm = expectSuccess('pullthrough warm', await pullthrough(['warm', ref, '--proxy', proxy.url]));
  expect(warm.stdout).toMatch(/fetched/);
  const afterWarm = blobGets();
  expect(afterWarm).toBeGreaterThan(0);

  const from = proxy.log.mark();
  expectSuccess(
    'skopeo copy (warmed)',
    await skopeoCopy(world(), `docker://${ref}`, world().mkdir('warmed'), {
      certDir: proxy.caCertDir,
      proxy: proxy.url,
    }),
  );
  expectBlobsFromCache(await expectPullLogged(proxy.log, REGISTRY, image, from), image);
  expect(blobGets()).toBe(afterWarm);

  const ls = expectSuccess(
    'pullthrough cache ls --json',
    await pullthrough(['cache', 'ls', '--json', '--server', proxy.url]),
  );
  expect(ls.stdout).toContain(image.repository);
  expect(ls.stdout).toContain(image.manifest.digest);

  expectSuccess('pullthrough cache purge', await pullthrough(['cache', 'purge', ref, '--server', proxy.url]));
  const again = proxy.log.mark();
  expectSuccess(
    'skopeo copy (purged)',
    await skopeoCopy(world(), `docker://${ref}`, world().mkdir('purged'), {
      certDir: proxy.caCertDir,
      proxy: proxy.url,
    }),
  );
  const lines = await expectPullLogged(proxy.log, REGISTRY, image, again);
  const layer = lines.find((l) => l.method === 'GET' && l.path.endsWith(image.layer.digest));
  expect(layer?.['cache']).toBe('miss');
  expect(blobGets()).toBeGreaterThan(afterWarm);
});
