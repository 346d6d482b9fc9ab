// Tag records shared through Redis (cluster/tags.ts): a tag confirmed by one replica is known to
// another whatever storage each has, the record upstream confirmed last wins, and with Redis
// gone each replica still has its own.
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DiskBlobStore } from '../../src/cache/blobs.ts';
import { ManifestStore, type TagRecord } from '../../src/cache/manifests.ts';
import { RedisTags } from '../../src/cluster/tags.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { tempDir } from '../helpers/tmp.ts';

async function replicaStore(redis: Redis): Promise<ManifestStore> {
  const store = new DiskBlobStore(await tempDir());
  await store.init();
  const manifests = new ManifestStore(store.layout, store);
  manifests.shareTags(new RedisTags(redis, 'test:'));
  return manifests;
}

const record = (digest: string, checkedAt: number): TagRecord => ({
  digest,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  size: 100,
  checkedAt,
});

describe.skipIf(!(await hasRedisServer()))('shared tag records (needs redis-server)', () => {
  it('are seen by every replica, the latest confirmation winning, and local ones stay without Redis', async () => {
    const server = await startRedis();
    const redis = new Redis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    redis.on('error', () => undefined);
    onTestFinished(() => redis.disconnect());
    await once(redis, 'ready');
    const [one, two] = [await replicaStore(redis), await replicaStore(redis)];
    const a = `sha256:${'a'.repeat(64)}`;
    const b = `sha256:${'b'.repeat(64)}`;

    await one.putTag('r.test:443', 'team/app', 'latest', record(a, 1000));
    expect(await two.getTag('r.test:443', 'team/app', 'latest')).toEqual(record(a, 1000));

    // Replica 2 confirms a newer digest: replica 1 reads it over its own older record.
    await two.putTag('r.test:443', 'team/app', 'latest', record(b, 2000));
    expect(await one.getTag('r.test:443', 'team/app', 'latest')).toEqual(record(b, 2000));

    // Redis gone: each keeps its own record.
    await server.stop();
    expect(await one.getTag('r.test:443', 'team/app', 'latest')).toEqual(record(a, 1000));
    expect(await two.getTag('r.test:443', 'team/app', 'latest')).toEqual(record(b, 2000));
  });
});
