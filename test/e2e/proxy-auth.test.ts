// Proxy authentication (issue #4: "docker and podman work with proxy credentials in
// HTTPS_PROXY=http://user:pass@host:3128"). The proxy requires one user (`proxy.htpasswd`, bcrypt),
// and every client is given it in its proxy URL: podman, ctr and skopeo in their own environment,
// dockerd in its environment at start. Go sends the URL's userinfo as `Proxy-Authorization: Basic`
// on each CONNECT. Without credentials the proxy answers 407 (Go prints the status text, "Proxy
// Authentication Required"); with a wrong password too, and it logs `proxy authentication failed`.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { startContainerd } from './env/clients/containerd.ts';
import { DOCKER_CERTS_D, startDockerd } from './env/clients/dockerd.ts';
import { setupPodman } from './env/clients/podman.ts';
import { skopeo } from './env/clients/skopeo.ts';
import { expectPullLogged } from './env/expect-pull.ts';
import type { LogLine, ProxyCredentials } from './env/proxy.ts';
import { expectFailure, expectSuccess, report, useWorld } from './env/vitest.ts';
import { REGISTRY, REGISTRY_V6 } from './env/world.ts';

// The password holds characters that must be percent-encoded in a URL: every client has to
// decode the userinfo before it builds the Basic header, or the proxy refuses it.
const USER = 'e2e-proxy';
const PASSWORD = 'pr0xy s3cret/@:%';
const WRONG: ProxyCredentials = { user: USER, password: 'not-the-password' };

const world = useWorld({ proxyAuth: { user: USER, password: PASSWORD } });

const CHALLENGE = 'Basic realm="pullthrough", charset="UTF-8"';
const FAILED = 'proxy authentication failed';
const basic = ({ user, password }: ProxyCredentials): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const isFailure = (line: LogLine): boolean => line.msg === FAILED;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
}

/** One request straight to the proxy (CONNECT, absolute-form or origin-form), as a client sends it. */
async function askProxy(method: string, path: string, authorization?: string): Promise<Answer> {
  const req = request({
    host: '127.0.0.1',
    port: world().proxy.port,
    method,
    path,
    agent: false,
    headers: authorization === undefined ? {} : { 'proxy-authorization': authorization },
  });
  req.end();
  if (method === 'CONNECT') {
    // Node hands every answer to a CONNECT, whatever its status, to 'connect'.
    const [res, socket] = (await once(req, 'connect')) as [IncomingMessage, Socket];
    socket.destroy();
    return { status: res.statusCode ?? 0, headers: res.headers };
  }
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.resume();
  await once(res, 'end');
  return { status: res.statusCode ?? 0, headers: res.headers };
}

test('the proxy asks for credentials: 407 with its Basic challenge; its own pages stay open', async () => {
  const { proxy } = world();
  const on = await proxy.log.waitForLine((line) => line.msg === 'proxy authentication on');
  expect(on['users']).toBe(1);
  const from = proxy.log.mark();
  for (const [method, path] of [
    ['CONNECT', `${REGISTRY}:443`],
    ['GET', `http://${REGISTRY}/v2/`],
  ] as const) {
    const answer = await askProxy(method, path);
    expect(answer.status, `${method} ${path}`).toBe(407);
    expect(answer.headers['proxy-authenticate'], `${method} ${path}`).toBe(CHALLENGE);
  }
  expect((await askProxy('GET', '/healthz')).status).toBe(200);
  expect((await askProxy('GET', '/ca.crt')).status).toBe(200);
  // A wrong password and an unknown user are refused alike, and logged.
  for (const credentials of [WRONG, { user: 'nobody', password: PASSWORD }]) {
    const mark = proxy.log.mark();
    const answer = await askProxy('CONNECT', `${REGISTRY}:443`, basic(credentials));
    expect(answer.status, credentials.user).toBe(407);
    expect(answer.headers['proxy-authenticate']).toBe(CHALLENGE);
    expect((await proxy.log.waitForLine(isFailure, { from: mark }))['client']).toBe('127.0.0.1');
  }
  // The right ones open the tunnel.
  expect(
    (await askProxy('CONNECT', `${REGISTRY}:443`, basic({ user: USER, password: PASSWORD }))).status,
  ).toBe(200);
  expect(proxy.log.lines.slice(from).filter(isFailure)).toHaveLength(2);
  expect(proxy.log.requests(REGISTRY, from)).toEqual([]);
});

