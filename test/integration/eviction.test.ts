// A bounded cache through the real proxy: whole images evicted least recently used first once
// usage passes 95 % of cache.maxSize, down to 90 %; pins kept; nothing deleted under a reader;
// the index rebuilt from the files when it is gone. Unit tests (test/unit/cache/eviction.test.ts)
// cover expiry, budgets and the free-space floor with an injected clock and statfs.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { addImage, OCI_MANIFEST, pullImage, sha256Of, type Image } from '../helpers/images.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';
import { tempDir } from '../helpers/tmp.ts';

const MiB = 1024 * 1024;

function blobFile(cacheDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(cacheDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

function cached(cacheDir: string, image: Image): boolean[] {
  return [image.manifest, image.config, image.layer].map((digest) => existsSync(blobFile(cacheDir, digest)));
}

const BOUNDED = { maxSize: '10MiB', minFree: '0%' };

describe('eviction', () => {
  it('evicts the least recently used image whole, keeps the rest, and refetches it when asked', async () => {
    const upstream = await startFakeRegistry();
    const dir = path.join(await tempDir(), 'cache');
    const proxy = await startProxy({ registries: [upstream.authority], cache: { dir, ...BOUNDED } });
    const [a, b, c] = ['lib/a', 'lib/b', 'lib/c'].map((name) => addImage(upstream, name, 3.2 * MiB)) as [
      Image,
      Image,
      Image,
    ];
    expect(await pullImage(proxy, upstream, a)).toBe('MISS');
    expect(await pullImage(proxy, upstream, b)).toBe('MISS');
    expect(await pullImage(proxy, upstream, a)).toBe('HIT'); // a is now more recent than b
    expect(await pullImage(proxy, upstream, c)).toBe('MISS'); // 9.6 MiB: past 95 % of 10 MiB

    const evicted = await proxy.waitForLog((l) => l.msg === 'evicted');
    expect(evicted['digest']).toBe(b.manifest);
    expect(evicted['reason']).toBe('cap');
    const pass = await proxy.waitForLog((l) => l.msg === 'eviction pass');
    expect(pass['usageAfter']).toBeLessThanOrEqual(9 * MiB);
    expect(cached(dir, b)).toEqual([false, false, false]);
    expect(existsSync(path.join(dir, 'tags', upstream.authority, 'lib/b', '_tags', 'v1.json'))).toBe(false);
    expect(cached(dir, a)).toEqual([true, true, true]);
    expect(cached(dir, c)).toEqual([true, true, true]);

    // The newest image is still a complete pull with the upstream gone (STALE tag, HIT blobs).
    await upstream.close();
    const offline = await proxy.fetch(upstream.authority, `/v2/lib/c/manifests/v1`, {
      headers: { accept: OCI_MANIFEST },
    });
    expect(offline.headers['x-cache']).toBe('STALE');
    await offline.body.dump();
    for (const digest of [c.config, c.layer]) {
      const res = await proxy.fetch(upstream.authority, `/v2/lib/c/blobs/${digest}`);
      expect(res.headers['x-cache']).toBe('HIT');
      expect(await sha256Of(res.body)).toBe(digest);
    }
  });

  it('keeps pinned images and never deletes a blob under a reader', async () => {
    const upstream = await startFakeRegistry();
    const dir = path.join(await tempDir(), 'cache');
    const pin = `${upstream.authority}/lib/a:v1`;
    const cache = { dir, maxSize: '64MiB', minFree: '0%', pin: [pin] };
    const proxy = await startProxy({ registries: [upstream.authority], cache });
    // Large enough that a client that stops reading holds the server's read (socket buffers
    // take a few MiB): 62 MiB after c, past 95 % of 64 MiB.
    const sizes = { 'lib/a': 20, 'lib/b': 20, 'lib/c': 22, 'lib/d': 22 };
    const [a, b, c, d] = Object.entries(sizes).map(([name, size]) =>
      addImage(upstream, name, size * MiB),
    ) as [Image, Image, Image, Image];
    await pullImage(proxy, upstream, a);
    await pullImage(proxy, upstream, b);
    // A client starts reading b's layer and stalls: b is in use.
    const reading = await proxy.fetch(upstream.authority, `/v2/lib/b/blobs/${b.layer}`);
    expect(reading.headers['x-cache']).toBe('HIT');
    await pullImage(proxy, upstream, c); // past the mark: a is pinned, b in use, so c goes
    const evicted = await proxy.waitForLog((l) => l.msg === 'evicted');
    console.log(
      'DBG',
      JSON.stringify(proxy.logs.filter((l) => /evict/.test(String(l.msg)))),
      JSON.stringify({ a: a.manifest, b: b.manifest, c: c.manifest }),
    );
    expect(evicted['digest']).toBe(c.manifest);
    const pass = await proxy.waitForLog((l) => l.msg === 'eviction pass');
    expect(pass['pinned']).toBe(1);
    expect(pass['inUse']).toBe(1);
    expect(await sha256Of(reading.body)).toBe(b.layer);
    expect(cached(dir, a)).toEqual([true, true, true]);
    expect(cached(dir, b)).toEqual([true, true, true]);

    // With the reader gone, b is the least recently used unpinned image.
    await pullImage(proxy, upstream, d);
    await proxy.waitForLog((l) => l.msg === 'evicted' && l['digest'] === b.manifest);
    expect(cached(dir, a)).toEqual([true, true, true]);
  });

  it('rebuilds a deleted index from the files at start, and evicts from it', async () => {
    const upstream = await startFakeRegistry();
    const dir = path.join(await tempDir(), 'cache');
    const [a, b, c] = ['lib/a', 'lib/b', 'lib/c'].map((name) => addImage(upstream, name, 3.2 * MiB)) as [
      Image,
      Image,
      Image,
    ];
    const first = await startProxy({ registries: [upstream.authority], cache: { dir, ...BOUNDED } });
    await pullImage(first, upstream, a);
    await pullImage(first, upstream, b);
    await first.close();
    for (const suffix of ['', '-wal', '-shm']) await rm(path.join(dir, `index.db${suffix}`), { force: true });

    const second = await startProxy({ registries: [upstream.authority], cache: { dir, ...BOUNDED } });
    // Opened in the background, after the proxy is listening: rebuilt from the files.
    const opened = await second.waitForLog((l) => l.msg === 'cache index open');
    expect(opened['state']).toBe('missing');
    expect(opened['rebuilt']).toBeDefined();
    expect(await pullImage(second, upstream, a)).toBe('HIT');
    await pullImage(second, upstream, c);
    const evicted = await second.waitForLog((l) => l.msg === 'evicted');
    expect(evicted['digest']).toBe(b.manifest);
    expect(cached(dir, b)).toEqual([false, false, false]);
  });
});
