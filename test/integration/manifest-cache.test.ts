// Manifests: by digest cached and verified; by tag revalidated with HEAD (never a GET for a
// client HEAD), served from cache when unchanged, stale when upstream cannot answer.
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { sha256, startFakeRegistry } from '../helpers/upstream.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

function manifest(n: number): object {
  return { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { size: n }, layers: [] };
}

describe('manifest cache', () => {
  it('fetches a manifest by digest once and serves GET and HEAD from the cache', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addManifest('lib/app', 'v1', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority] });
    const path = `/v2/lib/app/manifests/${digest}`;

    const first = await proxy.fetch(upstream.authority, path, { headers: { accept: OCI_MANIFEST } });
    expect(first.statusCode).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.headers['content-type']).toBe(OCI_MANIFEST);
    expect(await first.body.json()).toEqual(manifest(1));

    const second = await proxy.fetch(upstream.authority, path, { headers: { accept: OCI_MANIFEST } });
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers['docker-content-digest']).toBe(digest);
    expect(await second.body.json()).toEqual(manifest(1));
    const head = await proxy.fetch(upstream.authority, path, { method: 'HEAD' });
    expect(head.headers['x-cache']).toBe('HIT');
    await head.body.dump();
    expect(upstream.requests.map((r) => r.method)).toEqual(['GET']);
    await proxy.waitForLog((l) => l.msg === 'request' && l['method'] === 'HEAD');
    const lines = proxy.logs.filter((l) => l.msg === 'request');
    expect(lines.map((l) => [l['cache'], l['aborted']])).toEqual([
      ['miss', undefined],
      ['hit', undefined],
      ['hit', undefined],
    ]);
  });

  it('refuses a manifest that does not match the digest asked for, and stores nothing', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'v1', manifest(1));
    const wrong = sha256('something else');
    const proxy = await startProxy({ registries: [upstream.authority] });
    upstream.route(`/v2/lib/app/manifests/${wrong}`, (_req, res) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST }).end(JSON.stringify(manifest(2)));
    });
    for (let i = 0; i < 2; i += 1) {
      const res = await proxy.fetch(upstream.authority, `/v2/lib/app/manifests/${wrong}`);
      expect(res.statusCode).toBe(502);
      expect(((await res.body.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe(
        'MANIFEST_INVALID',
      );
    }
    expect(upstream.requests).toHaveLength(2);
  });

  it('revalidates a tag with HEAD and serves the cached manifest when the digest is unchanged', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'latest', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority] });
    const path = '/v2/lib/app/manifests/latest';

    const first = await proxy.fetch(upstream.authority, path, { headers: { accept: OCI_MANIFEST } });
    expect(first.headers['x-cache']).toBe('MISS');
    await first.body.dump();
    const second = await proxy.fetch(upstream.authority, path, { headers: { accept: OCI_MANIFEST } });
    expect(second.headers['x-cache']).toBe('REVALIDATED');
    expect(await second.body.json()).toEqual(manifest(1));
    expect(upstream.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `HEAD ${path}`,
      `GET ${path}`,
      `HEAD ${path}`,
    ]);
    expect(upstream.requests[2]?.headers.accept).toBe(OCI_MANIFEST);
  });

  it('fetches the new manifest when the tag moved upstream', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'latest', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority] });
    await (await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest')).body.dump();
    const moved = upstream.addManifest('lib/app', 'latest', manifest(2));
    const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest');
    expect(res.headers['x-cache']).toBe('MISS');
    expect(res.headers['docker-content-digest']).toBe(moved);
    expect(await res.body.json()).toEqual(manifest(2));
  });

  it('never turns a client HEAD on a tag into an upstream GET', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'latest', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority] });
    const cold = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest', { method: 'HEAD' });
    expect(cold.statusCode).toBe(200);
    expect(cold.headers['docker-content-digest']).toMatch(/^sha256:/);
    await cold.body.dump();
    await (await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest')).body.dump();
    const warm = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest', { method: 'HEAD' });
    expect(warm.headers['x-cache']).toBe('REVALIDATED');
    await warm.body.dump();
    expect(upstream.requests.filter((r) => r.method === 'GET')).toHaveLength(1);
  });

  it('serves HEAD-then-digest clients (dockerd, containerd) from the cache, offline too', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addManifest('lib/app', 'v1', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority] });
    const pull = async () => {
      const head = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/v1', { method: 'HEAD' });
      expect(head.statusCode).toBe(200);
      expect(head.headers['docker-content-digest']).toBe(digest);
      await head.body.dump();
      const get = await proxy.fetch(upstream.authority, `/v2/lib/app/manifests/${digest}`);
      expect(await get.body.json()).toEqual(manifest(1));
      return [head.headers['x-cache'], get.headers['x-cache']];
    };
    expect(await pull()).toEqual([undefined, 'MISS']);
    expect(await pull()).toEqual(['REVALIDATED', 'HIT']);
    await upstream.close();
    expect(await pull()).toEqual(['STALE', 'HIT']);
    expect(upstream.requests.filter((r) => r.method === 'GET')).toHaveLength(1);
  });

  it('goes upstream when the cached media type is not in the client Accept', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'latest', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority] });
    await (
      await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest', {
        headers: { accept: OCI_MANIFEST },
      })
    ).body.dump();
    const other = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest', {
      headers: { accept: DOCKER_LIST },
    });
    expect(other.headers['x-cache']).toBe('MISS');
    await other.body.dump();
    expect(upstream.requests.filter((r) => r.method === 'GET')).toHaveLength(2);
    expect(upstream.requests.at(-1)?.headers.accept).toBe(DOCKER_LIST);
  });

  it('serves a cached tag stale when upstream is down, and UNAVAILABLE when nothing is cached', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'latest', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority] });
    await (await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest')).body.dump();
    await upstream.close();

    const stale = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest');
    expect(stale.statusCode).toBe(200);
    expect(stale.headers['x-cache']).toBe('STALE');
    expect(stale.headers['warning']).toContain('110');
    expect(await stale.body.json()).toEqual(manifest(1));
    await proxy.waitForLog((l) => l.msg === 'serving stale tag' && l['tag'] === 'latest');

    const missing = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/other');
    expect(missing.statusCode).toBe(502);
    expect(((await missing.body.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe(
      'UNAVAILABLE',
    );
  });

  it.each([503, 429])('serves a cached tag stale when upstream answers %i', async (status) => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'latest', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority] });
    await (await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest')).body.dump();
    upstream.failNext(status);
    const stale = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest');
    expect(stale.headers['x-cache']).toBe('STALE');
    await stale.body.dump();

    upstream.failNext(status);
    const uncached = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/never-pulled');
    expect(uncached.statusCode).toBe(status);
    if (status === 429) expect(uncached.headers['retry-after']).toBe('7');
    await uncached.body.dump();
  });

  it('does not serve stale content older than maxStale', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'latest', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority], cache: { maxStale: '0s' } });
    await (await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest')).body.dump();
    await upstream.close();
    const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest');
    expect(res.statusCode).toBe(502);
    await res.body.dump();
  });

  it('serves a tag within tagTtl without asking upstream (ENABLE_MANIFEST_CACHE)', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'latest', manifest(1));
    const proxy = await startProxy({ registries: [upstream.authority] }, { ENABLE_MANIFEST_CACHE: 'true' });
    await (await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest')).body.dump();
    const before = upstream.requests.length;
    const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/latest');
    expect(res.headers['x-cache']).toBe('HIT');
    await res.body.dump();
    expect(upstream.requests.length).toBe(before);
  });

  it('takes tag freshness per registry, falling back to the cache-wide setting', async () => {
    const cached = await startFakeRegistry();
    const asked = await startFakeRegistry();
    cached.addManifest('lib/app', 'latest', manifest(1));
    asked.addManifest('lib/app', 'latest', manifest(1));
    const proxy = await startProxy({
      registries: [{ host: cached.authority, tagTtl: '1h' }, asked.authority],
    });
    for (const registry of [cached, asked]) {
      for (let i = 0; i < 2; i += 1)
        await (await proxy.fetch(registry.authority, '/v2/lib/app/manifests/latest')).body.dump();
    }
    expect(cached.requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
    expect(asked.requests.map((r) => r.method)).toEqual(['HEAD', 'GET', 'HEAD']);
  });

  it('refuses a manifest larger than maxManifestSize', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'big', { ...manifest(1), padding: 'x'.repeat(5000) });
    const proxy = await startProxy({ registries: [upstream.authority], cache: { maxManifestSize: '4KiB' } });
    const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/big');
    expect(res.statusCode).toBe(502);
    expect(((await res.body.json()) as { errors: Array<{ message: string }> }).errors[0]?.message).toContain(
      'maxManifestSize',
    );
  });

  it('refuses an oversized manifest sent without Content-Length, without buffering it', async () => {
    const upstream = await startFakeRegistry();
    upstream.route('/v2/lib/app/manifests/chunked', (req, res) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha256('x') });
      if (req.method === 'HEAD') return res.end();
      for (let i = 0; i < 64; i += 1) res.write('x'.repeat(1024));
      res.end();
    });
    const proxy = await startProxy({ registries: [upstream.authority], cache: { maxManifestSize: '4KiB' } });
    const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/chunked');
    expect(res.statusCode).toBe(502);
    expect(((await res.body.json()) as { errors: Array<{ message: string }> }).errors[0]?.message).toContain(
      'maxManifestSize',
    );
  });

  it('passes the upstream 401 challenge to a client without credentials for a private tag', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('private/app', 'latest', manifest(1));
    upstream.requireToken('alice');
    const proxy = await startProxy({ registries: [upstream.authority] });
    const alice = await proxy.fetch(upstream.authority, '/v2/private/app/manifests/latest', {
      headers: { authorization: 'Bearer alice' },
    });
    expect(alice.statusCode).toBe(200);
    await alice.body.dump();
    const anonymous = await proxy.fetch(upstream.authority, '/v2/private/app/manifests/latest');
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer realm=/);
    await anonymous.body.dump();

    await upstream.close();
    const offline = await proxy.fetch(upstream.authority, '/v2/private/app/manifests/latest');
    expect(offline.statusCode).toBe(401);
    await offline.body.dump();
    const aliceOffline = await proxy.fetch(upstream.authority, '/v2/private/app/manifests/latest', {
      headers: { authorization: 'Bearer alice' },
    });
    expect(aliceOffline.headers['x-cache']).toBe('STALE');
    await aliceOffline.body.dump();
  });
});
