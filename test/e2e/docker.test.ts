// dockerd 20.10 pulls through pullthrough. dockerd treats every name on 127/8 as an insecure
// registry (TLS unverified), so the CA is tested on registry-v6.test, which is on ::1
// (real-clients.md §4). The proxy comes from dockerd's environment at start; the CA from
// /etc/docker/certs.d/registry-v6.test/, which dockerd re-reads on every pull.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { DOCKER_CERTS_D, startDockerd, type Dockerd } from './env/clients/dockerd.ts';
import { expectPullLogged } from './env/expect-pull.ts';
import { expectFailure, expectSuccess, report, useWorld } from './env/vitest.ts';
import { REGISTRY_V6 } from './env/world.ts';

const world = useWorld();
let dockerd: Dockerd | undefined;

async function daemon(): Promise<Dockerd> {
  if (dockerd === undefined) {
    const started = performance.now();
    dockerd = await startDockerd(world(), { proxy: true });
    report('dockerd start', performance.now() - started);
  }
  return dockerd;
}

const certsFile = join(DOCKER_CERTS_D, REGISTRY_V6, 'ca.crt');

test('dockerd runs with the proxy from its environment', async () => {
  const info = expectSuccess(
    'docker info',
    await (await daemon()).docker(['info', '--format', '{{.HTTPSProxy}}']),
  );
  expect(info.stdout.trim()).toBe(world().proxy.url);
});

test('docker pull fails with x509 when certs.d holds only the upstream CA', async () => {
  const { proxy, pki, images } = world();
  // The upstream CA alone would do for a direct pull; through the proxy the certificate is the proxy's.
  const remove = world().placeFile(certsFile, readFileSync(pki.caCrt));
  try {
    const from = proxy.log.mark();
    const ref = `${REGISTRY_V6}/${images.small.repository}:${images.small.tag}`;
    const output = expectFailure(
      'docker pull (proxy CA not trusted)',
      await (await daemon()).docker(['pull', ref]),
    );
    expect(output).toMatch(/x509: certificate signed by unknown authority/);
    await proxy.log.waitForLine(
      (line) =>
        line.msg === 'tls handshake failed' && String(line['destination']).startsWith(`${REGISTRY_V6}:`),
      { from },
    );
    expect(proxy.log.requests(REGISTRY_V6, from)).toEqual([]);
  } finally {
    remove();
  }
});

test('docker pull through the proxy with its CA in certs.d', async () => {
  const { proxy, images } = world();
  const remove = world().placeFile(certsFile, readFileSync(proxy.caCrt));
  try {
    const from = proxy.log.mark();
    const ref = `${REGISTRY_V6}/${images.small.repository}:${images.small.tag}`;
    const docker = await daemon();
    expectSuccess('docker pull', await docker.docker(['pull', '--quiet', ref]));
    await expectPullLogged(proxy.log, REGISTRY_V6, images.small, from);
    const digests = expectSuccess(
      'docker image inspect',
      await docker.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]),
    );
    expect(JSON.parse(digests.stdout)).toContain(
      `${REGISTRY_V6}/${images.small.repository}@${images.small.manifest.digest}`,
    );
  } finally {
    remove();
  }
});
