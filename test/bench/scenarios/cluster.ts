// Issue 24: upstream bytes for one cold blob asked by N clients at once, spread over three
// replicas on one S3 bucket (s3rver, in this process) coordinated through one Redis (Debian's
// redis-server, on a free loopback port). The target is what one process achieves: upstream
// sends the blob once for the whole cluster. A wrong body fails the run; slowness never does.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import S3rver from 's3rver';
import { bodyDigest } from '../curl.ts';
import { summarize, type Row } from '../harness.ts';
import type { World } from '../world.ts';

export const CLUSTER_CLIENTS = 12;
const REPLICAS = 3;
const BUCKET = 'pullthrough-bench-cluster';
const AWS_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

/** redis-server on a free loopback port, no persistence; ready once it says so. */
async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let seen = '';
  while (!seen.includes('Ready to accept connections')) {
    const [chunk] = (await Promise.race([
      once(child.stdout, 'data'),
      once(child, 'error').then(([error]) => Promise.reject(error as Error)),
    ])) as [Buffer];
    seen += chunk.toString();
  }
  child.stdout.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export async function clusterStampede(world: World, size: number): Promise<Row> {
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
  const replicas: Array<Awaited<ReturnType<World['startProxy']>>> = [];
  try {
    for (let i = 1; i <= REPLICAS; i++) {
      const cluster = { redis: redis.url, secret: 'bench-cluster-secret-0123456789', id: `r${i}` };
      const config = { storage: { type: 's3', s3 }, cluster: { ...cluster, listen: '127.0.0.1:0' } };
      replicas.push(await world.startProxy('cluster', { config, env: AWS_ENV }));
    }
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
    return row(size, ratios, wrong);
  } finally {
    for (const replica of replicas) await replica.stop();
    await server.close();
    await redis.stop();
  }
}

function row(size: number, ratios: number[], wrong: string[]): Row {
  const summary = summarize(ratios);
  const f = (value: number) => value.toFixed(2);
  const met = summary.min === 1 && summary.max === 1 && wrong.length === 0;
  return {
    scenario: `cold blob, ${CLUSTER_CLIENTS} clients over ${REPLICAS} replicas on S3 + Redis (${size / 2 ** 20} MiB)`,
    pullthrough: `upstream bytes/blob ${f(summary.median)} (${f(summary.min)}–${f(summary.max)}), ${
      wrong.length === 0 ? 'every body sha256 ok' : wrong.join('; ')
    }`,
    reference: '–',
    ratio: '–',
    target: '= 1.00, all bodies ok',
    met,
    ...(met
      ? {}
      : { error: `upstream sent ${f(summary.max)}× the blob; ${wrong.join('; ') || 'bodies ok'}` }),
  };
}