test('skopeo with HTTPS_PROXY but no credentials in it fails: 407', async () => {
  const { proxy, images } = world();
  const from = proxy.log.mark();
  const ref = `docker://${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  const output = expectFailure(
    'skopeo inspect (no proxy credentials)',
    await skopeo(world(), ['inspect', '--no-creds', '--cert-dir', proxy.caCertDir, ref], {
      proxy: proxy.urlWith(undefined),
    }),
  );
  // Go's CONNECT turns a non-200 answer into an error holding the status text.
  expect(output).toMatch(/Proxy Authentication Required/);
  // Asked for credentials, not refused for wrong ones: nothing logged, nothing reached the registry.
  expect(proxy.log.lines.slice(from).filter(isFailure)).toEqual([]);
  expect(proxy.log.requests(REGISTRY, from)).toEqual([]);
});

test('skopeo and podman with a wrong password in HTTPS_PROXY fail, and the proxy logs it', async () => {
  const { proxy, images } = world();
  const wrongUrl = proxy.urlWith(WRONG);
  const ref = `${REGISTRY}/${images.small.repository}:${images.small.tag}`;

  let from = proxy.log.mark();
  const skopeoOutput = expectFailure(
    'skopeo inspect (wrong proxy password)',
    await skopeo(world(), ['inspect', '--no-creds', '--cert-dir', proxy.caCertDir, `docker://${ref}`], {
      proxy: wrongUrl,
    }),
  );
  expect(skopeoOutput).toMatch(/Proxy Authentication Required/);
  expect((await proxy.log.waitForLine(isFailure, { from }))['client']).toBe('127.0.0.1');
  expect(proxy.log.requests(REGISTRY, from)).toEqual([]);

  from = proxy.log.mark();
  const podman = setupPodman(world());
  const podmanOutput = expectFailure(
    'podman pull (wrong proxy password)',
    await podman.run(['pull', '--quiet', '--cert-dir', proxy.caCertDir, ref], { proxy: wrongUrl }),
  );
  expect(podmanOutput).toMatch(/Proxy Authentication Required/);
  await proxy.log.waitForLine(isFailure, { from });
  expect(proxy.log.requests(REGISTRY, from)).toEqual([]);
  // Podman may try more than once, and each refusal is logged before it is sent. One more refusal
  // of our own, awaited in the log, means every line of podman's is read too: none can show up
  // after the next test's mark (that made "podman pull with the credentials" fail once in CI).
  const sync = 'log-sync.invalid:443';
  expect((await askProxy('CONNECT', sync, basic(WRONG))).status).toBe(407);
  await proxy.log.waitForLine((line) => isFailure(line) && line['target'] === sync, { from });
});

test('podman pull with the credentials in HTTPS_PROXY', async () => {
  const { proxy, images } = world();
  const podman = setupPodman(world());
  const from = proxy.log.mark();
  const ref = `${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  expectSuccess(
    'podman pull',
    await podman.run(['pull', '--quiet', '--cert-dir', proxy.caCertDir, ref], { proxy: true }),
  );
  await expectPullLogged(proxy.log, REGISTRY, images.small, from);
  expect(proxy.log.lines.slice(from).filter(isFailure)).toEqual([]);
  const inspect = expectSuccess(
    'podman image inspect',
    await podman.run(['image', 'inspect', '--format', '{{.Digest}}', ref], { proxy: false }),
  );
  expect(inspect.stdout.trim()).toBe(images.small.manifest.digest);
});

test('docker pull, dockerd started with the credentials in HTTPS_PROXY', async () => {
  const { proxy, images } = world();
  const started = performance.now();
  const dockerd = await startDockerd(world(), { proxy: true });
  report('dockerd start', performance.now() - started);
  const info = expectSuccess('docker info', await dockerd.docker(['info', '--format', '{{.HTTPSProxy}}']));
  // dockerd shows its proxy with the user and the password masked.
  expect(info.stdout.trim()).toBe(proxy.urlWith(undefined).replace('//', '//xxxxx:xxxxx@'));
  // registry-v6.test: the name dockerd verifies TLS for, so the proxy's CA must be trusted.
  const remove = world().placeFile(join(DOCKER_CERTS_D, REGISTRY_V6, 'ca.crt'), readFileSync(proxy.caCrt));
  try {
    const from = proxy.log.mark();
    const ref = `${REGISTRY_V6}/${images.small.repository}:${images.small.tag}`;
    expectSuccess('docker pull', await dockerd.docker(['pull', '--quiet', ref]));
    await expectPullLogged(proxy.log, REGISTRY_V6, images.small, from);
    expect(proxy.log.lines.slice(from).filter(isFailure)).toEqual([]);
  } finally {
    remove();
  }
});

test('ctr images pull with the credentials in HTTPS_PROXY', async () => {
  const { proxy, images } = world();
  const containerd = await startContainerd(world());
  const from = proxy.log.mark();
  const ref = `${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  // containerd 1.6: ctr fetches in its own process, so HTTPS_PROXY is ctr's.
  expectSuccess(
    'ctr images pull',
    await containerd.ctr(['images', 'pull', '--tlscacert', proxy.caCrt, ref], { proxy: true }),
  );
  await expectPullLogged(proxy.log, REGISTRY, images.small, from);
  expect(proxy.log.lines.slice(from).filter(isFailure)).toEqual([]);
});

test('the proxy never logs a password or a Proxy-Authorization value', () => {
  const { proxy } = world();
  const logged = [
    readFileSync(proxy.daemon.logFile, 'utf8'),
    ...proxy.log.lines.map((line) => JSON.stringify(line)),
  ].join('\n');
  for (const secret of [
    PASSWORD,
    encodeURIComponent(PASSWORD),
    WRONG.password,
    basic({ user: USER, password: PASSWORD }).slice('Basic '.length),
    basic(WRONG).slice('Basic '.length),
  ]) {
    expect(logged).not.toContain(secret);
  }
});
