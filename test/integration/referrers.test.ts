// Referrers and signatures through the cache: the OCI 1.1 referrers API passed through and
// kept like a tag (revalidated, served stale, filtered by artifactType, private kept private), a
// registry without the API answering 404 so that clients fall back to `sha256-<hex>` tags, and
// cosign-style artifacts (artifactType, subject, empty config, cosign layers) cached as manifests;
// and the records removed with their subject, by a purge and by eviction.
import { readdir } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import nodePath from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { admin } from '../helpers/admin.ts';
import { addImage, pullImage, type Image } from '../helpers/images.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { sha256, startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const EMPTY = 'application/vnd.oci.empty.v1+json';
const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SBOM = 'application/spdx+json';
const SUBJECT = sha256('the image manifest');

const descriptor = (artifactType: string, n: number) => ({
  mediaType: OCI_MANIFEST,
  digest: sha256(`artifact ${n}`),
  size: 100 + n,
  artifactType,
});

/** An upstream referrers endpoint as distribution 3 / zot implement it, filter included. */
function referrersApi(artifacts: () => object[], authorization?: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (authorization !== undefined && req.headers.authorization !== authorization) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="https://x/token"', 'content-length': 0 });
      return res.end();
    }
    const filter = new URL(req.url ?? '/', 'https://x').searchParams.get('artifactType');
    const manifests = artifacts().filter(
      (entry) => filter === null || (entry as { artifactType: string }).artifactType === filter,
    );
    const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
    res.writeHead(200, {
      'content-type': OCI_INDEX,
      'content-length': Buffer.byteLength(body),
      ...(filter === null ? {} : { 'oci-filters-applied': 'artifactType' }),
    });
    res.end(body);
  };
}

