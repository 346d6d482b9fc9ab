// Private content stays private behind the cache (issue #4, "safe to share"). The upstream is a
// distribution registry with token auth whose token server lives on another intercepted host,
// as Docker Hub's does: anyone gets a pull token for public/*, only e2e/e2e-secret for the rest;
// anonymous callers and wrong passwords get a token that grants nothing (token-server.ts).
// podman pulls private/app with the right credentials and the proxy caches it; after that no
// anonymous client (skopeo --no-creds, a bare GET of the cached layer, a GET carrying an anonymous
// token) and no wrong password gets it, while public/app is served to anyone, from the cache.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { expect, test } from 'vitest';
import { setupPodman } from './env/clients/podman.ts';
import { skopeo, skopeoCopy } from './env/clients/skopeo.ts';
import { expectBlobsFromCache, expectPullLogged } from './env/expect-pull.ts';
import type { TestImage } from './env/image.ts';
import { isRequest, sameHost, type RequestLine } from './env/proxy.ts';
import type { TokenIssue } from './env/token-server.ts';
import { countDuring, reportCounts } from './env/upstream-counts.ts';
import { expectFailure, expectSuccess, useWorld } from './env/vitest.ts';
import { AUTH, TOKEN_REGISTRY } from './env/world.ts';

const world = useWorld({
  tokenAuth: {
    images: {
      private: { repository: 'private/app', tag: 'v1', file: 'private.bin', size: 1 << 20 },
      public: { repository: 'public/app', tag: 'v1', file: 'public.bin', size: 1 << 20 },
    },
  },
});

const ref = (image: TestImage): string => `${TOKEN_REGISTRY}/${image.repository}:${image.tag}`;
const blobPath = (image: TestImage, digest = image.layer.digest): string =>
  `/v2/${image.repository}/blobs/${digest}`;

/**
 * Where the proxy keeps a verified blob, and its mark that upstream served this digest of
 * `image`'s repository to an anonymous request: public/<2 hex>/<sha256 of "HOST:PORT\0REPO\0DIGEST">
 * (src/cache/layout.ts, public-marks.ts).
 */
function cachePaths(image: TestImage, digest: string): { blob: string; publicMark: string } {
  const hex = digest.slice('sha256:'.length);
  const mark = createHash('sha256')
    .update(`${TOKEN_REGISTRY}:443\0${image.repository}\0${digest}`)
    .digest('hex');
  const { cacheDir } = world().proxy;
  return {
    blob: join(cacheDir, 'blobs', 'sha256', hex.slice(0, 2), hex),
    publicMark: join(cacheDir, 'public', mark.slice(0, 2), mark),
  };
}

/** The token server's answers to requests for `repository` since index `from`. */
function issuedFor(repository: string, from: number): TokenIssue[] {
  return world()
    .tokenAuth.server.issued.slice(from)
    .filter((issue) => issue.scopes.some((scope) => scope.startsWith(`repository:${repository}:`)));
}

