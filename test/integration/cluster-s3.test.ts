// Replicas on a bucket (storage.type s3 with cluster.redis) keep their own cache.dir, so a replica
// sweeps at start every temp file a crash of its own left there; replicas sharing one directory
// keep the fresh ones (another replica may be writing them).
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { startS3 } from '../helpers/s3.ts';
import { tempDir } from '../helpers/tmp.ts';

const cluster = (redis: string, id: string) => ({
  redis,
  secret: 'cluster-test-secret-0123456789',
  id,
  listen: '127.0.0.1:0',
  heartbeat: '100ms',
});

/** A cache.dir holding one temp file written just now, as a fill in progress leaves it. */
async function cacheDirWithTemp(): Promise<string> {
  const dir = path.join(await tempDir(), 'cache');
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  await writeFile(path.join(dir, 'tmp', `sha256-${'a'.repeat(64)}.0123456789ab`), 'half a blob');
  return dir;
}

describe.skipIf(!(await hasRedisServer()))('cluster on a bucket (needs redis-server)', () => {
  it('sweeps its own fresh temp files with a bucket, keeps them on a shared directory', async () => {
    const redis = await startRedis();
    const s3 = await startS3();
    const own = await cacheDirWithTemp();
    const onBucket = await startProxy({
      cache: { dir: own },
      storage: s3.storage(),
      cluster: cluster(redis.url, 'r1'),
    });
    const ready = await onBucket.waitForLog((line) => line.msg === 'cache ready');
    expect(ready['sweptTempFiles']).toBe(1);
    expect(await readdir(path.join(own, 'tmp'))).toEqual([]);

    const shared = await cacheDirWithTemp();
    const onShared = await startProxy({ cache: { dir: shared }, cluster: cluster(redis.url, 'r2') });
    const kept = await onShared.waitForLog((line) => line.msg === 'cache ready');
    expect(kept['sweptTempFiles']).toBe(0);
    expect(await readdir(path.join(shared, 'tmp'))).toHaveLength(1);
  });
});
