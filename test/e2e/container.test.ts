// The shipped image, run as users run it: `npm run image` builds pullthrough:dev (with podman
// here); the container runs with --network host, named volumes for /ca and /cache, and a mounted
// config.yaml that trusts the world's upstream CA. skopeo, trusting the CA the container serves,
// pulls an image through it twice: the second time every blob is a `cache: hit` in the
// container's own log and the registry serves no blob. `podman stop` (SIGTERM) ends it with exit
// 0 well within the drain timeout. Around it, the deployments meet the real image: a volume at
// /docker_mirror_cache becomes the cache, deploy/compose.yaml comes up with podman-compose and
// turns healthy, and the StatefulSet's init container puts a Secret's CA where the proxy uses it.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { IMAGE_CONTRACT } from '../helpers/image-contract.ts';
import { freePort, IMAGE, podman, startContainer, type ContainerProxy } from './env/clients/container.ts';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectBlobsFromCache, expectPullLogged } from './env/expect-pull.ts';
import { failure, run, runOk } from './env/processes.ts';
import { REPO_ROOT } from './env/proxy.ts';
import { servedRequests } from './env/registry.ts';
import { expectSuccess, report, useWorld } from './env/vitest.ts';
import { poll } from './env/wait.ts';
import { REGISTRY, REGISTRY_V6 } from './env/world.ts';

// Built before the world starts: a world that finds no /var/lib/containers removes it at stop,
// and the image and its base must stay there for the next run (the base is reused by its hash).
beforeAll(async () => {
  const result = await run('npm', ['run', 'image', '--', '--engine', 'podman'], {
    env: process.env,
    cwd: REPO_ROOT,
    timeoutMs: 600_000,
  });
  report('npm run image', result.ms);
  if (result.code !== 0) throw new Error(`${failure(result)}\n${result.stdout.slice(-4000)}`);
  const summary = /^image: built .*$/m.exec(result.stdout)?.[0];
  console.info(`[e2e] ${summary ?? 'image: (no summary line)'}`);
}, 600_000);

const world = useWorld({ proxy: false });
let container: ContainerProxy | undefined;

async function proxy(): Promise<ContainerProxy> {
  if (container !== undefined) return container;
  const dir = world().mkdir('container');
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `registries: [${REGISTRY}, ${REGISTRY_V6}]`,
      'upstream: { caFiles: [/etc/pullthrough/upstream-ca.crt] }',
      `shutdownTimeout: ${IMAGE_CONTRACT.drainSeconds}s`,
      '',
    ].join('\n'),
  );
  const started = performance.now();
  container = await startContainer(world(), {
    name: 'pullthrough-e2e',
    volumes: { cache: IMAGE_CONTRACT.cacheDir },
    files: { [config]: IMAGE_CONTRACT.configFile, [world().pki.caCrt]: '/etc/pullthrough/upstream-ca.crt' },
  });
  report('container start', performance.now() - started);
  return container;
}

test('the image is what the deployments expect: uid, port, volumes, health check', async () => {
  const inspect = await podman(world(), ['image', 'inspect', IMAGE]);
  if (inspect.code !== 0) throw new Error(failure(inspect));
  const [image] = JSON.parse(inspect.stdout) as [
    { Config: Record<string, unknown>; Healthcheck?: { Test: string[] }; Size: number },
  ];
  const { uid, gid, port, caDir, cacheDir } = IMAGE_CONTRACT;
  expect(image.Config['User']).toBe(`${uid}:${gid}`);
  expect(Object.keys(image.Config['ExposedPorts'] as object)).toEqual([`${port}/tcp`]);
  expect(Object.keys(image.Config['Volumes'] as object).sort()).toEqual([caDir, cacheDir]);
  expect(image.Healthcheck?.Test).toEqual(['CMD', 'node', '/app/healthcheck.js']);
  expect(image.Config['Cmd']).toEqual(['serve', '--config', IMAGE_CONTRACT.configFile]);
  console.info(`[e2e] image size: ${(image.Size / 1e6).toFixed(0)} MB`);
});

