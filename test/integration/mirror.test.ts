// Mirror mode (issue 23): the real proxy with its mirror listener, a fake upstream over TLS, and
// plain-HTTP clients naming the upstream by ?ns= or a /v2/<registry>/ prefix. One cache serves
// both modes; registries off the list are refused without an upstream request; private content
// stays private.
import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { upstreamPki } from '../helpers/pki.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

async function mirrorGet(proxy: TestProxy, path: string, headers: Record<string, string> = {}) {
  const address = proxy.app.mirrorAddress;
  if (!address) throw new Error('no mirror listener');
  const res = await request(`http://127.0.0.1:${address.port}${path}`, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  await proxy.app.fills.idle();
  return { status: res.statusCode, headers: res.headers, body };
}

async function proxyGet(proxy: TestProxy, upstream: FakeRegistry, path: string, authorization?: string) {
  const res = await proxy.fetch(
    upstream.authority,
    path,
    authorization ? { headers: { authorization } } : {},
  );
  const body = Buffer.from(await res.body.arrayBuffer());
  await proxy.app.fills.idle();
  return { status: res.statusCode, headers: res.headers, body };
}

async function setup(overrides: Record<string, unknown> = {}) {
  const upstream = await startFakeRegistry();
  const proxy = await startProxy({
    registries: [upstream.authority],
    mirror: { listen: '127.0.0.1:0' },
    ...overrides,
  });
  return { upstream, proxy };
}

const MANIFEST = (digest: string, size: number) => ({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size },
  layers: [],
});