async function get(proxy: TestProxy, upstream: FakeRegistry, path: string, authorization?: string) {
  const res = await proxy.fetch(upstream.authority, path, {
    headers: { accept: OCI_INDEX, ...(authorization ? { authorization } : {}) },
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    cache: res.headers['x-cache'],
    filters: res.headers['oci-filters-applied'],
    warning: res.headers['warning'],
    manifests: res.statusCode === 200 ? (JSON.parse(text) as { manifests: unknown[] }).manifests : [],
  };
}

const path = `/v2/lib/app/referrers/${SUBJECT}`;

describe('referrers API', () => {
  it('passes the index through, keeps it like a tag, and serves it stale when upstream is down', async () => {
    const upstream = await startFakeRegistry();
    const artifacts = [descriptor(SIG, 1)];
    upstream.route(
      path,
      referrersApi(() => artifacts),
    );
    const proxy = await startProxy({ registries: [upstream.authority] });

    expect(await get(proxy, upstream, path)).toMatchObject({
      status: 200,
      cache: 'MISS',
      manifests: artifacts,
    });
    expect(await get(proxy, upstream, path)).toMatchObject({ cache: 'REVALIDATED', manifests: artifacts });
    // A new signature is pushed: the next request sees it (the index changes over time).
    artifacts.push(descriptor(SBOM, 2));
    expect(await get(proxy, upstream, path)).toMatchObject({ cache: 'MISS', manifests: artifacts });
    expect(upstream.hits('GET', path)).toBe(3);

    await upstream.close();
    const stale = await get(proxy, upstream, path);
    expect(stale).toMatchObject({
      status: 200,
      cache: 'STALE',
      warning: '110 pullthrough "Response is Stale"',
      manifests: artifacts,
    });
    await proxy.waitForLog((l) => l.msg === 'serving stale referrers' && l['subject'] === SUBJECT);
    // Nothing cached for another subject: no index is made up.
    const other = await get(proxy, upstream, `/v2/lib/app/referrers/${sha256('other')}`);
    expect(other.status).toBe(502);
  });

  it('caches each artifactType filter on its own, within tagTtl without asking upstream', async () => {
    const upstream = await startFakeRegistry();
    const artifacts = [descriptor(SIG, 1), descriptor(SBOM, 2)];
    upstream.route(
      path,
      referrersApi(() => artifacts),
    );
    const proxy = await startProxy({ registries: [{ host: upstream.authority, tagTtl: '1h' }] });
    const filtered = `${path}?artifactType=${encodeURIComponent(SIG)}`;

    expect(await get(proxy, upstream, filtered)).toMatchObject({
      cache: 'MISS',
      filters: 'artifactType',
      manifests: [artifacts[0]],
    });
    expect(await get(proxy, upstream, path)).toMatchObject({ cache: 'MISS', manifests: artifacts });
    expect(await get(proxy, upstream, filtered)).toMatchObject({
      cache: 'HIT',
      filters: 'artifactType',
      manifests: [artifacts[0]],
    });
    const all = await get(proxy, upstream, path);
    expect(all).toMatchObject({ cache: 'HIT', manifests: artifacts });
    expect(all.filters).toBeUndefined();
    expect(upstream.requests.filter((r) => r.path.startsWith(path))).toHaveLength(2);
  });

  it('keeps a private index private: anonymous clients get upstream refusal, online and offline', async () => {
    const upstream = await startFakeRegistry();
    const artifacts = [descriptor(SIG, 1)];
    upstream.route(
      path,
      referrersApi(() => artifacts, 'Bearer alice'),
    );
    const proxy = await startProxy({ registries: [{ host: upstream.authority, tagTtl: '1h' }] });

    expect(await get(proxy, upstream, path, 'Bearer alice')).toMatchObject({ status: 200, cache: 'MISS' });
    expect(await get(proxy, upstream, path, 'Bearer alice')).toMatchObject({ status: 200, cache: 'HIT' });
    // Within tagTtl too, an anonymous client is not served what alice was: upstream is asked.
    expect(await get(proxy, upstream, path)).toMatchObject({ status: 401, manifests: [] });

    await upstream.close();
    expect((await get(proxy, upstream, path)).status).toBe(401);
    expect(await get(proxy, upstream, path, 'Bearer alice')).toMatchObject({ status: 200, cache: 'HIT' });
  });

  it('passes on the 404 of a registry without the API and caches the sha256-<hex>.sig fallback tag', async () => {
    const upstream = await startFakeRegistry();
    const signature = upstream.addBlob(Buffer.from('{"critical":{"identity":{}}}'));
    const empty = upstream.addBlob(Buffer.from('{}'));
    const sig = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SIG,
      config: { mediaType: EMPTY, digest: empty, size: 2 },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: signature,
          size: 28,
          annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ' },
        },
      ],
      subject: { mediaType: OCI_MANIFEST, digest: SUBJECT, size: 18 },
    };
    const tag = `sha256-${SUBJECT.slice('sha256:'.length)}.sig`;
    const sigDigest = upstream.addManifest('lib/app', tag, sig);
    const proxy = await startProxy({ registries: [upstream.authority] });

    const missing = await get(proxy, upstream, path);
    expect(missing.status).toBe(404);

    const pull = async (p: string) => {
      const res = await proxy.fetch(upstream.authority, p, { headers: { accept: OCI_MANIFEST } });
      const body = Buffer.from(await res.body.arrayBuffer());
      return {
        status: res.statusCode,
        cache: res.headers['x-cache'],
        type: res.headers['content-type'],
        body,
      };
    };
    const first = await pull(`/v2/lib/app/manifests/${tag}`);
    expect(first).toMatchObject({ status: 200, cache: 'MISS', type: OCI_MANIFEST });
    expect(sha256(first.body)).toBe(sigDigest);
    expect(await pull(`/v2/lib/app/manifests/${tag}`)).toMatchObject({ cache: 'REVALIDATED' });
    expect(await pull(`/v2/lib/app/manifests/${sigDigest}`)).toMatchObject({ cache: 'HIT' });
    for (const digest of [signature, empty]) {
      expect(await pull(`/v2/lib/app/blobs/${digest}`)).toMatchObject({ status: 200, cache: 'MISS' });
      await proxy.app.fills.idle();
      expect(await pull(`/v2/lib/app/blobs/${digest}`)).toMatchObject({ status: 200, cache: 'HIT' });
    }
    expect(upstream.hits('GET', `/v2/lib/app/blobs/${signature}`)).toBe(1);
  });
});

/** Record files of a repository's referrers (tags/<host>/<repo>/_referrers/). */
async function referrersFiles(
  proxy: TestProxy,
  upstream: FakeRegistry,
  repository: string,
): Promise<string[]> {
  const dir = nodePath.join(proxy.dir, 'cache', 'tags', upstream.authority, repository, '_referrers');
  return (await readdir(dir).catch(() => [])).sort();
}

