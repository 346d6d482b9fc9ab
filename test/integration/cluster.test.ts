// Several replicas, one Redis, one upstream: a cold blob asked of every replica at once is fetched
// upstream once, and every waiter gets its headers before the body is complete (streamed from
// the replica holding the fill lease); a grant seen by one replica counts on the others while an
// anonymous client is still refused; Redis gone mid-pull leaves pulls working, degraded, until
// it is back. (The owner killed mid-fill: cluster-takeover.test.ts.)
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { tempDir } from '../helpers/tmp.ts';
import { sha256, startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const SECRET = 'cluster-test-secret-0123456789';
const ACCOUNTS = { alice: 'alice-secret' };

async function replicas(upstream: FakeRegistry, redisUrl: string, count: number): Promise<TestProxy[]> {
  const shared = path.join(await tempDir(), 'cache');
  const started: TestProxy[] = [];
  for (let i = 1; i <= count; i++) {
    started.push(
      await startProxy({
        registries: [upstream.authority],
        cache: { dir: shared },
        cluster: {
          redis: redisUrl,
          secret: SECRET,
          id: `r${i}`,
          listen: '127.0.0.1:0',
          leaseTtl: '1s',
          heartbeat: '100ms',
        },
      }),
    );
  }
  return started;
}

async function readyz(proxy: TestProxy): Promise<string> {
  const res = await request(`${proxy.url}/readyz`);
  return res.body.text();
}

const blobGets = (upstream: FakeRegistry, digest: string) =>
  upstream.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`)).length;

/** alice's bearer token for pulling private/app, from the fake upstream's token endpoint through `proxy`. */
async function aliceToken(proxy: TestProxy, authority: string): Promise<string> {
  const res = await proxy.fetch(
    authority,
    `/token?service=fake&scope=${encodeURIComponent('repository:private/app:pull')}`,
    { headers: { authorization: `Basic ${Buffer.from('alice:alice-secret').toString('base64')}` } },
  );
  return `Bearer ${((await res.body.json()) as { token: string }).token}`;
}

describe.skipIf(!(await hasRedisServer()))('cluster (needs redis-server; ensure-deps.ts installs it)', () => {
  it('fetches a cold blob once for every replica, with headers to each waiter before the body', async () => {
    const upstream = await startFakeRegistry();
    const redis = await startRedis();
    const proxies = await replicas(upstream, redis.url, 3);
    const content = randomBytes(3 * 1024 * 1024 + 17);
    const digest = upstream.addBlob(content);
    const release = upstream.holdBlobs();

    // Two clients per replica; upstream sends its headers and half the blob, then waits.
    const pulls = proxies.flatMap((proxy) =>
      [0, 1].map(() => proxy.fetch(upstream.authority, `/v2/team/app/blobs/${digest}`)),
    );
    const responses = await Promise.all(pulls);
    for (const res of responses) {
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe(String(content.length));
    }
    expect(blobGets(upstream, digest)).toBe(1);
    release();
    const bodies = await Promise.all(responses.map(async (res) => Buffer.from(await res.body.arrayBuffer())));
    for (const body of bodies) expect(sha256(body)).toBe(digest);
    expect(blobGets(upstream, digest)).toBe(1);

    // Once stored (one shared directory), every replica serves it as a hit.
    await Promise.all(proxies.map((proxy) => proxy.app.fills.idle()));
    for (const proxy of proxies) {
      const res = await proxy.fetch(upstream.authority, `/v2/team/app/blobs/${digest}`);
      expect(res.headers['x-cache']).toBe('HIT');
      expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(digest);
    }
    expect(blobGets(upstream, digest)).toBe(1);

    // Every replica is listed on each one's /readyz.
    await proxies[0]!.waitForLog(() => proxies[0]!.app.cluster!.members.length === 3);
    expect(await readyz(proxies[0]!)).toContain('cluster: 3 replicas (r1, r2, r3); this one: r1');
  });

  it('honours a grant seen by one replica on another, and still refuses an anonymous client', async () => {
    const upstream = await startFakeRegistry();
    upstream.useTokenAuth(ACCOUNTS);
    upstream.makePrivate('private/');
    const redis = await startRedis();
    const [one, two] = await replicas(upstream, redis.url, 2);
    const secret = Buffer.from('private layer of the cluster test');
    const digest = upstream.addBlob(secret);
    const blobPath = `/v2/private/app/blobs/${digest}`;
    const alice = await aliceToken(one!, upstream.authority);

    const learnt = two!.waitForLog(
      (line) => line.msg === 'access answer learnt from another replica' && line['kind'] === 'grant',
    );
    const first = await one!.fetch(upstream.authority, blobPath, { headers: { authorization: alice } });
    expect(Buffer.from(await first.body.arrayBuffer()).equals(secret)).toBe(true);
    await one!.app.fills.idle();
    // The grant travels over Redis: replica 2 serves alice from the cache without asking upstream.
    await learnt;
    const heads = () => upstream.requests.filter((r) => r.method === 'HEAD' && r.path === blobPath).length;
    let second = await two!.fetch(upstream.authority, blobPath, { headers: { authorization: alice } });
    expect(second.headers['x-cache']).toBe('HIT');
    expect(Buffer.from(await second.body.arrayBuffer()).equals(secret)).toBe(true);
    expect(heads()).toBe(0);

    // An anonymous client on replica 2 is refused: a grant is per credential, and nobody marked it public.
    second = await two!.fetch(upstream.authority, blobPath);
    await second.body.dump();
    expect(second.statusCode).toBe(401);
  });

  it('refuses an anonymous client that asks for a private blob while another replica fills it', async () => {
    const upstream = await startFakeRegistry();
    upstream.useTokenAuth(ACCOUNTS);
    upstream.makePrivate('private/');
    const redis = await startRedis();
    const [one, two] = await replicas(upstream, redis.url, 2);
    const secret = randomBytes(512 * 1024);
    const digest = upstream.addBlob(secret);
    const blobPath = `/v2/private/app/blobs/${digest}`;
    const alice = await aliceToken(one!, upstream.authority);
    const release = upstream.holdBlobs();
    const first = await one!.fetch(upstream.authority, blobPath, { headers: { authorization: alice } });
    expect(first.statusCode).toBe(200);

    // Replica 2 streams the fill from replica 1, but asks upstream whether this client may read it.
    const anonymous = await two!.fetch(upstream.authority, blobPath);
    const refusal = await anonymous.body.text();
    expect(anonymous.statusCode).toBe(401);
    expect(refusal).not.toContain(secret.subarray(0, 16).toString('latin1'));
    release();
    expect(Buffer.from(await first.body.arrayBuffer()).equals(secret)).toBe(true);
    expect(blobGets(upstream, digest)).toBe(1);
  });

  it('keeps pulls working while Redis is down, says so on /readyz, and recovers when it is back', async () => {
    const upstream = await startFakeRegistry();
    const redis = await startRedis();
    const [one, two] = await replicas(upstream, redis.url, 2);
    const content = randomBytes(1024 * 1024);
    const digest = upstream.addBlob(content);
    const release = upstream.holdBlobs();

    // Redis dies in the middle of a pull: that pull completes.
    const res = await one!.fetch(upstream.authority, `/v2/team/app/blobs/${digest}`);
    await redis.stop();
    await one!.waitForLog((line) => line.msg === 'redis unreachable: coordinating locally until it is back');
    release();
    expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(digest);
    expect(await readyz(one!)).toMatch(/^ready \(degraded: redis unreachable/);

    // Without Redis, each replica fetches for itself: pulls still work.
    const other = upstream.addBlob(randomBytes(200_000));
    for (const proxy of [one!, two!]) {
      const pulled = await proxy.fetch(upstream.authority, `/v2/team/app/blobs/${other}`);
      expect(sha256(Buffer.from(await pulled.body.arrayBuffer()))).toBe(other);
      await proxy.app.fills.idle();
    }

    // Redis back (empty, as after a crash): coordination resumes.
    await redis.start();
    await Promise.all(
      [one!, two!].map((proxy) =>
        proxy.waitForLog((line) => line.msg === 'redis reachable again: coordinating through it'),
      ),
    );
    expect(await readyz(one!)).toMatch(/^ready\n/);
    const third = upstream.addBlob(randomBytes(500_000));
    const hold = upstream.holdBlobs();
    const both = await Promise.all(
      [one!, two!].map((proxy) => proxy.fetch(upstream.authority, `/v2/team/app/blobs/${third}`)),
    );
    hold();
    for (const pulled of both) expect(sha256(Buffer.from(await pulled.body.arrayBuffer()))).toBe(third);
    expect(blobGets(upstream, third)).toBe(1);
  });
});