describe('mirror mode', () => {
  it('is off by default and logs its address when on', async () => {
    const off = await startProxy();
    expect(off.app.mirrorAddress).toBeUndefined();
    const { proxy } = await setup();
    const line = await proxy.waitForLog((l) => l.msg === 'mirror listening');
    expect(line).toMatchObject({ port: proxy.app.mirrorAddress?.port });
    const ping = await mirrorGet(proxy, '/v2/');
    expect(ping.status).toBe(200);
    expect(ping.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it('serves blobs and manifests by ?ns= and by prefix from one cache, fetched upstream once', async () => {
    const { upstream, proxy } = await setup();
    const layer = Buffer.from('mirror layer bytes');
    const digest = upstream.addBlob(layer);
    const manifestDigest = upstream.addManifest('e2e/small', 'v1', MANIFEST(digest, layer.length));
    const blobPath = `/v2/e2e/small/blobs/${digest}`;

    const byNs = await mirrorGet(proxy, `${blobPath}?ns=${upstream.authority}`);
    expect(byNs).toMatchObject({ status: 200, headers: { 'x-cache': 'MISS' } });
    expect(byNs.body.equals(layer)).toBe(true);
    const byPrefix = await mirrorGet(proxy, `/v2/${upstream.authority}/e2e/small/blobs/${digest}`);
    expect(byPrefix).toMatchObject({ status: 200, headers: { 'x-cache': 'HIT' } });
    expect(byPrefix.body.equals(layer)).toBe(true);
    expect(upstream.hits('GET', blobPath)).toBe(1);
    // The upstream saw its own path: no prefix, no ns.
    expect(upstream.requests.map((r) => r.path)).toEqual([blobPath]);

    const manifest = await mirrorGet(proxy, `/v2/e2e/small/manifests/v1?ns=${upstream.authority}`, {
      accept: 'application/vnd.oci.image.manifest.v1+json',
    });
    expect(manifest.status).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(manifestDigest);
    const byDigest = await mirrorGet(
      proxy,
      `/v2/${upstream.authority}/e2e/small/manifests/${manifestDigest}`,
    );
    expect(byDigest).toMatchObject({ status: 200, headers: { 'docker-content-digest': manifestDigest } });
    expect(JSON.parse(byDigest.body.toString())).toEqual(MANIFEST(digest, layer.length));
    const completions = proxy.logs.filter((l) => l.msg === 'request');
    expect(completions.map((l) => l.host)).toEqual(Array(4).fill(upstream.authority));
  });

  it('shares the cache with proxy mode both ways', async () => {
    const { upstream, proxy } = await setup();
    const first = upstream.addBlob(Buffer.from('pulled through HTTPS_PROXY first'));
    const second = upstream.addBlob(Buffer.from('pulled through the mirror first'));

    expect(await proxyGet(proxy, upstream, `/v2/app/blobs/${first}`)).toMatchObject({
      status: 200,
      headers: { 'x-cache': 'MISS' },
    });
    expect(await mirrorGet(proxy, `/v2/${upstream.authority}/app/blobs/${first}`)).toMatchObject({
      status: 200,
      headers: { 'x-cache': 'HIT' },
    });
    expect(await mirrorGet(proxy, `/v2/app/blobs/${second}?ns=${upstream.authority}`)).toMatchObject({
      status: 200,
      headers: { 'x-cache': 'MISS' },
    });
    expect(await proxyGet(proxy, upstream, `/v2/app/blobs/${second}`)).toMatchObject({
      status: 200,
      headers: { 'x-cache': 'HIT' },
    });
    expect(upstream.hits('GET', `/v2/app/blobs/${first}`)).toBe(1);
    expect(upstream.hits('GET', `/v2/app/blobs/${second}`)).toBe(1);
    // The request log line and the metrics say which way each request came.
    await proxy.waitForLog(
      (l) => l.msg === 'request' && proxy.logs.filter((x) => x.msg === 'request').length === 4,
    );
    const modes = proxy.logs.filter((l) => l.msg === 'request').map((l) => l['mode'] ?? 'proxy');
    expect(modes).toEqual(['proxy', 'mirror', 'mirror', 'proxy']);
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    const labels = `registry="${upstream.authority}",mode="mirror",kind="blob"`;
    expect(metrics).toContain(`pullthrough_requests_total{${labels},cache="hit"} 1`);
    expect(metrics).toContain(`pullthrough_requests_total{${labels},cache="miss"} 1`);
  });

  it('refuses registries not on the list with DENIED, asking nothing upstream', async () => {
    const { upstream, proxy } = await setup();
    const other = await startFakeRegistry();
    const digest = other.addBlob(Buffer.from('not to be relayed'));
    for (const path of [
      `/v2/${other.authority}/app/blobs/${digest}`,
      `/v2/app/blobs/${digest}?ns=${other.authority}`,
      `/v2/app/blobs/${digest}?ns=docker.io`,
    ]) {
      const denied = await mirrorGet(proxy, path);
      expect(denied.status, path).toBe(403);
      const error = (
        JSON.parse(denied.body.toString()) as { errors: Array<{ code: string; message: string }> }
      ).errors[0];
      expect(error?.code).toBe('DENIED');
      expect(error?.message).toContain(`it serves: ${upstream.authority}`);
    }
    // Bare names without mirror.default name no registry.
    const bare = await mirrorGet(proxy, `/v2/app/blobs/${digest}`);
    expect(bare.status).toBe(404);
    expect(other.requests).toEqual([]);
    expect(upstream.requests).toEqual([]);
  });

  it('admits only proxy.allowClients, and stops listening when the app closes', async () => {
    const { upstream, proxy } = await setup({ proxy: { allowClients: ['10.0.0.0/8'] } });
    const digest = upstream.addBlob(Buffer.from('for allowed clients only'));
    const refused = await mirrorGet(proxy, `/v2/app/blobs/${digest}?ns=${upstream.authority}`);
    expect(refused.status).toBe(403);
    expect(upstream.requests).toEqual([]);
    const port = proxy.app.mirrorAddress?.port;
    await proxy.close();
    await expect(request(`http://127.0.0.1:${String(port)}/v2/`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('serves bare names from mirror.default', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({
      registries: [upstream.authority],
      mirror: { listen: '127.0.0.1:0', default: upstream.authority },
    });
    const layer = Buffer.from('default registry layer');
    const digest = upstream.addBlob(layer);
    const res = await mirrorGet(proxy, `/v2/team/app/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.body.equals(layer)).toBe(true);
    expect(upstream.hits('GET', `/v2/team/app/blobs/${digest}`)).toBe(1);
  });
});

describe('mirror mode over TLS (mirror.tls)', () => {
  it('serves the same API over HTTPS with the configured certificate', async () => {
    const upstream = await startFakeRegistry();
    const pki = await upstreamPki();
    const dir = await tempDir();
    const { cert, key } = await pki.leaf('127.0.0.1');
    await writeFile(path.join(dir, 'mirror.crt'), cert);
    await writeFile(path.join(dir, 'mirror.key'), key);
    const proxy = await startProxy({
      registries: [upstream.authority],
      mirror: {
        listen: '127.0.0.1:0',
        tls: { cert: path.join(dir, 'mirror.crt'), key: path.join(dir, 'mirror.key') },
      },
    });
    const layer = Buffer.from('layer over an https mirror');
    const digest = upstream.addBlob(layer);
    const agent = new Agent({ connect: { ca: pki.ca.certPem } });
    const url = `https://127.0.0.1:${String(proxy.app.mirrorAddress?.port)}/v2/app/blobs/${digest}?ns=${upstream.authority}`;
    const res = await request(url, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(layer)).toBe(true);
    await agent.close();
    // Plain HTTP to it is no longer served.
    await expect(
      request(`http://127.0.0.1:${String(proxy.app.mirrorAddress?.port)}/v2/`).then((r) => r.body.dump()),
    ).rejects.toThrow();
  });
});

describe('mirror mode and private content (policy verify)', () => {
  const ACCOUNTS = { alice: 'alice-secret' };
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  it('refuses a cached private blob to an anonymous mirror client, serves it to an authorized one', async () => {
    const { upstream, proxy } = await setup();
    upstream.useTokenAuth(ACCOUNTS);
    upstream.makePrivate('private/');
    const secret = Buffer.from('private layer bytes');
    const digest = upstream.addBlob(secret);
    const path = `/v2/private/app/blobs/${digest}`;
    // A mirror client goes to the token realm itself; here the test asks the same token server.
    const tokenRes = await proxyGet(
      proxy,
      upstream,
      `/token?service=fake&scope=${encodeURIComponent('repository:private/app:pull')}`,
      basic('alice', ACCOUNTS.alice),
    );
    const alice = `Bearer ${(JSON.parse(tokenRes.body.toString()) as { token: string }).token}`;

    const cached = await mirrorGet(proxy, `${path}?ns=${upstream.authority}`, { authorization: alice });
    expect(cached).toMatchObject({ status: 200, headers: { 'x-cache': 'MISS' } });
    expect(cached.body.equals(secret)).toBe(true);

    // Anonymous, by either naming: upstream's own challenge, pointing at its realm.
    for (const mirrorPath of [
      `${path}?ns=${upstream.authority}`,
      `/v2/${upstream.authority}/private/app/blobs/${digest}`,
    ]) {
      const anonymous = await mirrorGet(proxy, mirrorPath);
      expect(anonymous.status, mirrorPath).toBe(401);
      expect(anonymous.headers['www-authenticate']).toMatch(
        /^Bearer realm="https:\/\/127\.0\.0\.1:\d+\/token",service="fake",scope="repository:private\/app:pull"/,
      );
      expect(anonymous.body.includes(secret)).toBe(false);
    }
    // Proxy mode holds the same line for the same cache entry.
    expect((await proxyGet(proxy, upstream, path)).status).toBe(401);
    // Alice again: a hit.
    expect(
      await mirrorGet(proxy, `${path}?ns=${upstream.authority}`, { authorization: alice }),
    ).toMatchObject({
      status: 200,
      headers: { 'x-cache': 'HIT' },
    });
    expect(upstream.hits('GET', path)).toBe(1);
  });
});
