// The dashboard through a real proxy and a fake upstream: /ui/ where /admin/ is (the proxy
// port, or only admin.listen when set; nowhere without admin.token), and GET /admin/stats
// after real pulls: hits and bytes by source, pulls per tag, the upstream reachable, a purge
// among the recent events, and the token required.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { ProxyAgent, request } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import { admin } from '../helpers/admin.ts';
import { rawConnection, readHead, startProxy, type TestProxy } from '../helpers/proxy.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const TOKEN = 'dashboard-token-0123456789';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

async function get(url: string, token?: string) {
  const res = await request(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const body = await res.body.text();
  return { status: res.statusCode, type: res.headers['content-type'], body };
}

/** One image of a config and a 64 KiB layer, pushed to the fake upstream. */
function addImage(upstream: FakeRegistry, name: string, tag: string) {
  const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64' }));
  const layer = randomBytes(64 * 1024);
  const blobs = [upstream.addBlob(config), upstream.addBlob(layer)];
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blobs[0], size: config.length },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: blobs[1], size: layer.length },
    ],
  };
  upstream.addManifest(name, tag, manifest);
  // What one pull sends: the manifest and both blobs.
  const bytes = Buffer.byteLength(JSON.stringify(manifest)) + config.length + layer.length;
  return { name, tag, blobs, bytes, blobBytes: config.length + layer.length };
}

async function pull(proxy: TestProxy, upstream: FakeRegistry, image: ReturnType<typeof addImage>) {
  const path = `/v2/${image.name}/manifests/${image.tag}`;
  const manifest = await proxy.fetch(upstream.authority, path, { headers: { accept: OCI_MANIFEST } });
  expect(manifest.statusCode).toBe(200);
  await manifest.body.dump();
  for (const digest of image.blobs) {
    const blob = await proxy.fetch(upstream.authority, `/v2/${image.name}/blobs/${digest}`);
    expect(blob.statusCode).toBe(200);
    await blob.body.dump();
  }
  await proxy.app.fills.idle();
}

