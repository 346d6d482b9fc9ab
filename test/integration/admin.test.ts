// The admin API on the proxy port through the real proxy and a fake upstream: the listing after
// pulls, purging a tag (the next pull goes upstream again), a layer shared with an image that
// stays is kept, an eviction pass on demand, and refusals: no token, a wrong one, and 404 for
// all of /admin/ when no token is configured.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import type { RegistryListing } from '../../src/cache/catalog.ts';
import { admin as adminRequest } from '../helpers/admin.ts';
import { OCI_MANIFEST, pushImage } from '../helpers/images.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const TOKEN = 'admin-token-0123456789';

interface Image {
  readonly name: string;
  readonly tag: string;
  readonly manifest: string;
  readonly blobs: readonly string[];
  readonly size: number;
}

/** An image of a config and `layers`, pushed to the fake upstream as `name:tag`. */
function addImage(upstream: FakeRegistry, name: string, tag: string, layers: Buffer[]): Image {
  const pushed = pushImage(upstream, name, tag, layers, { tag });
  const size = pushed.manifestSize + pushed.configSize + layers.reduce((sum, l) => sum + l.length, 0);
  return { name, tag, manifest: pushed.manifest, blobs: [pushed.config, ...pushed.layers], size };
}

/** Pulls as a client does: the manifest by tag, then every blob. */
async function pull(proxy: TestProxy, upstream: FakeRegistry, image: Image): Promise<void> {
  const manifest = await proxy.fetch(upstream.authority, `/v2/${image.name}/manifests/${image.tag}`, {
    headers: { accept: OCI_MANIFEST },
  });
  expect(manifest.statusCode).toBe(200);
  await manifest.body.dump();
  for (const digest of image.blobs) {
    const res = await proxy.fetch(upstream.authority, `/v2/${image.name}/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    const hash = createHash('sha256');
    for await (const chunk of res.body) hash.update(chunk as Buffer);
    expect(`sha256:${hash.digest('hex')}`).toBe(digest);
  }
  await proxy.app.fills.idle();
}

/** An admin request with the test's token unless another (or null, none) is given. */
const admin = (proxy: TestProxy, method: string, urlPath: string, token: string | null = TOKEN) =>
  adminRequest(proxy, method, urlPath, token);

/** The repositories a listing names, in its order. */
function repositories(body: Record<string, unknown>): string[] {
  return (body['registries'] as RegistryListing[]).flatMap((r) =>
    r.repositories.map((repo) => repo.repository),
  );
}

function blobFile(proxy: TestProxy, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(proxy.dir, 'cache', 'blobs', 'sha256', hex.slice(0, 2), hex);
}

describe('admin API', () => {
  it('lists pulled images, purges a tag so the next pull goes upstream, and keeps a shared layer', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority], admin: { token: TOKEN } });
    const shared = randomBytes(4096);
    const a = addImage(upstream, 'lib/a', 'v1', [shared, randomBytes(1000)]);
    const b = addImage(upstream, 'lib/b', 'v2', [shared, randomBytes(2000)]);
    await pull(proxy, upstream, a);
    await pull(proxy, upstream, b);

    const listed = await admin(proxy, 'GET', '/admin/images');
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({
      registries: [
        {
          registry: upstream.authority,
          repositories: [
            {
              repository: 'lib/a',
              tags: [expect.objectContaining({ tag: 'v1', digest: a.manifest, size: a.size })],
            },
            {
              repository: 'lib/b',
              tags: [expect.objectContaining({ tag: 'v2', digest: b.manifest, size: b.size })],
            },
          ],
        },
      ],
    });
    const tagA = (listed.body['registries'] as RegistryListing[])[0]?.repositories[0]?.tags[0];
    expect(tagA?.mediaType).toBe(OCI_MANIFEST);
    expect(tagA?.lastUsed).toBeGreaterThan(Date.now() - 60_000);
    const filtered = await admin(
      proxy,
      'GET',
      `/admin/images?registry=${upstream.authority}&repository=lib/b`,
    );
    expect(repositories(filtered.body)).toEqual(['lib/b']);

    const summary = await admin(proxy, 'GET', '/admin/cache');
    expect(summary.body).toMatchObject({ files: 7, manifests: 2, tags: 2, images: 2 });
    expect(summary.body['bytes']).toBe(a.size + b.size - shared.length);
    expect(summary.body['maxSize']).toBeGreaterThan(0);

    const purged = await admin(
      proxy,
      'DELETE',
      `/admin/images?registry=${upstream.authority}&repository=lib/a&tag=v1`,
    );
    expect(purged.status).toBe(200);
    expect(purged.body).toMatchObject({ tags: 1, images: 1, files: 3, inUse: [] });
    expect(purged.body['bytes']).toBe(a.size - shared.length);
    const logged = await proxy.waitForLog((line) => line.msg === 'admin purge');
    expect(logged).toMatchObject({ repository: 'lib/a', tag: 'v1', tags: 1, images: 1, files: 3 });
    expect(existsSync(blobFile(proxy, a.manifest))).toBe(false);
    expect(existsSync(blobFile(proxy, a.blobs[2]!))).toBe(false);
    expect(existsSync(blobFile(proxy, a.blobs[1]!))).toBe(true); // shared with lib/b:v2
    for (const digest of [b.manifest, ...b.blobs]) expect(existsSync(blobFile(proxy, digest))).toBe(true);
    const after = await admin(proxy, 'GET', '/admin/images');
    expect(repositories(after.body)).toEqual(['lib/b']);

    const ownLayer = `/v2/lib/a/blobs/${a.blobs[2]}`;
    const sharedLayer = `/v2/lib/a/blobs/${a.blobs[1]}`;
    const before = [upstream.hits('GET', ownLayer), upstream.hits('GET', sharedLayer)];
    const tagGets = upstream.hits('GET', '/v2/lib/a/manifests/v1');
    await pull(proxy, upstream, a);
    expect(upstream.hits('GET', '/v2/lib/a/manifests/v1')).toBe(tagGets + 1);
    expect(upstream.hits('GET', ownLayer)).toBe(before[0]! + 1);
    expect(upstream.hits('GET', sharedLayer)).toBe(before[1]); // still cached
  });

  it('purges a whole registry and everything, and runs an eviction pass on demand', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority], admin: { token: TOKEN } });
    const a = addImage(upstream, 'lib/a', 'v1', [randomBytes(1000)]);
    await pull(proxy, upstream, a);

    const pass = await admin(proxy, 'POST', '/admin/evict');
    expect(pass.status).toBe(200);
    expect(pass.body).toMatchObject({ evicted: [], freedBytes: 0, unmet: [] });

    expect((await admin(proxy, 'DELETE', '/admin/images')).status).toBe(400); // registry= required
    const purged = await admin(proxy, 'DELETE', `/admin/images?registry=${upstream.authority}`);
    expect(purged.body).toMatchObject({ tags: 1, images: 1, files: 3 });
    expect(await admin(proxy, 'GET', '/admin/cache')).toMatchObject({ body: { bytes: 0, files: 0 } });

    await pull(proxy, upstream, a);
    const all = await admin(proxy, 'DELETE', '/admin/cache');
    expect(all.body).toMatchObject({ tags: 1, images: 1, files: 3, bytes: a.size });
    expect((await admin(proxy, 'GET', '/admin/images')).body).toEqual({ registries: [] });
  });

  it('pins an image at run time, across a restart, and unpins it', async () => {
    const upstream = await startFakeRegistry();
    const cacheDir = path.join(await tempDir(), 'cache');
    const cache = { dir: cacheDir, maxSize: '10MiB', minFree: '0%' };
    const proxy = await startProxy({ registries: [upstream.authority], admin: { token: TOKEN }, cache });
    const [a, b, c] = ['lib/a', 'lib/b', 'lib/c'].map((name) =>
      addImage(upstream, name, 'v1', [randomBytes(Math.round(3.2 * 1024 * 1024))]),
    ) as [Image, Image, Image];
    const pin = `${upstream.authority}/lib/a:v1`;
    expect((await admin(proxy, 'POST', `/admin/pins?ref=${encodeURIComponent(pin)}`)).body).toEqual({
      runtime: [pin],
    });
    expect((await admin(proxy, 'POST', '/admin/pins?ref=Not%20A%20Pin')).status).toBe(400);
    await pull(proxy, upstream, a);
    await pull(proxy, upstream, b);
    await pull(proxy, upstream, c); // past 95 %: a is the least recently used, but pinned
    const evicted = await proxy.waitForLog((l) => l.msg === 'evicted');
    expect(evicted['digest']).toBe(b.manifest);
    await proxy.close();

    const again = await startProxy({ registries: [upstream.authority], admin: { token: TOKEN }, cache });
    expect((await admin(again, 'GET', '/admin/pins')).body).toEqual({ config: [], runtime: [pin] });
    const unpinned = await admin(again, 'DELETE', `/admin/pins?ref=${encodeURIComponent(pin)}`);
    expect(unpinned.body).toEqual({ runtime: [], removed: true });
    await pull(again, upstream, b); // past the mark again: now a, unpinned and oldest, goes
    await again.waitForLog((l) => l.msg === 'evicted' && l['digest'] === a.manifest);
  });

  it('serves /metrics and /admin/ only on admin.listen when it is set', async () => {
    const proxy = await startProxy({ admin: { token: TOKEN, listen: '127.0.0.1:0' } });
    const adminUrl = `http://127.0.0.1:${proxy.app.adminAddress?.port}`;
    const get = async (url: string, token?: string) => {
      const res = await request(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      await res.body.dump();
      return res.statusCode;
    };
    expect(await get(`${adminUrl}/metrics`)).toBe(200);
    expect(await get(`${adminUrl}/admin/cache`, TOKEN)).toBe(200);
    expect(await get(`${adminUrl}/admin/cache`)).toBe(401);
    expect(await get(`${adminUrl}/readyz`)).toBe(200);
    // The proxy port, which clients use, no longer serves them.
    expect(await get(`${proxy.url}/metrics`)).toBe(404);
    expect(await get(`${proxy.url}/admin/cache`, TOKEN)).toBe(404);
    expect(await get(`${proxy.url}/readyz`)).toBe(200);
    await proxy.close();
    await expect(get(`${adminUrl}/metrics`)).rejects.toThrow();
  });

  it('refuses without a token and with a wrong one, in the same way', async () => {
    const proxy = await startProxy({ admin: { token: TOKEN } });
    for (const token of [null, 'wrong', `${TOKEN}x`, '']) {
      const res = await admin(proxy, 'GET', '/admin/cache', token);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(res.body).toEqual({ error: 'a valid admin token is needed' });
    }
    expect((await admin(proxy, 'DELETE', '/admin/cache', 'wrong')).status).toBe(401);
    expect((await admin(proxy, 'GET', '/admin/cache')).status).toBe(200);
    expect((await admin(proxy, 'GET', '/admin/nope')).status).toBe(404);
    expect((await admin(proxy, 'PUT', '/admin/cache')).status).toBe(405);
  });

  it('answers 404 for all of /admin/ when no token is configured', async () => {
    const proxy = await startProxy();
    for (const [method, urlPath] of [
      ['GET', '/admin/cache'],
      ['DELETE', '/admin/cache'],
      ['POST', '/admin/evict'],
      ['GET', '/admin/'],
    ] as const) {
      const res = await admin(proxy, method, urlPath);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ error: 'not found' });
    }
  });
});
