// The replica that holds a fill's lease killed (SIGKILL) in the middle of the fill: the client
// waiting on another replica still gets the whole blob, verified (that replica takes the lease
// over once it expires and fetches the rest upstream from the byte it had), and what the dead
// replica had written is never published. On a bucket, the one that takes over is the one that
// uploads (before, it only followed, keeping the bytes local).
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { ProxyAgent, request } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import { childReplica } from '../helpers/child-replica.ts';
import { upstreamPki } from '../helpers/pki.ts';
import { startProxy } from '../helpers/proxy.ts';
import { startS3, uploadsOf } from '../helpers/s3.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { tempDir } from '../helpers/tmp.ts';
import { sha256, startFakeRegistry } from '../helpers/upstream.ts';

const SECRET = 'cluster-test-secret-0123456789';

/** The events every replica sent to the cluster's books (cluster/book.ts), oldest first. */
async function redisEvents(url: string): Promise<Array<{ at?: number } & Record<string, unknown>>> {
  const redis = new Redis(url);
  try {
    const entries = await redis.xrange('pullthrough:book:events', '-', '+');
    return entries.map(([, fields]) => JSON.parse(fields[1]!) as Record<string, unknown>);
  } finally {
    redis.disconnect();
  }
}

/**
 * Kills the owner mid-fill (SIGKILL), frees upstream for whoever takes over, and reads the rest of
 * the waiter's body: `read` is what it had so far. The whole body.
 */
async function killOwnerAndReadRest(
  owner: Awaited<ReturnType<typeof childReplica>>,
  release: () => void,
  reader: AsyncIterator<unknown>,
  read: Buffer[],
): Promise<Buffer> {
  const exited = once(owner.child, 'exit');
  owner.child.kill('SIGKILL');
  await exited;
  release();
  for (let next = await reader.next(); !next.done; next = await reader.next())
    read.push(next.value as Buffer);
  return Buffer.concat(read);
}

/**
 * The replica that owns the fill, as a child process (kill -9 is the point), with `lines` of
 * config besides its cluster section, and its first request of `url`, left streaming.
 */
async function startOwnerFill(dir: string, redisUrl: string, url: string, lines: readonly string[]) {
  const configFile = path.join(dir, 'owner.yaml');
  const cluster = `cluster: {redis: "${redisUrl}", secret: "${SECRET}", id: owner, listen: "127.0.0.1:0", leaseTtl: 1s, heartbeat: 100ms}`;
  await writeFile(configFile, ['listen: 127.0.0.1:0', ...lines, cluster, ''].join('\n'));
  const owner = await childReplica(configFile);
  const ca = await readFile(path.join(dir, 'ca', 'ca.crt'), 'utf8');
  const client = new ProxyAgent({ uri: `http://127.0.0.1:${owner.port}`, requestTls: { ca: [ca] } });
  onTestFinished(() => client.destroy());
  const first = await request(url, { dispatcher: client });
  expect(first.statusCode).toBe(200);
  first.body.resume();
  first.body.on('error', () => undefined);
  return owner;
}