describe('referrers records go with their subject', () => {
  const TOKEN = 'admin-token-0123456789';

  it('a purge of the subject image removes its records, so the next request asks upstream', async () => {
    const upstream = await startFakeRegistry();
    const image = addImage(upstream, 'lib/app', 1000);
    const other = addImage(upstream, 'lib/other', 1000);
    const paths = [image, other].map((i) => `/v2/${i.name}/referrers/${i.manifest}`) as [string, string];
    for (const p of paths)
      upstream.route(
        p,
        referrersApi(() => [descriptor(SIG, 1)]),
      );
    const registries = [{ host: upstream.authority, tagTtl: '1h' }];
    const proxy = await startProxy({ registries, admin: { token: TOKEN } });
    await pullImage(proxy, upstream, image);
    await pullImage(proxy, upstream, other);
    const filtered = `${paths[0]}?artifactType=${encodeURIComponent(SIG)}`;
    for (const p of [paths[0], filtered, paths[1]])
      expect((await get(proxy, upstream, p)).cache).toBe('MISS');
    expect(await referrersFiles(proxy, upstream, 'lib/app')).toHaveLength(2); // unfiltered and filtered
    expect((await get(proxy, upstream, paths[0])).cache).toBe('HIT'); // fresh: upstream not asked

    const query = `registry=${upstream.authority}&repository=lib/app&tag=v1`;
    const purged = await request(`${proxy.url}/admin/images?${query}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(purged.statusCode).toBe(200);
    expect(await purged.body.json()).toMatchObject({ tags: 1, images: 1 });
    expect(await referrersFiles(proxy, upstream, 'lib/app')).toEqual([]);
    expect(await referrersFiles(proxy, upstream, 'lib/other')).toHaveLength(1); // another subject stays

    const before = upstream.hits('GET', paths[0]);
    expect(await get(proxy, upstream, paths[0])).toMatchObject({ status: 200, cache: 'MISS' });
    expect(upstream.hits('GET', paths[0])).toBe(before + 1);
    expect((await get(proxy, upstream, paths[1])).cache).toBe('HIT');

    // A purge of the whole repository takes every record in it, subject cached or not.
    const uncached = `/v2/lib/other/referrers/${SUBJECT}`;
    upstream.route(
      uncached,
      referrersApi(() => [descriptor(SBOM, 2)]),
    );
    expect((await get(proxy, upstream, uncached)).cache).toBe('MISS');
    expect(await referrersFiles(proxy, upstream, 'lib/other')).toHaveLength(2);
    const whole = await admin(
      proxy,
      'DELETE',
      `/admin/images?registry=${upstream.authority}&repository=lib/other`,
      TOKEN,
    );
    expect(whole.status).toBe(200);
    expect(await referrersFiles(proxy, upstream, 'lib/other')).toEqual([]);
  });

  it('eviction of the subject image removes its records', async () => {
    const upstream = await startFakeRegistry();
    const MiB = 1024 * 1024;
    const [a, b, c] = ['lib/a', 'lib/b', 'lib/c'].map((name) => addImage(upstream, name, 3.2 * MiB)) as [
      Image,
      Image,
      Image,
    ];
    const paths = [a, b].map((i) => `/v2/${i.name}/referrers/${i.manifest}`) as [string, string];
    for (const p of paths)
      upstream.route(
        p,
        referrersApi(() => [descriptor(SIG, 1)]),
      );
    const registries = [{ host: upstream.authority, tagTtl: '1h' }];
    const proxy = await startProxy({ registries, cache: { maxSize: '10MiB', minFree: '0%' } });
    await pullImage(proxy, upstream, b);
    await pullImage(proxy, upstream, a);
    for (const p of paths) expect((await get(proxy, upstream, p)).cache).toBe('MISS');
    await pullImage(proxy, upstream, c); // 9.6 MiB: past 95 % of 10 MiB, b is the oldest image

    const evicted = await proxy.waitForLog((l) => l.msg === 'evicted' && l['digest'] === b.manifest);
    expect(evicted['reason']).toBe('cap');
    await proxy.waitForLog((l) => l.msg === 'eviction pass');
    expect(await referrersFiles(proxy, upstream, 'lib/b')).toEqual([]);
    expect(await referrersFiles(proxy, upstream, 'lib/a')).toHaveLength(1);
    const before = upstream.hits('GET', paths[1]);
    expect((await get(proxy, upstream, paths[1])).cache).toBe('MISS');
    expect(upstream.hits('GET', paths[1])).toBe(before + 1);
  });
});