test('skopeo pulls through the container twice, the second time from its cache', async () => {
  const { images, registries } = world();
  const image = images.small;
  const pt = await proxy();
  expect(pt.port).not.toBe(IMAGE_CONTRACT.port);
  // The health check finds the port from PULLTHROUGH_LISTEN, not the image's 3128.
  expectSuccess('podman healthcheck run', await podman(world(), ['healthcheck', 'run', pt.name]));

  const upstream = registries.find((registry) => registry.name === REGISTRY);
  if (upstream === undefined) throw new Error(`no ${REGISTRY} in the world`);
  const blobGets = (): number =>
    servedRequests(upstream).filter((r) => r.method === 'GET' && r.uri.includes('/blobs/')).length;
  const ref = `docker://${REGISTRY}/${image.repository}:${image.tag}`;
  const options = { certDir: pt.caCertDir, proxy: pt.url };

  const first = pt.log.mark();
  expectSuccess(
    'skopeo copy via the container (cold)',
    await skopeoCopy(world(), ref, world().mkdir('cold'), options),
  );
  const layerPath = `/v2/${image.repository}/blobs/${image.layer.digest}`;
  await expectPullLogged(pt.log, REGISTRY, image, first);
  expect((await pt.log.waitForRequest(REGISTRY, 'GET', layerPath, { from: first }))['cache']).toBe('miss');
  await upstream.mark();
  const coldGets = blobGets();
  expect(coldGets).toBe(2); // config and layer

  const second = pt.log.mark();
  const dest = world().mkdir('warm');
  expectSuccess('skopeo copy via the container (cached)', await skopeoCopy(world(), ref, dest, options));
  const lines = await expectPullLogged(pt.log, REGISTRY, image, second);
  console.info(`[e2e] second pull: ${expectBlobsFromCache(lines, image)}`);
  await upstream.mark();
  expect(blobGets()).toBe(coldGets);
  // What skopeo wrote is the layer itself (dir: names each blob by its hex digest).
  const layerFile = join(dest, image.layer.digest.replace('sha256:', ''));
  expect(`sha256:${createHash('sha256').update(readFileSync(layerFile)).digest('hex')}`).toBe(
    image.layer.digest,
  );
});

test('`pullthrough ca export` in the running container prints the CA it serves', async () => {
  const pt = await proxy();
  const exported = expectSuccess(
    'podman exec pullthrough ca export',
    await podman(world(), ['exec', pt.name, 'pullthrough', 'ca', 'export']),
  );
  expect(exported.stdout).toBe(readFileSync(join(pt.caCertDir, 'ca.crt'), 'utf8'));
});

test('podman stop (SIGTERM) drains and exits 0 within the drain timeout', async () => {
  const pt = await proxy();
  const from = pt.log.mark();
  const { ms, exit, exitCode } = await pt.stop(3 * IMAGE_CONTRACT.drainSeconds);
  report('podman stop', ms);
  expect(exitCode).toBe(0);
  expect(exit).toEqual({ code: 0, signal: null });
  expect(ms).toBeLessThan(IMAGE_CONTRACT.drainSeconds * 1000);
  const shutdown = await pt.log.waitForLine((line) => line.msg === 'shutting down', { from });
  expect(shutdown['signal']).toBe('SIGTERM');
  await pt.log.waitForLine((line) => line.msg === 'stopped', { from });
});

test('a volume mounted at /docker_mirror_cache (rpardini) becomes the cache', async () => {
  const started = performance.now();
  const pt = await startContainer(world(), {
    name: 'pullthrough-e2e-rpardini',
    volumes: { mirror: '/docker_mirror_cache' },
  });
  report('container start (rpardini volume)', performance.now() - started);
  const ready = await pt.log.waitForLine((line) => line.msg === 'cache ready');
  expect(ready['dir']).toBe('/docker_mirror_cache');
  expect((await pt.stop(3 * IMAGE_CONTRACT.drainSeconds)).exitCode).toBe(0);
});

