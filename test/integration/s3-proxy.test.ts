// The real proxy with storage.type s3 against an S3 emulator (s3rver): a cold pull stores the
// image in the bucket (nothing in cache.dir's blobs/) and the second pull is a hit with no
// upstream GET; a corrupt blob leaves nothing in the bucket; redirect: true answers cached blob
// GETs with a 307 to a presigned URL; storage.front keeps hits on local disk; cache.maxSize
// bounds the bucket, evicting through it.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { admin } from '../helpers/admin.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startS3, type TestS3 } from '../helpers/s3.ts';
import { addImage, OCI_MANIFEST, sha256Of, type Image } from '../helpers/images.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const MiB = 1024 * 1024;

/** The manifest by tag, then config and layer; returns each response's X-Cache. */
async function pull(proxy: TestProxy, upstream: FakeRegistry, image: Image): Promise<string[]> {
  const manifest = await proxy.fetch(upstream.authority, `/v2/${image.name}/manifests/v1`, {
    headers: { accept: OCI_MANIFEST },
  });
  expect(manifest.statusCode).toBe(200);
  await manifest.body.dump();
  const caches = [String(manifest.headers['x-cache'])];
  for (const digest of [image.config, image.layer]) {
    const res = await proxy.fetch(upstream.authority, `/v2/${image.name}/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    expect(await sha256Of(res.body)).toBe(digest);
    caches.push(String(res.headers['x-cache']));
  }
  await proxy.app.fills.idle();
  return caches;
}

function blobKey(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return `blobs/sha256/${hex.slice(0, 2)}/${hex}`;
}

async function keys(s3: TestS3): Promise<string[]> {
  return (await s3.objects()).map((object) => object.key).sort();
}

describe('proxy on S3 storage', () => {
  it('stores a cold pull in the bucket and serves the second pull from it, with no upstream GET', async () => {
    const s3 = await startS3();
    const upstream = await startFakeRegistry();
    const image = addImage(upstream, 'lib/app', 12 * MiB);
    const proxy = await startProxy({ registries: [upstream.authority], storage: s3.storage() });
    await proxy.waitForLog((l) => l.msg === 'storage: s3 bucket ready');

    expect(await pull(proxy, upstream, image)).toEqual(['MISS', 'MISS', 'MISS']);
    const manifestHex = image.manifest.slice('sha256:'.length);
    expect(await keys(s3)).toEqual(
      [
        blobKey(image.manifest),
        blobKey(image.config),
        blobKey(image.layer),
        `manifests/sha256/${manifestHex.slice(0, 2)}/${manifestHex}.json`,
        `tags/${upstream.authority}/lib/app/_tags/v1.json`,
      ].sort(),
    );
    expect((await s3.objects()).find((o) => o.key === blobKey(image.layer))?.size).toBe(12 * MiB);
    // cache.dir keeps the index and empty temp space, never the bytes.
    expect(existsSync(path.join(proxy.dir, 'cache', 'blobs', 'sha256'))).toBe(false);
    expect(await readdir(path.join(proxy.dir, 'cache', 'tmp'))).toEqual([]);

    const gets = () =>
      upstream.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
    expect(gets()).toBe(2);
    // The tag is revalidated with a HEAD (tagTtl 0s), the bytes come from the bucket.
    expect(await pull(proxy, upstream, image)).toEqual(['REVALIDATED', 'HIT', 'HIT']);
    expect(gets()).toBe(2);

    const ranged = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${image.layer}`, {
      headers: { range: 'bytes=100-199' },
    });
    expect(ranged.statusCode).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes 100-199/${12 * MiB}`);
    expect((await ranged.body.arrayBuffer()).byteLength).toBe(100);
  });

  it('rebuilds a lost index from the bucket, so that its content counts again', async () => {
    const s3 = await startS3();
    const upstream = await startFakeRegistry();
    const image = addImage(upstream, 'lib/app', 3 * MiB);
    const first = await startProxy({ registries: [upstream.authority], storage: s3.storage() });
    await pull(first, upstream, image);
    await first.close();

    // A new replica, or a pod whose cache.dir was an emptyDir: no index.db at all.
    const second = await startProxy({ registries: [upstream.authority], storage: s3.storage() });
    const opened = await second.waitForLog((l) => l.msg === 'cache index open');
    expect(opened['state']).toBe('missing');
    expect(opened['rebuilt']).toMatchObject({ added: 3, tagsAdded: 1 });
    const gets = upstream.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
    expect(await pull(second, upstream, image)).toEqual(['REVALIDATED', 'HIT', 'HIT']);
    expect(upstream.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))).toHaveLength(
      gets,
    );
  });

  it('keeps a blob whose content does not match its digest out of the bucket', async () => {
    const s3 = await startS3();
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(randomBytes(9 * MiB));
    upstream.corruptBlobs(true);
    const proxy = await startProxy({ registries: [upstream.authority], storage: s3.storage() });
    const res = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    await expect(res.body.arrayBuffer()).rejects.toThrow();
    await proxy.app.fills.idle();
    await proxy.waitForLog((l) => l.msg === 'blob fill failed: nothing stored');
    expect(await keys(s3)).toEqual([]);
    expect(await readdir(path.join(proxy.dir, 'cache', 'tmp'))).toEqual([]);

    upstream.corruptBlobs(false);
    const retry = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    expect(retry.headers['x-cache']).toBe('MISS');
    expect(await sha256Of(retry.body)).toBe(digest);
    await proxy.app.fills.idle();
    expect(await keys(s3)).toEqual([blobKey(digest)]);
  });

  it('serves the client all the same when the bucket fails mid-fill, and says so', async () => {
    const s3 = await startS3();
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(randomBytes(20 * MiB));
    const release = upstream.holdBlobs(); // half now, half on release
    const proxy = await startProxy({ registries: [upstream.authority], storage: s3.storage() });
    const res = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    await s3.stop();
    release();
    expect(await sha256Of(res.body)).toBe(digest);
    await proxy.app.fills.idle();
    // Told as any cache write the store refused; the upload was aborted, the temp file removed.
    const failed = await proxy.waitForLog((l) => l.msg === 'cache not writable: serving without caching');
    expect(failed['code']).toBe('ECONNREFUSED');
    expect(await readdir(path.join(proxy.dir, 'cache', 'tmp'))).toEqual([]);
  });

  it('relays pulls from upstream while the bucket is unreachable, and says so', async () => {
    const s3 = await startS3();
    const upstream = await startFakeRegistry();
    const image = addImage(upstream, 'lib/app', 2 * MiB);
    const proxy = await startProxy({ registries: [upstream.authority], storage: s3.storage() });
    await s3.stop();
    // The manifest's write fails before it is sent; the blobs' headers go out before their uploads fail.
    expect(await pull(proxy, upstream, image)).toEqual(['BYPASS', 'MISS', 'MISS']);
    const failed = await proxy.waitForLog((l) => l.msg === 'cache not writable: serving without caching');
    expect(failed['code']).toBe('ECONNREFUSED');
    const readyz = await request(`${proxy.url}/readyz`);
    expect(await readyz.body.text()).toMatch(/^ready \(degraded: cache writes failing \(ECONNREFUSED\)/);
  });

  it('answers a cached blob GET with a 307 to a presigned URL when redirect is on', async () => {
    const s3 = await startS3();
    const upstream = await startFakeRegistry();
    const image = addImage(upstream, 'lib/app', 2 * MiB);
    const proxy = await startProxy({
      registries: [upstream.authority],
      storage: s3.storage({ redirect: true }),
    });
    expect(await pull(proxy, upstream, image)).toEqual(['MISS', 'MISS', 'MISS']);

    const hit = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${image.layer}`);
    expect(hit.statusCode).toBe(307);
    expect(hit.headers['docker-content-digest']).toBe(image.layer);
    await hit.body.dump();
    const location = String(hit.headers['location']);
    expect(location.startsWith(`${s3.endpoint}/${s3.bucket}/${blobKey(image.layer)}?`)).toBe(true);
    const followed = await fetch(location);
    expect(followed.status).toBe(200);
    expect(await sha256Of(followed.body as unknown as AsyncIterable<Uint8Array>)).toBe(image.layer);
    // A HEAD is answered by the proxy itself.
    const head = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${image.layer}`, {
      method: 'HEAD',
    });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe(String(2 * MiB));
    await head.body.dump();
    expect(upstream.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))).toHaveLength(2);
  });

  it('serves hits from the local front tier when storage.front.maxSize is set', async () => {
    const s3 = await startS3();
    const upstream = await startFakeRegistry();
    const image = addImage(upstream, 'lib/app', 3 * MiB);
    const proxy = await startProxy({
      registries: [upstream.authority],
      storage: { ...s3.storage(), front: { maxSize: '64MiB' } },
    });
    expect(await pull(proxy, upstream, image)).toEqual(['MISS', 'MISS', 'MISS']);
    const hex = image.layer.slice('sha256:'.length);
    expect(existsSync(path.join(proxy.dir, 'cache', 'front', 'sha256', hex))).toBe(true);
    // The layer's object removed behind the proxy's back: the local copy still serves it.
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: blobKey(image.layer) }));
    expect(await pull(proxy, upstream, image)).toEqual(['REVALIDATED', 'HIT', 'HIT']);
    expect(upstream.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))).toHaveLength(2);
  });

  it('purges an image from the bucket through the admin API, tag record included', async () => {
    const s3 = await startS3();
    const upstream = await startFakeRegistry();
    const [a, b] = ['lib/a', 'lib/b'].map((name) => addImage(upstream, name, MiB)) as [Image, Image];
    const token = 'admin-token-0123456789';
    const proxy = await startProxy({
      registries: [upstream.authority],
      admin: { token },
      storage: s3.storage(),
    });
    await pull(proxy, upstream, a);
    await pull(proxy, upstream, b);
    const purged = await admin(
      proxy,
      'DELETE',
      `/admin/images?registry=${upstream.authority}&repository=lib/a&tag=v1`,
      token,
    );
    expect(purged.body).toMatchObject({ tags: 1, images: 1, files: 3 });
    const left = await keys(s3);
    for (const digest of [a.manifest, a.config, a.layer]) expect(left).not.toContain(blobKey(digest));
    expect(left).not.toContain(`tags/${upstream.authority}/lib/a/_tags/v1.json`);
    expect(left).toContain(`tags/${upstream.authority}/lib/b/_tags/v1.json`);
    expect(left).toContain(blobKey(b.layer));
    expect(await pull(proxy, upstream, a)).toEqual(['MISS', 'MISS', 'MISS']);
  });

  it('bounds the bucket by cache.maxSize, deleting evicted images from it', async () => {
    const s3 = await startS3();
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({
      registries: [upstream.authority],
      cache: { maxSize: '10MiB', minFree: '0%' },
      storage: s3.storage(),
    });
    const [a, b, c] = ['lib/a', 'lib/b', 'lib/c'].map((name) => addImage(upstream, name, 3.2 * MiB)) as [
      Image,
      Image,
      Image,
    ];
    await pull(proxy, upstream, a);
    await pull(proxy, upstream, b);
    await pull(proxy, upstream, a); // a is now more recent than b
    await pull(proxy, upstream, c); // 9.6 MiB: past 95 % of 10 MiB
    const evicted = await proxy.waitForLog((l) => l.msg === 'evicted');
    expect(evicted['digest']).toBe(b.manifest);
    await proxy.waitForLog((l) => l.msg === 'eviction pass');
    const left = await keys(s3);
    for (const digest of [b.manifest, b.config, b.layer]) expect(left).not.toContain(blobKey(digest));
    expect(left).not.toContain(`tags/${upstream.authority}/lib/b/_tags/v1.json`);
    for (const digest of [a.layer, c.layer, c.manifest]) expect(left).toContain(blobKey(digest));
    expect(await pull(proxy, upstream, b)).toEqual(['MISS', 'MISS', 'MISS']);
  });
});