/** The proxy's line for a token request to AUTH (it intercepts the token server, too). */
function tokenLines(from: number): RequestLine[] {
  return world()
    .proxy.log.lines.slice(from)
    .filter(
      (line): line is RequestLine =>
        isRequest(line) && sameHost(line.host, AUTH) && line.path.startsWith('/token?'),
    );
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One GET through the proxy as any HTTPS client does it: CONNECT, TLS trusting only the proxy's
 * CA (so the answer can only have come from the proxy), then the request.
 */
async function getThroughProxy(host: string, path: string, authorization?: string): Promise<Answer> {
  const { proxy } = world();
  const tunnel = request({
    host: '127.0.0.1',
    port: proxy.port,
    method: 'CONNECT',
    path: `${host}:443`,
    agent: false,
  });
  tunnel.end();
  const [connected, socket] = (await once(tunnel, 'connect')) as [IncomingMessage, Socket];
  expect(connected.statusCode).toBe(200);
  const tls = connect({ socket, servername: host, ca: readFileSync(proxy.caCrt, 'utf8') });
  await once(tls, 'secureConnect');
  const req = request({
    host,
    path,
    headers: authorization === undefined ? {} : { authorization },
    // No `agent`: with one (even `agent: false`), Node would open its own connection.
    createConnection: () => tls,
  });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  tls.destroy();
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

/** A token fetched from AUTH through the proxy, with or without Basic credentials. */
async function tokenThroughProxy(repository: string, basic?: string): Promise<string> {
  const { tokenAuth } = world();
  const query = new URLSearchParams({
    service: tokenAuth.server.service,
    scope: `repository:${repository}:pull`,
  });
  const answer = await getThroughProxy(
    AUTH,
    `/token?${query.toString()}`,
    basic === undefined ? undefined : `Basic ${Buffer.from(basic).toString('base64')}`,
  );
  expect(answer.status).toBe(200);
  return (JSON.parse(answer.body.toString('utf8')) as { token: string }).token;
}

/** An anonymous-looking GET of a cached private blob: 401 with the upstream's challenge, no bytes. */
async function expectRefused(image: TestImage, digest: string, authorization?: string): Promise<void> {
  const { proxy } = world();
  const from = proxy.log.mark();
  const answer = await getThroughProxy(TOKEN_REGISTRY, blobPath(image, digest), authorization);
  expect(answer.status).toBe(401);
  expect(answer.headers['www-authenticate']).toMatch(/^Bearer realm="https:\/\/auth\.test\/token"/);
  expect(answer.body.toString('utf8')).toMatch(/"code":"UNAUTHORIZED"/);
  expect(answer.body.length).toBeLessThan(1024);
  const line = await proxy.log.waitForRequest(TOKEN_REGISTRY, 'GET', blobPath(image, digest), { from });
  expect(line.status).toBe(401);
  expect(line.bytes).toBeLessThan(1024);
}

test('podman pull --creds of a private image caches it; a second pull is served from the cache', async () => {
  const { proxy, tokenAuth } = world();
  const image = tokenAuth.image('private');
  const podman = setupPodman(world());
  const pull = ['pull', '--quiet', '--creds', tokenAuth.creds, '--cert-dir', proxy.caCertDir, ref(image)];

  const issued = tokenAuth.server.issued.length;
  const first = proxy.log.mark();
  expectSuccess('podman pull --creds (private, cold)', await podman.run(pull, { proxy: true }));
  await expectPullLogged(proxy.log, TOKEN_REGISTRY, image, first);
  const layer = await proxy.log.waitForRequest(TOKEN_REGISTRY, 'GET', blobPath(image), { from: first });
  expect(layer.status).toBe(200);
  expect(layer['cache']).toBe('miss');
  // podman's token came from the token server through the proxy, for the right user.
  expect(tokenLines(first).map((line) => line.status)).toContain(200);
  expect(issuedFor(image.repository, issued).map((issue) => issue.who)).toContain('e2e');
  // Cached, and not taken for public.
  for (const digest of [image.layer.digest, image.config.digest]) {
    expect(existsSync(cachePaths(image, digest).blob)).toBe(true);
    expect(existsSync(cachePaths(image, digest).publicMark)).toBe(false);
  }

  expectSuccess('podman rmi', await podman.run(['rmi', ref(image)], { proxy: false }));
  const second = proxy.log.mark();
  const counts = await countDuring([tokenAuth.registry], async () => {
    expectSuccess('podman pull --creds (private, warm)', await podman.run(pull, { proxy: true }));
    await expectPullLogged(proxy.log, TOKEN_REGISTRY, image, second);
  });
  reportCounts('podman --creds (private, 2nd)', [counts]);
  const cached = expectBlobsFromCache(proxy.log.requests(TOKEN_REGISTRY, second), image);
  console.info(`[e2e] private second pull: ${cached}`);
  expect(counts.blobGet).toBe(0);
  expectSuccess('podman rmi', await podman.run(['rmi', ref(image)], { proxy: false }));
});

test('skopeo inspect --no-creds of the private image fails with 401', async () => {
  const { proxy, tokenAuth } = world();
  const image = tokenAuth.image('private');
  const issued = tokenAuth.server.issued.length;
  const from = proxy.log.mark();
  const output = expectFailure(
    'skopeo inspect --no-creds (private)',
    await skopeo(
      world(),
      ['inspect', '--no-creds', '--cert-dir', proxy.caCertDir, `docker://${ref(image)}`],
      { proxy: true },
    ),
  );
  expect(output).toMatch(/unauthorized|authentication required/i);
  expect(output).not.toMatch(/x509|certificate/i);
  // The anonymous token the proxy relayed grants nothing on private/app…
  const anonymous = issuedFor(image.repository, issued).filter((issue) => issue.who === '(anonymous)');
  expect(anonymous.length).toBeGreaterThan(0);
  for (const issue of anonymous) expect(issue.granted).toEqual([]);
  expect(tokenLines(from).map((line) => line.status)).toContain(200);
  // …and the cached manifest behind the tag was not served under it.
  const manifest = await proxy.log.waitForRequest(
    TOKEN_REGISTRY,
    'GET',
    `/v2/${image.repository}/manifests/${image.tag}`,
    { from },
  );
  expect(manifest.status).toBe(401);
  expect(manifest.bytes).toBeLessThan(1024);
});

test('the cached private layer is refused to a bare GET and to an anonymous token', async () => {
  const { proxy, tokenAuth } = world();
  const image = tokenAuth.image('private');
  // What makes this meaningful: the proxy has the bytes. It fetched them with the e2e user's
  // token (200, a miss) and they sit verified in its cache.
  const filled = proxy.log
    .requests(TOKEN_REGISTRY)
    .find((line) => line.path === blobPath(image) && line['cache'] === 'miss');
  expect(filled?.status).toBe(200);
  expect(existsSync(cachePaths(image, image.layer.digest).blob)).toBe(true);

  await expectRefused(image, image.layer.digest);
  await expectRefused(image, image.config.digest);
  // A token the token server gave an anonymous request: the proxy saw it handed out (and so may
  // treat what upstream serves under it as public), but upstream still refuses private/app to it.
  const anonymousToken = await tokenThroughProxy(image.repository);
  await expectRefused(image, image.layer.digest, `Bearer ${anonymousToken}`);
});

test('skopeo inspect --no-creds of the public image succeeds on an anonymous token', async () => {
  const { proxy, tokenAuth } = world();
  const image = tokenAuth.image('public');
  const issued = tokenAuth.server.issued.length;
  const from = proxy.log.mark();
  const result = expectSuccess(
    'skopeo inspect --no-creds (public)',
    await skopeo(
      world(),
      ['inspect', '--no-creds', '--cert-dir', proxy.caCertDir, `docker://${ref(image)}`],
      { proxy: true },
    ),
  );
  const inspected = JSON.parse(result.stdout) as { Digest: string; Layers: string[] };
  expect(inspected.Digest).toBe(image.manifest.digest);
  expect(inspected.Layers).toEqual([image.layer.digest]);
  const grants = issuedFor(image.repository, issued);
  expect(grants.map((issue) => issue.who)).toEqual(grants.map(() => '(anonymous)'));
  expect(grants.map((issue) => issue.granted)).toContainEqual([
    { type: 'repository', name: image.repository, actions: ['pull'] },
  ]);
  const manifest = await proxy.log.waitForRequest(
    TOKEN_REGISTRY,
    'GET',
    `/v2/${image.repository}/manifests/${image.tag}`,
    { from },
  );
  expect(manifest.status).toBe(200);
});

test('anonymous pulls of the public image: the second comes from the cache without asking upstream', async () => {
  const { proxy, tokenAuth } = world();
  const image = tokenAuth.image('public');
  const copy = (dest: string) =>
    skopeoCopy(world(), `docker://${ref(image)}`, world().mkdir(dest), {
      certDir: proxy.caCertDir,
      proxy: true,
    });
  const first = proxy.log.mark();
  expectSuccess('skopeo copy --src-no-creds (public, cold)', await copy('public-1'));
  await expectPullLogged(proxy.log, TOKEN_REGISTRY, image, first);
  const layer = await proxy.log.waitForRequest(TOKEN_REGISTRY, 'GET', blobPath(image), { from: first });
  expect(layer['cache']).toBe('miss');
  // Served under an anonymous token, so the proxy took it for public.
  expect(existsSync(cachePaths(image, image.layer.digest).publicMark)).toBe(true);

  const second = proxy.log.mark();
  const counts = await countDuring([tokenAuth.registry], async () => {
    expectSuccess('skopeo copy --src-no-creds (public, warm)', await copy('public-2'));
    await expectPullLogged(proxy.log, TOKEN_REGISTRY, image, second);
  });
  reportCounts('skopeo --no-creds (public, 2nd)', [counts]);
  expectBlobsFromCache(proxy.log.requests(TOKEN_REGISTRY, second), image);
  expect(counts.blobGet).toBe(0);
  // Public content needs no upstream check: no blob HEAD went upstream.
  expect(counts.other.filter((request) => request.startsWith('HEAD '))).toEqual([]);
});

test('podman pull with a wrong password fails, and its token opens nothing in the cache', async () => {
  const { proxy, tokenAuth } = world();
  const image = tokenAuth.image('private');
  const podman = setupPodman(world());
  const issued = tokenAuth.server.issued.length;
  const from = proxy.log.mark();
  const output = expectFailure(
    'podman pull --creds e2e:wrong (private)',
    await podman.run(['pull', '--quiet', '--creds', 'e2e:wrong', '--cert-dir', proxy.caCertDir, ref(image)], {
      proxy: true,
    }),
  );
  expect(output).toMatch(/unauthorized|authentication required/i);
  const wrong = issuedFor(image.repository, issued).filter((issue) => issue.who === 'e2e (wrong password)');
  expect(wrong.length).toBeGreaterThan(0);
  for (const issue of wrong) expect(issue.granted).toEqual([]);
  const manifest = await proxy.log.waitForRequest(
    TOKEN_REGISTRY,
    'GET',
    `/v2/${image.repository}/manifests/${image.tag}`,
    { from },
  );
  expect(manifest.status).toBe(401);
  // The same kind of token, used directly on the cached layer.
  const token = await tokenThroughProxy(image.repository, 'e2e:wrong');
  await expectRefused(image, image.layer.digest, `Bearer ${token}`);
});

// Last: it takes the registry and its token server away. podman fetches a new token on every
// pull, which is what a client whose token expired during an outage does.
test('with registry and token server down, podman --creds still pulls the private image; anonymous skopeo does not', async () => {
  const { proxy, tokenAuth } = world();
  const image = tokenAuth.image('private');
  const podman = setupPodman(world(), { name: 'podman-offline' });
  const pull = ['pull', '--quiet', '--creds', tokenAuth.creds, '--cert-dir', proxy.caCertDir, ref(image)];
  expectSuccess('podman pull --creds (private, online)', await podman.run(pull, { proxy: true }));
  expectSuccess('podman rmi', await podman.run(['rmi', ref(image)], { proxy: false }));
  await tokenAuth.registry.stop();
  await tokenAuth.server.close();

  const from = proxy.log.mark();
  expectSuccess('podman pull --creds (private, offline)', await podman.run(pull, { proxy: true }));
  const lines = await expectPullLogged(proxy.log, TOKEN_REGISTRY, image, from);
  expectBlobsFromCache(lines, image);
  const ping = lines.find((line) => line.path === '/v2/');
  expect(ping).toMatchObject({ status: 401, cache: 'stale' });
  const token = proxy.log.lines
    .slice(from)
    .find((line) => isRequest(line) && sameHost(line.host, AUTH) && line.path.startsWith('/token'));
  expect(token).toMatchObject({ status: 200, cache: 'stale' });
  const tag = lines.find((line) => line.path === `/v2/${image.repository}/manifests/${image.tag}`);
  expect(tag).toMatchObject({ status: 200, cache: 'stale' });

  const refused = expectFailure(
    'skopeo inspect --no-creds (private, offline)',
    await skopeo(
      world(),
      ['inspect', '--no-creds', '--cert-dir', proxy.caCertDir, `docker://${ref(image)}`],
      {
        proxy: true,
      },
    ),
  );
  expect(refused).toMatch(/unauthorized|authentication required/i);
  await tokenAuth.registry.start();
});