test('deploy/compose.yaml comes up with podman-compose and turns healthy', async () => {
  const project = 'pullthrough-e2e-compose';
  const dir = world().mkdir('compose');
  // Only for these machines: podman's default rlimits need CAP_SYS_RESOURCE (real-clients.md §6).
  const override = join(dir, 'ulimits.yaml');
  writeFileSync(
    override,
    'services:\n  pullthrough:\n    ulimits:\n      nofile: 20000\n      nproc: 32768\n',
  );
  const port = await freePort();
  const env = { ...world().clientEnv({ proxy: false }), PULLTHROUGH_HOST_PORT: String(port) };
  const compose = (args: readonly string[]) =>
    runOk(
      'podman-compose',
      ['-p', project, '-f', join(REPO_ROOT, 'deploy', 'compose.yaml'), '-f', override, ...args],
      {
        env,
        cwd: dir,
        timeoutMs: 120_000,
      },
    );
  const down = async (): Promise<void> => {
    await compose(['down']).catch(() => undefined);
    await podman(world(), ['network', 'rm', '--force', `${project}_default`]);
    for (const volume of ['pullthrough-ca', 'pullthrough-cache'])
      await podman(world(), ['volume', 'rm', '--force', `${project}_${volume}`]);
  };
  await down(); // what a crashed run left
  world().defer(down);
  report('podman-compose up', (await compose(['up', '-d'])).ms);
  const url = `http://127.0.0.1:${port}`;
  const health = await poll(
    async () => {
      const response = await fetch(`${url}/healthz`);
      return response.ok ? await response.text() : undefined;
    },
    { what: `${url}/healthz through the published port`, timeoutMs: 30_000, intervalMs: 200 },
  );
  expect(health).toBe('ok\n');
  expect(await (await fetch(`${url}/ca.crt`)).text()).toMatch(/^-----BEGIN CERTIFICATE-----/);
  const container = `${project}_pullthrough_1`;
  expectSuccess('podman healthcheck run (compose)', await podman(world(), ['healthcheck', 'run', container]));
  const mounts = await podman(world(), [
    'inspect',
    '--format',
    '{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}',
    container,
  ]);
  expect(mounts.stdout.trim().split(' ').sort()).toEqual([
    `${project}_pullthrough-ca:${IMAGE_CONTRACT.caDir}`,
    `${project}_pullthrough-cache:${IMAGE_CONTRACT.cacheDir}`,
  ]);
  const started = performance.now();
  await compose(['down']);
  report('podman-compose down', performance.now() - started);
});

const kubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;

test.skipIf(!kubectl)(
  `the StatefulSet's init container puts the pullthrough-ca Secret on the CA volume${kubectl ? '' : ' (skipped: kubectl is not installed)'}`,
  async () => {
    const rendered = await runOk('kubectl', ['kustomize', join(REPO_ROOT, 'deploy', 'kubernetes')], {
      env: process.env,
    });
    const sts = parseAllDocuments(rendered.stdout)
      .map(
        (doc) =>
          doc.toJS() as {
            kind: string;
            spec: { template: { spec: { initContainers: { command: string[] }[] } } };
          },
      )
      .find((object) => object.kind === 'StatefulSet');
    const [command, ...args] = sts?.spec.template.spec.initContainers[0]?.command ?? [];
    if (command === undefined) throw new Error('no init container command');
    // The Secret as kubelet mounts it: a directory of its keys (here a CA made with openssl).
    const secret = world().mkdir('ca-secret');
    await runOk(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/CN=pullthrough e2e secret CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-keyout',
        join(secret, 'ca.key'),
        '-out',
        join(secret, 'ca.crt'),
      ],
      { env: process.env },
    );
    chmodSync(join(secret, 'ca.key'), 0o644); // as kubelet's defaultMode 0440 + fsGroup lets uid 1000 read it
    const pt = await startContainer(world(), {
      name: 'pullthrough-e2e-k8s',
      volumes: { cache: IMAGE_CONTRACT.cacheDir },
      async prepare(volume) {
        // A rotation left on the claim that the Secret no longer has must go.
        const run = (script: string[]) =>
          runOk(
            'podman',
            [
              'run',
              '--rm',
              '--read-only',
              '--ulimit',
              'nofile=20000:20000',
              '--ulimit',
              'nproc=32768:32768',
              '--user',
              `${IMAGE_CONTRACT.uid}:${IMAGE_CONTRACT.gid}`,
              '-v',
              `${volume('ca')}:/ca`,
              '-v',
              `${secret}:/secret:ro`,
              '--entrypoint',
              script[0]!,
              IMAGE,
              ...script.slice(1),
            ],
            { env: world().clientEnv({ proxy: false }) },
          );
        await run(['sh', '-c', 'echo stale > /ca/previous.crt']);
        const init = await run([command, ...args]);
        expect(init.stdout).toContain('CA from Secret pullthrough-ca');
        const listing = await run(['sh', '-c', 'ls /ca && stat -c %a /ca/ca.key']);
        expect(listing.stdout.trim().split('\n')).toEqual(['ca.crt', 'ca.key', '600']);
      },
    });
    expect(readFileSync(join(pt.caCertDir, 'ca.crt'), 'utf8')).toBe(
      readFileSync(join(secret, 'ca.crt'), 'utf8'),
    );
    expect((await pt.stop(3 * IMAGE_CONTRACT.drainSeconds)).exitCode).toBe(0);
  },
);
