// skopeo (containers/image 5.23) through pullthrough: inspect and copy succeed with the proxy's CA
// trusted, the copied layer hashes to its digest, and the proxy's log shows every fetch. Trusting
// only the upstream CA (enough for a direct pull) fails: the registry's certificate came from the proxy.
// A repository the proxy denies (registries[].deny) fails in skopeo and podman with its message.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { setupPodman } from './env/clients/podman.ts';
import { skopeo, skopeoCopy } from './env/clients/skopeo.ts';
import { expectPullLogged } from './env/expect-pull.ts';
import { servedRequests } from './env/registry.ts';
import { expectFailure, expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const world = useWorld();

test('skopeo inspect through the proxy with its CA trusted', async () => {
  const { proxy, images } = world();
  const from = proxy.log.mark();
  const ref = `docker://${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  const result = expectSuccess(
    'skopeo inspect',
    await skopeo(world(), ['inspect', '--no-creds', '--cert-dir', proxy.caCertDir, ref], { proxy: true }),
  );
  const inspected = JSON.parse(result.stdout) as { Digest: string; Layers: string[] };
  expect(inspected.Digest).toBe(images.small.manifest.digest);
  expect(inspected.Layers).toEqual([images.small.layer.digest]);
  const manifest = await proxy.log.waitForRequest(
    REGISTRY,
    'GET',
    `/v2/${images.small.repository}/manifests/${images.small.tag}`,
    { from },
  );
  expect(manifest.status).toBe(200);
});

test('skopeo copy through the proxy: the layer arrives intact', async () => {
  const { proxy, images } = world();
  const from = proxy.log.mark();
  const dest = world().mkdir('skopeo-copy');
  const ref = `docker://${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  expectSuccess(
    'skopeo copy',
    await skopeoCopy(world(), ref, dest, { certDir: proxy.caCertDir, proxy: true }),
  );
  // The dir: transport names each blob by its hex digest.
  const layer = readFileSync(join(dest, images.small.layer.digest.slice('sha256:'.length)));
  expect(`sha256:${createHash('sha256').update(layer).digest('hex')}`).toBe(images.small.layer.digest);
  expect(layer.length).toBe(images.small.layer.size);
  await expectPullLogged(proxy.log, REGISTRY, images.small, from);
});

test('skopeo copy through the proxy fails with x509 when only the upstream CA is trusted', async () => {
  const { proxy, images, pki } = world();
  const from = proxy.log.mark();
  const ref = `docker://${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  // pki.caCertDir holds the upstream CA alone: a direct pull would succeed with it.
  const output = expectFailure(
    'skopeo copy (proxy CA not trusted)',
    await skopeoCopy(world(), ref, world().mkdir('skopeo-untrusted'), {
      certDir: pki.caCertDir,
      proxy: true,
    }),
  );
  expect(output).toMatch(/x509: certificate signed by unknown authority/);
  // And the handshake it refused was the proxy's.
  await proxy.log.waitForLine(
    (line) => line.msg === 'tls handshake failed' && String(line['destination']).startsWith(`${REGISTRY}:`),
    { from },
  );
  expect(proxy.log.requests(REGISTRY, from)).toEqual([]);
});

test('a denied repository: skopeo and podman show the DENIED message, nothing is fetched upstream', async () => {
  const { images, registries } = world();
  const image = images.small;
  const proxy = await world().startProxy('proxy-deny', {
    registries: [{ host: REGISTRY, deny: ['e2e/sm*'] }],
  });
  const registry = registries.find((r) => r.name === REGISTRY);
  if (registry === undefined) throw new Error(`no ${REGISTRY} in the world`);
  const before = await registry.mark();
  const from = proxy.log.mark();
  const message = `repository ${image.repository} is denied by this proxy (registries[${REGISTRY}].deny: "e2e/sm*")`;

  const ref = `${REGISTRY}/${image.repository}:${image.tag}`;
  const inspected = expectFailure(
    'skopeo inspect (denied repository)',
    await skopeo(world(), ['inspect', '--no-creds', '--cert-dir', proxy.caCertDir, `docker://${ref}`], {
      proxy: proxy.url,
    }),
  );
  // skopeo logs through logrus, which escapes the quotes of the message.
  expect(inspected.replaceAll('\\"', '"')).toContain(`denied: ${message}`);
  const pulled = expectFailure(
    'podman pull (denied repository)',
    await setupPodman(world(), { name: 'podman-deny' }).run(
      ['pull', '--quiet', '--cert-dir', proxy.caCertDir, ref],
      { proxy: proxy.url },
    ),
  );
  expect(pulled.replaceAll('\\"', '"')).toContain(`denied: ${message}`);
  for (const [client, output] of [
    ['skopeo', inspected],
    ['podman', pulled],
  ] as const) {
    console.info(`[e2e] denied | ${client} | ${output.split('\n').find((l) => l.includes('denied:')) ?? ''}`);
  }

  const line = await proxy.log.waitForRequest(
    REGISTRY,
    'GET',
    `/v2/${image.repository}/manifests/${image.tag}`,
    {
      from,
    },
  );
  expect(line).toMatchObject({ status: 403, code: 'DENIED' });
  await registry.mark();
  const upstream = servedRequests(registry)
    .slice(before)
    .filter((r) => r.uri.includes(image.repository));
  expect(upstream).toEqual([]);
});
