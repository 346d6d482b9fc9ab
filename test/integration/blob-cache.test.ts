// The blob cache: one upstream fetch per digest, verified before it is published, shared by
// concurrent clients, kept when a client leaves, skipped (not failed) when the disk cannot be
// written, and served only to clients that upstream authorizes.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startFakeRegistry, sha256 } from '../helpers/upstream.ts';

async function bodyDigest(res: { body: AsyncIterable<unknown> }): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of res.body) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function storedBlobs(proxy: TestProxy): Promise<string[]> {
  const root = path.join(proxy.dir, 'cache', 'blobs', 'sha256');
  const out: string[] = [];
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const hex of await readdir(path.join(root, prefix))) out.push(`sha256:${hex}`);
  }
  return out;
}

async function tempFiles(proxy: TestProxy): Promise<string[]> {
  return readdir(path.join(proxy.dir, 'cache', 'tmp'));
}

describe('blob cache', () => {
  it('reads a cold blob with the own reader, or with undici when upstream.blobReader says so', async () => {
    const upstream = await startFakeRegistry();
    for (const reader of ['own', 'undici'] as const) {
      const content = randomBytes(3 * 1024 * 1024 + 11);
      const digest = upstream.addBlob(content);
      const proxy = await startProxy({ registries: [upstream.authority], upstream: { blobReader: reader } });
      const blobPath = `/v2/library/alpine/blobs/${digest}`;
      const res = await proxy.fetch(upstream.authority, blobPath);
      expect(await bodyDigest(res)).toBe(digest);
      await proxy.app.fills.idle();
      expect(await storedBlobs(proxy)).toEqual([digest]);
      // undici always says `connection: keep-alive`; the own reader leaves it to HTTP/1.1's default.
      const get = upstream.requests.find((r) => r.method === 'GET' && r.path === blobPath);
      expect(get?.headers.connection).toBe(reader === 'own' ? undefined : 'keep-alive');
      await proxy.close();
    }
  });

  it('fetches a blob once: the second pull and a HEAD are served from the cache', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(5 * 1024 * 1024 + 7);
    const digest = upstream.addBlob(content);
    const proxy = await startProxy({ registries: [upstream.authority] });
    const path1 = `/v2/library/alpine/blobs/${digest}`;

    const first = await proxy.fetch(upstream.authority, path1);
    expect(first.statusCode).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.headers['content-length']).toBe(String(content.length));
    expect(await bodyDigest(first)).toBe(digest);
    await proxy.app.fills.idle();

    const second = await proxy.fetch(upstream.authority, path1);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers['docker-content-digest']).toBe(digest);
    expect(second.headers['etag']).toBe(`"${digest}"`);
    expect(await bodyDigest(second)).toBe(digest);

    const head = await proxy.fetch(upstream.authority, path1, { method: 'HEAD' });
    expect(head.headers['content-length']).toBe(String(content.length));
    await head.body.dump();

    expect(upstream.hits('GET', path1)).toBe(1);
    expect(upstream.hits('HEAD', path1)).toBe(0);
    await proxy.waitForLog((l) => l.msg === 'request' && l['method'] === 'HEAD');
    const lines = proxy.logs.filter((l) => l.msg === 'request');
    expect(lines.map((l) => l['cache'])).toEqual(['miss', 'hit', 'hit']);
  });

  it('stores a blob once for two repositories and two registries', async () => {
    const a = await startFakeRegistry();
    const b = await startFakeRegistry();
    const content = randomBytes(300_000);
    const digest = a.addBlob(content);
    b.addBlob(content);
    const proxy = await startProxy({ registries: [a.authority, b.authority] });

    for (const [registry, repo] of [
      [a, 'one/app'],
      [a, 'two/app'],
      [b, 'one/app'],
    ] as const) {
      const res = await proxy.fetch(registry.authority, `/v2/${repo}/blobs/${digest}`);
      expect(await bodyDigest(res)).toBe(digest);
      await proxy.app.fills.idle();
    }
    // The bytes came once; each other repository was asked (HEAD) whether it may be read, since
    // what is public in one repository says nothing about another.
    expect(a.requests.filter((r) => r.method === 'GET')).toHaveLength(1);
    expect(a.requests.filter((r) => r.method === 'HEAD').map((r) => r.path)).toEqual([
      `/v2/two/app/blobs/${digest}`,
    ]);
    expect(b.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`HEAD /v2/one/app/blobs/${digest}`]);
    expect(await storedBlobs(proxy)).toEqual([digest]);
  });

  it('aborts the client and stores nothing when the content does not match its digest', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(randomBytes(2 * 1024 * 1024));
    upstream.corruptBlobs(true);
    const proxy = await startProxy({ registries: [upstream.authority] });

    const res = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    await expect(res.body.arrayBuffer()).rejects.toThrow();
    await proxy.app.fills.idle();
    expect(await storedBlobs(proxy)).toEqual([]);
    expect(await tempFiles(proxy)).toEqual([]);
    await proxy.waitForLog((l) => l.msg === 'blob fill failed: nothing stored');

    upstream.corruptBlobs(false);
    const retry = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    expect(retry.headers['x-cache']).toBe('MISS');
    expect(await bodyDigest(retry)).toBe(digest);
  });

  it('aborts the client and stores nothing when upstream resets mid-blob', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(randomBytes(4 * 1024 * 1024));
    upstream.resetBlobsAfter(1024 * 1024);
    const proxy = await startProxy({ registries: [upstream.authority] });

    const res = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    await expect(res.body.arrayBuffer()).rejects.toThrow();
    await proxy.app.fills.idle();
    expect(await storedBlobs(proxy)).toEqual([]);
    expect(await tempFiles(proxy)).toEqual([]);
  });

  it('aborts a fill whose upstream stalls, cutting its clients and storing nothing', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(randomBytes(2 * 1024 * 1024));
    const release = upstream.holdBlobs();
    const proxy = await startProxy({ registries: [upstream.authority], upstream: { bodyTimeout: '300ms' } });
    const res = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    await expect(res.body.arrayBuffer()).rejects.toThrow();
    await proxy.app.fills.idle();
    release();
    expect(await storedBlobs(proxy)).toEqual([]);
    expect(await tempFiles(proxy)).toEqual([]);
    const failed = await proxy.waitForLog((l) => l.msg === 'blob fill failed: nothing stored');
    expect(String(failed['err'])).toMatch(/timeout/i);
  });

  it('keeps filling the cache when the client leaves mid-blob', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(16 * 1024 * 1024);
    const digest = upstream.addBlob(content);
    const release = upstream.holdBlobs();
    const proxy = await startProxy({ registries: [upstream.authority] });

    const res = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    for await (const _chunk of res.body) break; // one chunk, then hang up
    release();
    await proxy.app.fills.idle();
    expect(await storedBlobs(proxy)).toEqual([digest]);

    const again = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    expect(again.headers['x-cache']).toBe('HIT');
    expect(await bodyDigest(again)).toBe(digest);
    expect(upstream.hits('GET', `/v2/x/blobs/${digest}`)).toBe(1);
  });

  it('serves ten concurrent cold pulls from one upstream fetch, headers to all at once', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(8 * 1024 * 1024);
    const digest = upstream.addBlob(content);
    const release = upstream.holdBlobs();
    const proxy = await startProxy({ registries: [upstream.authority] });

    // All ten have their status and length while upstream is still holding half the body.
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`)),
    );
    for (const res of responses) {
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe(String(content.length));
    }
    release();
    const digests = await Promise.all(responses.map(bodyDigest));
    expect(digests).toEqual(Array.from({ length: 10 }, () => digest));
    expect(upstream.hits('GET', `/v2/x/blobs/${digest}`)).toBe(1);
    await proxy.waitForLog(() => proxy.logs.filter((l) => l.msg === 'request').length === 10);
    expect(proxy.logs.filter((l) => l.msg === 'request' && l['shared'] === true)).toHaveLength(9);
  });

  it('follows a redirect without the client credentials and caches by digest', async () => {
    const registry = await startFakeRegistry();
    const cdn = await startFakeRegistry();
    const content = randomBytes(1024 * 1024);
    const digest = registry.addBlob(content);
    cdn.addBlob(content);
    registry.redirectBlobsTo(`https://${cdn.authority}`);
    const proxy = await startProxy({ registries: [registry.authority] });
    const blobPath = `/v2/private/app/blobs/${digest}`;

    const first = await proxy.fetch(registry.authority, blobPath, {
      headers: { authorization: 'Bearer secret-token' },
    });
    expect(first.statusCode).toBe(200);
    expect(await bodyDigest(first)).toBe(digest);
    await proxy.app.fills.idle();
    expect(registry.requests.at(-1)?.headers.authorization).toBe('Bearer secret-token');
    expect(cdn.requests).toHaveLength(1);
    expect(cdn.requests[0]?.headers.authorization).toBeUndefined();
    expect(cdn.requests[0]?.path).toMatch(/^\/cdn\/sha256:[a-f0-9]{64}\?sig=/);

    const second = await proxy.fetch(registry.authority, blobPath, {
      headers: { authorization: 'Bearer secret-token' },
    });
    expect(second.headers['x-cache']).toBe('HIT');
    expect(await bodyDigest(second)).toBe(digest);
    expect(cdn.requests).toHaveLength(1);
    expect(registry.hits('GET', blobPath)).toBe(1);
  });

  it('serves single ranges of a cached blob', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(100_000);
    const digest = upstream.addBlob(content);
    const proxy = await startProxy({ registries: [upstream.authority] });
    const blobPath = `/v2/x/blobs/${digest}`;
    await (await proxy.fetch(upstream.authority, blobPath)).body.dump();
    await proxy.app.fills.idle();

    const middle = await proxy.fetch(upstream.authority, blobPath, { headers: { range: 'bytes=1000-1999' } });
    expect(middle.statusCode).toBe(206);
    expect(middle.headers['content-range']).toBe(`bytes 1000-1999/${content.length}`);
    expect(Buffer.from(await middle.body.arrayBuffer()).equals(content.subarray(1000, 2000))).toBe(true);

    const tail = await proxy.fetch(upstream.authority, blobPath, { headers: { range: 'bytes=99000-' } });
    expect(Buffer.from(await tail.body.arrayBuffer()).equals(content.subarray(99_000))).toBe(true);

    const suffix = await proxy.fetch(upstream.authority, blobPath, { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await suffix.body.arrayBuffer()).equals(content.subarray(-10))).toBe(true);

    const beyond = await proxy.fetch(upstream.authority, blobPath, { headers: { range: 'bytes=200000-' } });
    expect(beyond.statusCode).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${content.length}`);
    await beyond.body.dump();
    expect(upstream.hits('GET', blobPath)).toBe(1);
  });

  it('still serves clients, uncached, when the cache cannot be written, and says so once', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(300_000);
    const digest = upstream.addBlob(content);
    const proxy = await startProxy({ registries: [upstream.authority] });
    // Break the cache under the running proxy: its temp directory becomes a file.
    const tmp = path.join(proxy.dir, 'cache', 'tmp');
    await rm(tmp, { recursive: true });
    await writeFile(tmp, 'not a directory');

    for (let i = 0; i < 2; i += 1) {
      const res = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-cache']).toBe('BYPASS');
      expect(await bodyDigest(res)).toBe(digest);
    }
    await proxy.waitForLog(
      (l) => l.msg === 'request' && proxy.logs.filter((x) => x.msg === 'request').length === 2,
    );
    // Written once the free space is known (an async statfs), with the path that failed.
    const warning = await proxy.waitForLog((l) => l.msg === 'cache not writable: serving without caching');
    expect(warning['code']).toBe('ENOTDIR');
    expect(typeof warning['freeBytes']).toBe('number');
    expect(proxy.logs.filter((l) => l.msg === 'cache not writable: serving without caching')).toHaveLength(1);
    expect(proxy.logs.filter((l) => l.msg === 'request').map((l) => l['cache'])).toEqual([
      'bypass',
      'bypass',
    ]);
  });

  it('serves content fetched with credentials only to clients upstream authorizes', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(200_000);
    const digest = upstream.addBlob(content);
    upstream.requireToken('alice-token');
    const proxy = await startProxy({ registries: [upstream.authority] });
    const blobPath = `/v2/private/app/blobs/${digest}`;

    const alice = await proxy.fetch(upstream.authority, blobPath, {
      headers: { authorization: 'Bearer alice-token' },
    });
    expect(await bodyDigest(alice)).toBe(digest);
    await proxy.app.fills.idle();

    const anonymous = await proxy.fetch(upstream.authority, blobPath);
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer realm=/);
    expect(((await anonymous.body.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe(
      'UNAUTHORIZED',
    );

    const mallory = await proxy.fetch(upstream.authority, blobPath, {
      headers: { authorization: 'Bearer wrong' },
    });
    expect(mallory.statusCode).toBe(401);
    await mallory.body.dump();

    // Alice again: her grant is remembered, no upstream request at all.
    const before = upstream.requests.length;
    const again = await proxy.fetch(upstream.authority, blobPath, {
      headers: { authorization: 'Bearer alice-token' },
    });
    expect(again.headers['x-cache']).toBe('HIT');
    expect(await bodyDigest(again)).toBe(digest);
    expect(upstream.requests.length).toBe(before);
  });

  it('serves public content (fetched without credentials) to anyone', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(randomBytes(1000));
    const proxy = await startProxy({ registries: [upstream.authority] });
    await (await proxy.fetch(upstream.authority, `/v2/pub/blobs/${digest}`)).body.dump();
    await proxy.app.fills.idle();
    const other = await proxy.fetch(upstream.authority, `/v2/pub/blobs/${digest}`, {
      headers: { authorization: 'Bearer whoever' },
    });
    expect(other.headers['x-cache']).toBe('HIT');
    await other.body.dump();
    expect(upstream.requests).toHaveLength(1);
  });
});

describe('sha256 helper', () => {
  it('matches the registry digest format', () => expect(sha256('')).toMatch(/^sha256:e3b0c442/));
});
