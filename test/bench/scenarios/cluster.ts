// Issue 24: three replicas on one S3 bucket (s3rver, in this process) coordinated through one
// Redis (redis.ts), started once for two rows. The stampede: upstream bytes for one cold blob
// asked by N clients at once spread over the replicas; the target is what one process achieves,
// upstream sends the blob once for the whole cluster. Then the cached throughput with 1 vs 3
// replicas (cluster-spread.ts). The replicas run with the local front tier on, as a deployment
// would (it changes nothing upstream sees). A wrong body fails a row; slowness never does.
import { rm } from 'node:fs/promises';
import S3rver from 's3rver';
import { bodyDigest } from '../curl.ts';
import type { Row } from '../harness.ts';
import { startRedis } from '../redis.ts';
import type { World } from '../world.ts';
import { spreadHits, type Replica } from './cluster-spread.ts';
import { onceRow } from './stampede.ts';

export const CLUSTER_CLIENTS = 12;
const REPLICAS = 3;
const BUCKET = 'pullthrough-bench-cluster';
const AWS_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

/** The stampede row on blobs of `size`, then the spread row on world.blob. */
export async function cluster(world: World, size: number): Promise<Row[]> {
  const redis = await startRedis();
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: `${world.dir}/s3rver-cluster`,
    configureBuckets: [{ name: BUCKET, configs: [] }],
  });
  const { port } = (await server.run()) as { port: number };
  const s3 = { endpoint: `http://127.0.0.1:${port}`, bucket: BUCKET, forcePathStyle: true };
  const replicas: Replica[] = [];
  try {
    for (let i = 1; i <= REPLICAS; i++) {
      const cluster = { redis: redis.url, secret: 'bench-cluster-secret-0123456789', id: `r${i}` };
      const storage = { type: 's3', s3, front: { maxSize: '16GiB' } };
      const config = { storage, cluster: { ...cluster, listen: '127.0.0.1:0' } };
      replicas.push(await world.startProxy('cluster', { config, env: AWS_ENV }));
    }
    return [await stampede(world, replicas, size), await spreadHits(world, replicas)];
  } finally {
    for (const replica of replicas) await replica.stop();
    await server.close();
    await redis.stop();
  }
}

async function stampede(world: World, replicas: readonly Replica[], size: number): Promise<Row> {
  const ratios: number[] = [];
  const wrong: string[] = [];
  for (let round = 0; round < world.counts.warmup + world.counts.runs; round++) {
    const blob = await world.newBlob(size);
    try {
      const mark = await world.nginx.upstreamLogMark();
      const url = world.blobUrl(world.nginx.upstream, blob);
      const digests = await Promise.all(
        Array.from({ length: CLUSTER_CLIENTS }, (_, i) => {
          const replica = replicas[i % REPLICAS]!;
          return bodyDigest({ url, cacert: replica.caFile, proxy: replica.url });
        }),
      );
      const bad = digests.filter((digest) => digest !== blob.digest).length;
      if (bad > 0) wrong.push(`round ${round}: ${bad}/${CLUSTER_CLIENTS} bodies wrong`);
      if (round >= world.counts.warmup)
        ratios.push((await world.nginx.upstreamBytes(mark, blob.digest)) / size);
    } finally {
      await rm(blob.file, { force: true });
    }
  }
  const scenario = `cold blob, ${CLUSTER_CLIENTS} clients over ${REPLICAS} replicas on S3 + Redis (${size / 2 ** 20} MiB)`;
  return onceRow(scenario, ratios, wrong);
}
