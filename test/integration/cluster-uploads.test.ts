// Three replicas on one bucket pulling one cold blob at once (issue 24): upstream is asked once
// (the lease holder), every other replica streams it from the holder, and the bucket receives it
// once: one upload of the digest's key, completed, none aborted, however many replicas served it.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { startS3, uploadsOf, type TestS3 } from '../helpers/s3.ts';
import { sha256, startFakeRegistry } from '../helpers/upstream.ts';

const MiB = 1024 * 1024;
const SECRET = 'cluster-test-secret-0123456789';

async function replicas(s3: TestS3, redis: string, authority: string): Promise<TestProxy[]> {
  const started: TestProxy[] = [];
  for (const id of ['r1', 'r2', 'r3'])
    started.push(
      await startProxy({
        registries: [authority],
        storage: s3.storage(),
        cluster: { redis, secret: SECRET, id, listen: '127.0.0.1:0', heartbeat: '100ms', leaseTtl: '2s' },
      }),
    );
  return started;
}

describe.skipIf(!(await hasRedisServer()))('cluster uploads (needs redis-server)', () => {
  it('uploads a blob pulled on three replicas at once to the bucket once', async () => {
    const upstream = await startFakeRegistry();
    const redis = await startRedis();
    const s3 = await startS3();
    const proxies = await replicas(s3, redis.url, upstream.authority);
    // Two parts of 8 MiB and a bit: a multipart upload, as every layer of note is.
    const content = randomBytes(16 * MiB + 5);
    const digest = upstream.addBlob(content);
    const hex = digest.slice('sha256:'.length);
    const blobPath = `/v2/team/app/blobs/${digest}`;
    const release = upstream.holdBlobs();

    // The first client's replica takes the lease and fetches; upstream sends half and holds.
    const first = await proxies[0]!.fetch(upstream.authority, blobPath);
    // Two clients on each replica, all with their headers while the fill is half-way.
    const others = await Promise.all(
      proxies.flatMap((proxy) => [0, 1].map(() => proxy.fetch(upstream.authority, blobPath))),
    );
    release();
    for (const res of [first, ...others]) {
      expect(res.statusCode).toBe(200);
      expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(digest);
    }
    await Promise.all(proxies.map((proxy) => proxy.app.fills.idle()));

    expect(upstream.hits('GET', blobPath)).toBe(1);
    // Every replica streamed it: the followers' fills are what this test is about.
    for (const proxy of proxies.slice(1))
      expect(proxy.logs.some((line) => line.path === blobPath && line.cache === 'miss')).toBe(true);
    const uploads = uploadsOf(s3.requests, hex);
    expect(uploads).toMatchObject({ created: 1, completed: 1, aborted: 0, singlePuts: 0 });
    expect(uploads.bytes).toBe(content.length);
    const stored = (await s3.objects()).filter((object) => object.key.endsWith(`/${hex}`));
    expect(stored.map((object) => object.size)).toEqual([content.length]);
  });
});
