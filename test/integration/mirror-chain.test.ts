// registries[].mirrors (issue 19): blobs and manifests by digest come from the first mirror that
// has them, checked against their digest; tags from mirrors marked `tags: true`, else the
// registry; a failing mirror is skipped with a back-off, logged once per change and counted;
// the client's credentials never reach a mirror, and a mirror's answer widens no access.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { request } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const blobGets = (registry: FakeRegistry) =>
  registry.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;

async function get(
  proxy: TestProxy,
  authority: string,
  urlPath: string,
  headers: Record<string, string> = {},
) {
  const res = await proxy.fetch(authority, urlPath, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  await proxy.app.fills.idle();
  return { status: res.statusCode, cache: res.headers['x-cache'], body };
}

async function metric(proxy: TestProxy, line: RegExp): Promise<number | undefined> {
  const res = await request(`${proxy.url}/metrics`);
  const text = await res.body.text();
  const found = text.split('\n').find((l) => line.test(l));
  return found === undefined ? undefined : Number(found.split(' ').at(-1));
}

function storedPath(proxy: TestProxy, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(proxy.dir, 'cache', 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** A port on which nothing listens: a mirror that is down. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A plain-HTTP mirror answering `status` to everything, counting what it was asked. */
async function failingMirror(status: number): Promise<{ url: string; hits: () => number; heal: () => void }> {
  let hits = 0;
  let healthy = false;
  const server = http.createServer((req, res) => {
    hits += 1;
    res.writeHead(healthy ? 404 : status, { 'content-length': 0 }).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    heal: () => (healthy = true),
  };
}

describe('mirror chain', () => {
  it('skips a down mirror, takes blobs and manifests by digest from the next, and tags from the registry', async () => {
    const registry = await startFakeRegistry();
    const mirror = await startFakeRegistry();
    const layer = Buffer.from('layer bytes from anywhere');
    const config = Buffer.from('{"architecture":"amd64"}');
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { digest: registry.addBlob(config), size: config.length },
      layers: [{ digest: registry.addBlob(layer), size: layer.length }],
    };
    mirror.addBlob(layer);
    mirror.addBlob(config);
    const digest = registry.addManifest('app', 'v1', manifest);
    mirror.addManifest('app', 'v1', manifest);
    const other = registry.addManifest('app', 'v2', { ...manifest, annotations: { v: '2' } });
    mirror.addManifest('app', 'v2', { ...manifest, annotations: { v: '2' } });
    const down = `127.0.0.1:${await closedPort()}`;
    const proxy = await startProxy({
      registries: [{ host: registry.authority, mirrors: [down, mirror.authority] }],
    });

    const tag = await get(proxy, registry.authority, '/v2/app/manifests/v1', { accept: OCI_MANIFEST });
    expect(tag).toMatchObject({ status: 200, cache: 'MISS' });
    for (const blob of [manifest.config, ...manifest.layers]) {
      const res = await get(proxy, registry.authority, `/v2/app/blobs/${blob.digest}`);
      expect(res).toMatchObject({ status: 200, cache: 'MISS' });
      expect(res.body.equals(blob.digest === manifest.config.digest ? config : layer)).toBe(true);
    }
    const byDigest = await get(proxy, registry.authority, `/v2/app/manifests/${other}`, {
      accept: OCI_MANIFEST,
    });
    expect(byDigest).toMatchObject({ status: 200, cache: 'MISS' });

    // The registry resolved the tag and said who may read; the mirror sent every byte.
    expect(blobGets(registry)).toBe(0);
    expect(registry.hits('GET', `/v2/app/manifests/${other}`)).toBe(0);
    expect(registry.hits('GET', '/v2/app/manifests/v1')).toBe(1);
    expect(mirror.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /v2/app/blobs/${manifest.config.digest}`,
      `GET /v2/app/blobs/${manifest.layers[0]?.digest}`,
      `GET /v2/app/manifests/${other}`,
    ]);
    expect(mirror.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
    // Kept and served like any other content: the second pull is a hit.
    const again = await get(proxy, registry.authority, `/v2/app/blobs/${manifest.layers[0]?.digest}`);
    expect(again).toMatchObject({ status: 200, cache: 'HIT' });
    expect(await readFile(storedPath(proxy, manifest.layers[0]?.digest ?? ''))).toEqual(layer);
    expect(digest).toMatch(/^sha256:/);

    // The down mirror: tried once, then skipped (back-off), logged once, counted once.
    const failing = proxy.logs.filter((l) => l.msg === 'mirror failing: skipped for a while');
    expect(failing).toHaveLength(1);
    expect(failing[0]).toMatchObject({ registry: registry.authority, mirror: down, reason: 'unreachable' });
    const labels = `registry="${registry.authority}",mirror="${down}",reason="unreachable"`;
    expect(await metric(proxy, new RegExp(`^pullthrough_mirror_failures_total\\{${labels}\\}`))).toBe(1);
    const served = (source: string, kind: string) =>
      metric(
        proxy,
        new RegExp(
          `^pullthrough_source_fetches_total\\{registry="${registry.authority}",source="${source}",kind="${kind}"\\}`,
        ),
      );
    expect(await served(mirror.authority, 'blob')).toBe(2);
    expect(await served(mirror.authority, 'manifest')).toBe(1);
    expect(await served('registry', 'manifest')).toBeUndefined();
    expect(await served('registry', 'tag')).toBe(1);
    const line = await proxy.waitForLog(
      (l) => l.msg === 'request' && l['path'] === `/v2/app/blobs/${manifest.layers[0]?.digest}`,
    );
    expect(line).toMatchObject({ cache: 'miss', source: mirror.authority });
  });

  it('skips a mirror that sends wrong bytes, keeps only the right ones, and backs it off', async () => {
    const registry = await startFakeRegistry();
    const liar = await startFakeRegistry();
    const small = Buffer.from('a small layer, checked before the client sees a byte');
    const large = Buffer.alloc(1536 * 1024, 7); // above what is checked first: streamed
    const smallDigest = registry.addBlob(small);
    const largeDigest = registry.addBlob(large);
    liar.addBlob(small);
    liar.addBlob(large);
    liar.corruptBlobs(true);
    const proxy = await startProxy({ registries: [{ host: registry.authority, mirrors: [liar.authority] }] });

    // Small: the wrong bytes never reach the client, who gets the registry's right ones at once.
    const first = await get(proxy, registry.authority, `/v2/app/blobs/${smallDigest}`);
    expect(first).toMatchObject({ status: 200, cache: 'MISS' });
    expect(first.body.equals(small)).toBe(true);
    expect(await readFile(storedPath(proxy, smallDigest))).toEqual(small);
    expect(blobGets(liar)).toBe(1);
    expect(blobGets(registry)).toBe(1);

    // Backed off now: the large blob goes straight to the registry.
    const second = await get(proxy, registry.authority, `/v2/app/blobs/${largeDigest}`);
    expect(second.body.equals(large)).toBe(true);
    expect(blobGets(liar)).toBe(1);
    const labels = `registry="${registry.authority}",mirror="${liar.authority}",reason="digest"`;
    expect(await metric(proxy, new RegExp(`^pullthrough_mirror_failures_total\\{${labels}\\}`))).toBe(1);
  });

  it('cuts a streamed blob with wrong bytes, stores nothing, and the retry gets the right bytes elsewhere', async () => {
    const registry = await startFakeRegistry();
    const liar = await startFakeRegistry();
    const large = Buffer.alloc(1536 * 1024, 9);
    const digest = registry.addBlob(large);
    liar.addBlob(large);
    liar.corruptBlobs(true);
    const proxy = await startProxy({ registries: [{ host: registry.authority, mirrors: [liar.authority] }] });

    const res = await proxy.fetch(registry.authority, `/v2/app/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    await expect(res.body.arrayBuffer()).rejects.toThrow();
    await proxy.app.fills.idle();
    await expect(readFile(storedPath(proxy, digest))).rejects.toMatchObject({ code: 'ENOENT' });

    const retry = await get(proxy, registry.authority, `/v2/app/blobs/${digest}`);
    expect(retry).toMatchObject({ status: 200, cache: 'MISS' });
    expect(retry.body.equals(large)).toBe(true);
    expect(await readFile(storedPath(proxy, digest))).toEqual(large);
    expect(blobGets(liar)).toBe(1);
    expect(blobGets(registry)).toBe(1);
  });

  it('backs a failing mirror off, doubling, and takes it back when it answers', async () => {
    const registry = await startFakeRegistry();
    const mirror = await failingMirror(503);
    const blobs = Array.from({ length: 6 }, (_, i) => registry.addBlob(Buffer.from(`blob ${i}`)));
    let now = 1_000_000;
    const proxy = await startProxy(
      { registries: [{ host: registry.authority, mirrors: [mirror.url] }] },
      {},
      { mirrorClock: () => now },
    );
    const pull = async (i: number) => {
      const res = await get(proxy, registry.authority, `/v2/app/blobs/${blobs[i]}`);
      expect(res.status).toBe(200);
    };

    await pull(0);
    expect(mirror.hits()).toBe(1);
    await pull(1); // within the first back-off (10 s): not asked
    expect(mirror.hits()).toBe(1);
    now += 10_000;
    await pull(2); // back-off over: asked once more, fails again, now 20 s
    expect(mirror.hits()).toBe(2);
    now += 10_000;
    await pull(3);
    expect(mirror.hits()).toBe(2);
    mirror.heal(); // answers 404 now: a healthy mirror without this blob
    now += 10_000;
    await pull(4);
    await pull(5);
    expect(mirror.hits()).toBe(4);
    expect(blobGets(registry)).toBe(6);

    const changes = proxy.logs.filter((l) => /^mirror (failing|answering)/.test(String(l.msg)));
    expect(changes.map((l) => [l.msg, l['reason'], l['backoffMs']])).toEqual([
      ['mirror failing: skipped for a while', '5xx', 10_000],
      ['mirror answering again', undefined, undefined],
    ]);
  });

  it('never sends the client credentials to a mirror, nor lets a mirror widen who is served', async () => {
    const registry = await startFakeRegistry();
    registry.useTokenAuth({ alice: 'alice-secret' });
    registry.makePrivate('private/');
    const mirror = await startFakeRegistry();
    const secret = Buffer.from('private layer bytes');
    const digest = registry.addBlob(secret);
    mirror.addBlob(secret);
    const proxy = await startProxy({
      registries: [{ host: registry.authority, mirrors: [mirror.authority] }],
    });
    const token = async (user?: string) => {
      const basic = user
        ? { authorization: `Basic ${Buffer.from(`${user}:alice-secret`).toString('base64')}` }
        : {};
      const res = await proxy.fetch(
        registry.authority,
        '/token?service=fake&scope=repository:private/app:pull',
        { headers: basic },
      );
      return `Bearer ${((await res.body.json()) as { token: string }).token}`;
    };

    // Anonymous: the registry says no, and the mirror is not even asked.
    const anonymous = await get(proxy, registry.authority, `/v2/private/app/blobs/${digest}`, {
      authorization: await token(),
    });
    expect(anonymous.status).toBe(401);
    expect(mirror.requests).toEqual([]);

    // Alice may: the registry says so (a HEAD with her token), the mirror sends the bytes anonymously.
    const alice = await token('alice');
    const served = await get(proxy, registry.authority, `/v2/private/app/blobs/${digest}`, {
      authorization: alice,
    });
    expect(served).toMatchObject({ status: 200, cache: 'MISS' });
    expect(served.body.equals(secret)).toBe(true);
    expect(blobGets(registry)).toBe(0);
    expect(mirror.requests).toHaveLength(1);
    for (const r of mirror.requests) {
      expect(r.headers.authorization).toBeUndefined();
      expect(JSON.stringify(r.headers)).not.toContain(alice.slice('Bearer '.length));
    }

    // Cached now; the mirror's anonymous answer made nothing public: anonymous still gets 401.
    const after = await get(proxy, registry.authority, `/v2/private/app/blobs/${digest}`);
    expect(after.status).toBe(401);
    expect(after.body.includes(secret)).toBe(false);
  });

  it('resolves tags at a mirror marked tags: true, with ?ns=, and the registry still decides access', async () => {
    const registry = await startFakeRegistry();
    const mirror = await startFakeRegistry();
    const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { size: 1 }, layers: [] };
    const digest = registry.addManifest('app', 'v1', manifest);
    mirror.addManifest('app', 'v1', manifest);
    const body = Buffer.from(JSON.stringify(manifest));
    // The mirror answers only with ?ns= naming the registry, as a pullthrough mirror listener reads it.
    const asked: string[] = [];
    for (const reference of ['v1', digest]) {
      mirror.route(`/v2/app/manifests/${reference}`, (req, res) => {
        asked.push(`${req.method} ${req.url}`);
        const named = new URL(req.url ?? '/', 'http://x').searchParams.get('ns') === registry.authority;
        res.writeHead(named ? 200 : 404, {
          'content-type': OCI_MANIFEST,
          'content-length': named ? body.length : 0,
          'docker-content-digest': digest,
        });
        res.end(named && req.method === 'GET' ? body : undefined);
      });
    }
    const proxy = await startProxy({
      registries: [{ host: registry.authority, mirrors: [{ host: mirror.authority, tags: true, ns: true }] }],
    });

    const res = await get(proxy, registry.authority, '/v2/app/manifests/v1', { accept: OCI_MANIFEST });
    expect(res).toMatchObject({ status: 200, cache: 'MISS' });
    expect(res.body.equals(body)).toBe(true);
    const ns = `?ns=${registry.authority}`;
    expect(asked).toEqual([`HEAD /v2/app/manifests/v1${ns}`, `GET /v2/app/manifests/${digest}${ns}`]);
    // The registry was asked only whether this client may read the digest: no tag, no GET.
    expect(registry.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `HEAD /v2/app/manifests/${digest}`,
    ]);

    // The tag is cached as the mirror resolved it: the next pull is revalidated at the mirror.
    const again = await get(proxy, registry.authority, '/v2/app/manifests/v1', { accept: OCI_MANIFEST });
    expect(again).toMatchObject({ status: 200, cache: 'REVALIDATED' });
  });

  it('ends a loop: a mirror that leads back to this proxy is answered without fills or mirrors', async () => {
    const registry = await startFakeRegistry();
    const layer = Buffer.from('bytes that come round once');
    const digest = registry.addBlob(layer);
    // The proxy's own mirror listener as its mirror: the request comes back, with our Via.
    const port = await closedPort();
    const proxy = await startProxy({
      mirror: { listen: `127.0.0.1:${port}` },
      registries: [{ host: registry.authority, mirrors: [{ host: `http://127.0.0.1:${port}`, ns: true }] }],
    });

    const res = await get(proxy, registry.authority, `/v2/app/blobs/${digest}`);
    expect(res).toMatchObject({ status: 200, cache: 'MISS' });
    expect(res.body.equals(layer)).toBe(true);
    expect(blobGets(registry)).toBe(1);
    const inner = await proxy.waitForLog((l) => l.msg === 'request' && l['mode'] === 'mirror');
    expect(inner).toMatchObject({ status: 200, cache: 'bypass' });
    expect(await readFile(storedPath(proxy, digest))).toEqual(layer);
  });

  it('a tags: true mirror cannot make a tag name a manifest the registry does not have: the registry answers', async () => {
    const registry = await startFakeRegistry();
    const mirror = await startFakeRegistry();
    const real = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { size: 1 }, layers: [] };
    registry.addManifest('app', 'v1', real);
    // The mirror's own v1: nothing the registry ever had in app.
    const forged = mirror.addManifest('app', 'v1', { ...real, annotations: { forged: 'yes' } });
    const proxy = await startProxy({
      registries: [{ host: registry.authority, mirrors: [{ host: mirror.authority, tags: true }] }],
    });

    const res = await get(proxy, registry.authority, '/v2/app/manifests/v1', { accept: OCI_MANIFEST });
    expect(res).toMatchObject({ status: 200, cache: 'MISS' });
    expect(JSON.parse(res.body.toString())).toEqual(real);
    expect(registry.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `HEAD /v2/app/manifests/${forged}`,
      'HEAD /v2/app/manifests/v1',
      'GET /v2/app/manifests/v1',
    ]);
    expect(mirror.hits('GET', `/v2/app/manifests/${forged}`)).toBe(0);
    const labels = `registry="${registry.authority}",mirror="${mirror.authority}",reason="tag"`;
    expect(await metric(proxy, new RegExp(`^pullthrough_mirror_failures_total\\{${labels}\\}`))).toBe(1);
    const line = await proxy.waitForLog((l) => l.msg === 'request' && l['path'] === '/v2/app/manifests/v1');
    expect(line['source']).toBeUndefined();
  });

  it('gets an anonymous token from a mirror that wants one, and keeps it', async () => {
    const registry = await startFakeRegistry();
    const mirror = await startFakeRegistry();
    mirror.useTokenAuth({});
    const blobs = ['one', 'two'].map((text) => Buffer.from(`layer ${text}`));
    const digests = blobs.map((blob) => registry.addBlob(blob));
    for (const blob of blobs) mirror.addBlob(blob);
    const proxy = await startProxy({
      registries: [{ host: registry.authority, mirrors: [mirror.authority] }],
    });

    for (const [i, digest] of digests.entries()) {
      const res = await get(proxy, registry.authority, `/v2/app/blobs/${digest}`);
      expect(res).toMatchObject({ status: 200, cache: 'MISS' });
      expect(res.body.equals(blobs[i] ?? Buffer.alloc(0))).toBe(true);
    }
    expect(blobGets(registry)).toBe(0);
    expect(mirror.issued.map(({ user, scope }) => ({ user, scope }))).toEqual([
      { user: undefined, scope: 'repository:app:pull' },
    ]);
    const tokenRequests = mirror.requests.filter((r) => r.path.startsWith('/token'));
    expect(tokenRequests.map((r) => r.headers.authorization)).toEqual([undefined]);
  });
});
