// Issue 24: the added cost of a hit from an object store. One cached blob fetched by one client
// (CONNECT + TLS, curl) from a pullthrough on storage.type s3, with and without the local front
// tier, against a pullthrough on local disk; then the latency of a small hit (s3-latency.ts) from
// the same three. The bucket is s3rver (npm) in this process on loopback: an emulator that stores
// objects as files through Koa, slower than AWS S3 or MinIO, so its rows are a floor, not a forecast.
import S3rver from 's3rver';
import { download, type Target } from '../curl.ts';
import { alternate, rate, ratio, type Row } from '../harness.ts';
import type { World } from '../world.ts';
import { hitLatency } from './s3-latency.ts';

const BUCKET = 'pullthrough-bench';
const AWS_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

export async function s3Hits(world: World): Promise<Row[]> {
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: `${world.dir}/s3rver`,
    configureBuckets: [{ name: BUCKET, configs: [] }],
  });
  const { port } = (await server.run()) as { port: number };
  const s3 = { endpoint: `http://127.0.0.1:${port}`, bucket: BUCKET, forcePathStyle: true };
  const { blob, nginx } = world;
  const proxies = [
    await world.startProxy('disk'),
    await world.startProxy('s3', { config: { storage: { type: 's3', s3 } }, env: AWS_ENV }),
    await world.startProxy('s3-front', {
      config: { storage: { type: 's3', s3: { ...s3, prefix: 'front/' }, front: { maxSize: '64GiB' } } },
      env: AWS_ENV,
    }),
  ] as const;
  try {
    const [disk, bucket, front] = proxies.map((proxy): Target => ({
      url: world.blobUrl(nginx.upstream, blob),
      cacert: proxy.caFile,
      proxy: proxy.url,
    })) as [Target, Target, Target];
    // The fills: from here on every GET is a hit (the front tier's from its linked temp file).
    for (const target of [disk, bucket, front]) await download(target, blob.size);
    const fromBucket = await alternate(world.counts, {
      pullthrough: () => download(bucket, blob.size),
      reference: () => download(disk, blob.size),
    });
    const fromFront = await alternate(world.counts, {
      pullthrough: () => download(front, blob.size),
      reference: () => download(disk, blob.size),
    });
    const latency = await hitLatency(world, { bucket: proxies[1], front: proxies[2], disk: proxies[0] });
    return [
      {
        scenario: 'cached blob from S3 (s3rver), 1 client',
        pullthrough: rate(fromBucket.pullthrough),
        reference: `local disk ${rate(fromBucket.reference)}`,
        ratio: ratio(fromBucket.pullthrough, fromBucket.reference),
        target: 'none (emulator)',
        met: undefined,
      },
      {
        scenario: 'cached blob, S3 with front tier, 1 client',
        pullthrough: rate(fromFront.pullthrough),
        reference: `local disk ${rate(fromFront.reference)}`,
        ratio: ratio(fromFront.pullthrough, fromFront.reference),
        target: '≥ 0.90×',
        met: fromFront.pullthrough.median / fromFront.reference.median >= 0.9,
      },
      ...latency,
    ];
  } finally {
    for (const proxy of proxies) await proxy.stop();
    await server.close();
  }
}
