// The disk cap of a cluster: replicas sharing one directory (or one bucket) and one Redis keep one set of books,
// held by the bookkeeper (the holder of the `book` lease): images pulled over any replica are
// evicted whole, least recently pulled across the fleet first, never under a client reading on
// another replica, and the role passes to another replica when the bookkeeper goes.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { startS3 } from '../helpers/s3.ts';
import { tempDir } from '../helpers/tmp.ts';
import { addImage, pullImage, sha256Of, type Image } from '../helpers/images.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const MiB = 1024 * 1024;
const KEEPS = 'cache bookkeeper: this replica keeps the books';

function cached(dir: string, image: Image): boolean[] {
  return [image.manifest, image.config, image.layer].map((digest) => {
    const hex = digest.slice('sha256:'.length);
    return existsSync(path.join(dir, 'blobs', 'sha256', hex.slice(0, 2), hex));
  });
}

/** Where the replicas keep the cache: one directory, or one bucket with a directory each. */
interface Home {
  readonly config: () => Promise<Record<string, unknown>>;
  /** For each of the image's manifest, config and layer: whether the cache holds it. */
  readonly holds: (image: Image) => Promise<boolean[]>;
}

async function sharedDirectory(): Promise<Home & { dir: string }> {
  const dir = path.join(await tempDir(), 'cache');
  return {
    dir,
    config: () => Promise.resolve({ cache: { dir } }),
    holds: (image) => Promise.resolve(cached(dir, image)),
  };
}

async function sharedBucket(): Promise<Home> {
  const s3 = await startS3();
  return {
    config: async () => ({ cache: { dir: path.join(await tempDir(), 'cache') }, storage: s3.storage() }),
    holds: async (image) => {
      const keys = new Set((await s3.objects('blobs/')).map((object) => object.key));
      return [image.manifest, image.config, image.layer].map((digest) => {
        const hex = digest.slice('sha256:'.length);
        return keys.has(`blobs/sha256/${hex.slice(0, 2)}/${hex}`);
      });
    },
  };
}

/** Two replicas on one home; resolves once one keeps the books: [keeper, other]. */
async function replicas(upstream: FakeRegistry, redisUrl: string, home: Home, maxSize: string) {
  const started: TestProxy[] = [];
  for (const id of ['r1', 'r2']) {
    const config = await home.config();
    started.push(
      await startProxy({
        ...config,
        registries: [upstream.authority],
        cache: { ...(config['cache'] as object), maxSize, minFree: '0%' },
        cluster: {
          redis: redisUrl,
          secret: 'cluster-test-secret-0123456789',
          id,
          listen: '127.0.0.1:0',
          leaseTtl: '3s',
          heartbeat: '100ms',
        },
      }),
    );
  }
  const [r1, r2] = started as [TestProxy, TestProxy];
  const keeper = await Promise.race(
    started.map((proxy) => proxy.waitForLog((l) => l.msg === KEEPS).then(() => proxy)),
  );
  return keeper === r1 ? ([r1, r2] as const) : ([r2, r1] as const);
}

describe.skipIf(!(await hasRedisServer()))('cluster disk cap (needs redis-server)', () => {
  it.each([
    ['one directory', sharedDirectory],
    ['one bucket', sharedBucket],
  ])(
    'on %s: evicts the image least recently pulled on any replica, and hands the books over',
    async (_, make) => {
      const upstream = await startFakeRegistry();
      const redis = await startRedis();
      const home = await make();
      const [keeper, other] = await replicas(upstream, redis.url, home, '10MiB');
      const [a, b, c, d] = ['lib/a', 'lib/b', 'lib/c', 'lib/d'].map((name) =>
        addImage(upstream, name, 3.2 * MiB),
      ) as [Image, Image, Image, Image];

      expect(await pullImage(other, upstream, a)).toBe('MISS');
      expect(await pullImage(keeper, upstream, b)).toBe('MISS');
      expect(await pullImage(other, upstream, a)).toBe('HIT'); // a, pulled on the other replica, is newer than b
      expect(await pullImage(keeper, upstream, c)).toBe('MISS'); // 9.6 MiB: past 95 % of 10 MiB

      const evicted = await keeper.waitForLog((l) => l.msg === 'evicted');
      expect(evicted['digest']).toBe(b.manifest);
      expect(await home.holds(b)).toEqual([false, false, false]);
      expect(await home.holds(a)).toEqual([true, true, true]);
      expect(await home.holds(c)).toEqual([true, true, true]);
      expect(other.logs.some((l) => l.msg === 'evicted')).toBe(false);

      // c used after a (recency the new bookkeeper replays from the stream: a bucket's object
      // times are a second apart). The bookkeeper goes: the other replica takes the lease,
      // rebuilds the index and evicts the least recently used, a.
      expect(await pullImage(keeper, upstream, c)).toBe('HIT');
      await keeper.close();
      await other.waitForLog((l) => l.msg === KEEPS);
      expect(await pullImage(other, upstream, d)).toBe('MISS');
      const next = await other.waitForLog((l) => l.msg === 'evicted');
      expect(next['digest']).toBe(a.manifest);
      expect(await home.holds(a)).toEqual([false, false, false]);
      expect(await home.holds(d)).toEqual([true, true, true]);
    },
  );

  it('never removes a blob a client reads on another replica', async () => {
    const upstream = await startFakeRegistry();
    const redis = await startRedis();
    const home = await sharedDirectory();
    const { dir } = home;
    const [keeper, other] = await replicas(upstream, redis.url, home, '64MiB');
    // Large enough that a client that stops reading holds the server's read (socket buffers
    // take a few MiB): 62 MiB after c, past 95 % of 64 MiB.
    const sizes = { 'lib/a': 20, 'lib/b': 20, 'lib/c': 22 };
    const [a, b, c] = Object.entries(sizes).map(([name, size]) => addImage(upstream, name, size * MiB)) as [
      Image,
      Image,
      Image,
    ];
    await pullImage(keeper, upstream, a);
    await pullImage(keeper, upstream, b);
    // A client of the other replica starts reading a's layer and stalls: a is in use there.
    const reading = await other.fetch(upstream.authority, `/v2/lib/a/blobs/${a.layer}`);
    expect(reading.headers['x-cache']).toBe('HIT');
    await pullImage(keeper, upstream, c); // past the mark: a, the oldest, is read on the other replica
    const evicted = await keeper.waitForLog((l) => l.msg === 'evicted');
    expect(evicted['digest']).toBe(b.manifest);
    const pass = await keeper.waitForLog((l) => l.msg === 'eviction pass');
    expect(pass['inUse']).toBe(1);
    expect(await sha256Of(reading.body)).toBe(a.layer);
    expect(cached(dir, a)).toEqual([true, true, true]);
    expect(cached(dir, b)).toEqual([false, false, false]);
  });

  it('refuses to store a blob larger than the cap on a replica that does not keep the books', async () => {
    const upstream = await startFakeRegistry();
    const redis = await startRedis();
    const home = await sharedDirectory();
    const [, other] = await replicas(upstream, redis.url, home, '10MiB');
    const big = addImage(upstream, 'lib/big', 11 * MiB);
    expect(await pullImage(other, upstream, big)).toBe('BYPASS'); // relayed, not stored
    expect(await home.holds(big)).toEqual([true, true, false]);
  });
});