describe.skipIf(!(await hasRedisServer()))('cluster takeover (needs redis-server)', () => {
  it('completes the waiters of a replica killed mid-fill, and keeps nothing partial', async () => {
    const upstream = await startFakeRegistry();
    const redis = await startRedis();
    const pki = await upstreamPki();
    const dir = await tempDir();
    const cacheDir = path.join(dir, 'cache');
    const content = randomBytes(4 * 1024 * 1024 + 3);
    const digest = upstream.addBlob(content);
    const blobPath = `/v2/team/app/blobs/${digest}`;
    const release = upstream.holdBlobs();

    // The owner takes the lease and starts the fill: upstream sends half, then holds.
    const owner = await startOwnerFill(dir, redis.url, `https://${upstream.authority}${blobPath}`, [
      `registries: ["${upstream.authority}"]`,
      `upstream: {caFiles: ["${pki.caFile}"]}`,
      `cache: {dir: "${cacheDir}"}`,
    ]);

    // A waiter on another replica: headers at once, bytes streamed from the owner.
    const waiter = await startProxy({
      registries: [upstream.authority],
      cache: { dir: cacheDir },
      cluster: { redis: redis.url, secret: SECRET, id: 'waiter', listen: '127.0.0.1:0', leaseTtl: '1s' },
    });
    const res = await waiter.fetch(upstream.authority, blobPath);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(content.length));
    const chunks: Buffer[] = [];
    const reader = res.body[Symbol.asyncIterator]();
    const firstChunk = await reader.next();
    chunks.push(firstChunk.value as Buffer);
    expect(upstream.requests.filter((r) => r.method === 'GET' && r.path === blobPath)).toHaveLength(1);

    // The owner dies mid-fill; upstream is free again for whoever takes over.
    const body = await killOwnerAndReadRest(owner, release, reader, chunks);
    expect(body.length).toBe(content.length);
    expect(sha256(body)).toBe(digest);
    await waiter.waitForLog((line) => line.msg === 'cluster fill taken over: continuing from upstream');

    // The rest came from upstream with a Range from where the stream broke; the whole is stored.
    const gets = upstream.requests.filter((r) => r.method === 'GET' && r.path === blobPath);
    expect(gets).toHaveLength(2);
    expect(gets[1]!.headers.range).toMatch(/^bytes=[1-9]\d*-$/);
    await waiter.app.fills.idle();
    const hex = digest.slice('sha256:'.length);
    const stored = await readFile(path.join(cacheDir, 'blobs', 'sha256', hex.slice(0, 2), hex));
    expect(sha256(stored)).toBe(digest);
    const again = await waiter.fetch(upstream.authority, blobPath);
    expect(again.headers['x-cache']).toBe('HIT');
    await again.body.dump();
    // The dead holder never told the cluster's books of the blob: the replica that took over did.
    const events = await redisEvents(redis.url);
    const recorded = events.filter((event) => event.k === 'b' && event.d === digest);
    expect(recorded.map(({ at: _at, ...event }) => event)).toEqual([
      { k: 'b', d: digest, s: content.length, src: { host: upstream.authority, repository: 'team/app' } },
    ]);
  });

  it('on a bucket: the replica that takes over uploads the blob, once, verified', async () => {
    const upstream = await startFakeRegistry();
    const redis = await startRedis();
    const s3 = await startS3();
    const pki = await upstreamPki();
    const dir = await tempDir();
    const content = randomBytes(20 * 1024 * 1024 + 3);
    const digest = upstream.addBlob(content);
    const hex = digest.slice('sha256:'.length);
    const blobPath = `/v2/team/app/blobs/${digest}`;
    const release = upstream.holdBlobs();
    const { endpoint, bucket } = s3;

    const owner = await startOwnerFill(dir, redis.url, `https://${upstream.authority}${blobPath}`, [
      `registries: ["${upstream.authority}"]`,
      `upstream: {caFiles: ["${pki.caFile}"]}`,
      `cache: {dir: "${path.join(dir, 'cache')}"}`,
      `storage: {type: s3, s3: {endpoint: "${endpoint}", bucket: ${bucket}, forcePathStyle: true}}`,
    ]);

    const waiter = await startProxy({
      registries: [upstream.authority],
      storage: s3.storage(),
      cluster: { redis: redis.url, secret: SECRET, id: 'waiter', listen: '127.0.0.1:0', leaseTtl: '1s' },
    });
    const res = await waiter.fetch(upstream.authority, blobPath);
    expect(res.statusCode).toBe(200);
    const reader = res.body[Symbol.asyncIterator]();
    const chunks = [(await reader.next()).value as Buffer];

    // Where the bucket's log stands when the waiter takes over (logged before the rest is fetched).
    const takenOver = waiter
      .waitForLog((line) => line.msg === 'cluster fill taken over: continuing from upstream')
      .then(() => s3.requests.length);
    expect(sha256(await killOwnerAndReadRest(owner, release, reader, chunks))).toBe(digest);
    await waiter.app.fills.idle();

    // The owner's upload was never completed (nor aborted: it died); the waiter's was, begun at
    // the takeover: not found missing by a HEAD at the end (the fallback of a follower).
    expect(uploadsOf(s3.requests, hex)).toMatchObject({ completed: 1, aborted: 0, singlePuts: 0 });
    const sinceTakeover = s3.requests.slice(await takenOver).filter((r) => r.url.includes(hex));
    expect(sinceTakeover.filter((r) => r.method === 'HEAD')).toEqual([]);
    expect(sinceTakeover.filter((r) => r.method === 'POST').length).toBe(2); // create, complete
    const stored = await s3.client.send(
      new GetObjectCommand({ Bucket: bucket, Key: (await s3.objects())[0]!.key }),
    );
    expect(sha256(Buffer.from(await stored.Body!.transformToByteArray()))).toBe(digest);
    const again = await waiter.fetch(upstream.authority, blobPath);
    expect(again.headers['x-cache']).toBe('HIT');
    await again.body.dump();
  });
});