describe('dashboard', () => {
  it('serves /ui/ on the proxy port when admin.token is set, and not without it', async () => {
    const on = await startProxy({ admin: { token: TOKEN } });
    const page = await get(`${on.url}/ui/`);
    expect(page.status).toBe(200);
    expect(page.type).toBe('text/html; charset=utf-8');
    expect((await get(`${on.url}/ui/vendor/uPlot.iife.min.js`)).status).toBe(200);
    const off = await startProxy();
    expect((await get(`${off.url}/ui/`)).status).toBe(404);
    expect((await get(`${off.url}/ui/app.js`)).status).toBe(404);
  });

  it('serves /ui/ only on admin.listen when it is set', async () => {
    const proxy = await startProxy({ admin: { token: TOKEN, listen: '127.0.0.1:0' } });
    const adminUrl = `http://127.0.0.1:${proxy.app.adminAddress?.port}`;
    expect((await get(`${adminUrl}/ui/`)).status).toBe(200);
    expect((await get(`${adminUrl}/ui/app.js`)).status).toBe(200);
    expect((await get(`${adminUrl}/ca.crt`)).status).toBe(200); // the Setup page's download
    expect((await get(`${proxy.url}/ui/`)).status).toBe(404);
  });

  it('reports hits, bytes, pulls per tag, the upstream and purges in GET /admin/stats', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority], admin: { token: TOKEN } });
    expect((await get(`${proxy.url}/admin/stats`)).status).toBe(401);
    expect((await get(`${proxy.url}/admin/stats`, 'wrong-token-0123456789')).status).toBe(401);
    const image = addImage(upstream, 'lib/app', 'v1');
    await pull(proxy, upstream, image); // misses
    await pull(proxy, upstream, image); // blob hits, the tag revalidated
    const purge = await admin(
      proxy,
      'DELETE',
      `/admin/images?registry=${upstream.authority}&repository=lib/app`,
      TOKEN,
    );
    expect(purge.status).toBe(200);

    const res = await get(`${proxy.url}/admin/stats`, TOKEN);
    expect(res.status).toBe(200);
    const stats = JSON.parse(res.body) as Record<string, unknown>;
    expect(stats['totals']).toMatchObject({ bytesCache: image.bytes, bytesUpstream: image.bytes });
    const totals = stats['totals'] as { hits: number; answerable: number };
    expect(totals.hits).toBeGreaterThanOrEqual(2);
    expect(totals.answerable).toBe(6);
    expect(stats['pulls']).toEqual([
      expect.objectContaining({ registry: upstream.authority, repository: 'lib/app', tag: 'v1', pulls: 2 }),
    ]);
    expect(stats['registries']).toEqual([
      expect.objectContaining({ registry: upstream.authority, condition: 'reachable', servingStale: false }),
    ]);
    expect(stats['events']).toEqual([
      expect.objectContaining({
        event: 'admin purge',
        fields: expect.objectContaining({ repository: 'lib/app' }) as unknown,
      }),
    ]);
    expect(stats['fills']).toEqual([]);
    expect(stats['settings']).toMatchObject({ proxyPort: proxy.port, registries: [upstream.authority] });
    expect(Array.isArray(stats['points'])).toBe(true);
  });

  it('warms an image through the proxy from POST /admin/warm, with its progress in GET /admin/warm', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority], admin: { token: TOKEN } });
    const image = addImage(upstream, 'lib/warm', 'v2');
    const post = (query: string, token = TOKEN) =>
      request(`${proxy.url}/admin/warm?${query}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    const refused = await post(`ref=${upstream.authority}/lib/warm:v2`, 'wrong-token-0123456789');
    expect(refused.statusCode).toBe(401);
    await refused.body.dump();
    const bad = await post('ref=Not%20A%20Ref');
    expect(bad.statusCode).toBe(400);
    expect(await bad.body.json()).toEqual({
      error: expect.stringMatching(/not a repository name/) as unknown,
    });

    const started = await post(`ref=${encodeURIComponent(`${upstream.authority}/lib/warm:v2`)}`);
    expect(started.statusCode).toBe(200);
    expect(await started.body.json()).toMatchObject({
      ref: `${upstream.authority}/lib/warm:v2`,
      state: 'running',
    });
    const ended = await proxy.waitForLog((l) => l.msg === 'warm done' || l.msg === 'warm failed');
    expect(ended).toMatchObject({ msg: 'warm done', fetchedBlobs: 2, bytes: image.blobBytes });
    const jobs = JSON.parse((await get(`${proxy.url}/admin/warm`, TOKEN)).body) as { jobs: unknown[] };
    expect(jobs.jobs).toEqual([
      expect.objectContaining({ state: 'done', done: image.blobBytes, total: image.blobBytes }),
    ]);
    // Cached: pulled again, every blob is a hit and upstream served each once.
    await pull(proxy, upstream, image);
    for (const digest of image.blobs) expect(upstream.hits('GET', `/v2/lib/warm/blobs/${digest}`)).toBe(1);
  });

  it('warms through a proxy that wants htpasswd credentials, which everyone else still needs', async () => {
    const upstream = await startFakeRegistry();
    const htpasswd = path.join(await tempDir(), 'users');
    await writeFile(htpasswd, `alice:${await bcrypt.hash('wonderland', 4)}\n`);
    const proxy = await startProxy({
      registries: [upstream.authority],
      admin: { token: TOKEN },
      proxy: { htpasswd },
    });
    const image = addImage(upstream, 'lib/locked', 'v1');
    const started = await request(
      `${proxy.url}/admin/warm?ref=${encodeURIComponent(`${upstream.authority}/lib/locked:v1`)}`,
      { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } },
    );
    expect(started.statusCode).toBe(200);
    await started.body.dump();
    const ended = await proxy.waitForLog((l) => l.msg === 'warm done' || l.msg === 'warm failed');
    expect(ended['error']).toBeUndefined();
    expect(ended).toMatchObject({ msg: 'warm done', fetchedBlobs: 2, bytes: image.blobBytes });

    // The warm job's way in is not anyone's: a CONNECT without credentials, or with a user the
    // file does not list, is still refused.
    for (const credentials of [undefined, 'pullthrough:', 'alice:nope']) {
      const header =
        credentials === undefined
          ? ''
          : `Proxy-Authorization: Basic ${Buffer.from(credentials).toString('base64')}\r\n`;
      const socket = await rawConnection(
        proxy.port,
        `CONNECT ${upstream.authority} HTTP/1.1\r\nHost: ${upstream.authority}\r\n${header}\r\n`,
      );
      expect((await readHead(socket)).head, credentials).toMatch(/^HTTP\/1\.1 407 /);
      socket.destroy();
    }
    // alice's credentials still work, and the cache answers her from what the warm job fetched.
    const alice = new ProxyAgent({
      uri: `http://alice:wonderland@127.0.0.1:${proxy.port}`,
      requestTls: { ca: [proxy.app.ca.certPem] },
    });
    onTestFinished(() => alice.destroy());
    for (const digest of image.blobs) {
      const blob = await request(`https://${upstream.authority}/v2/lib/locked/blobs/${digest}`, {
        dispatcher: alice,
      });
      expect(blob.statusCode).toBe(200);
      await blob.body.dump();
      expect(upstream.hits('GET', `/v2/lib/locked/blobs/${digest}`)).toBe(1);
    }
    // No log line carries a Proxy-Authorization value.
    expect(JSON.stringify(proxy.logs)).not.toMatch(/basic [a-z0-9+/=]{8,}/i);
  });
});
