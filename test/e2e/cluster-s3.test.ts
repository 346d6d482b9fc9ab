// Three replicas on one S3 bucket (s3rver) and one Redis, each with its own cache.dir, in front of
// the real registries (issue 24): Redis killed and started again in the middle of a pull; then
// eight skopeo clients pulling one cold image at once over the three (1 upstream GET per blob),
// a hit on the others; kill -9 of the replica that owns a layer's fill half-way through it (the
// clients of the others complete, the bucket holds only whole verified blobs, the next pull is a
// hit); and a private image pulled with credentials on one replica refused anonymously on another.
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { expect, test } from 'vitest';
import { hasRedisServer, startRedis, type TestRedis } from '../helpers/redis.ts';
import { startS3, uploadsOf, type TestS3 } from '../helpers/s3.ts';
import { skopeo, skopeoCopy } from './env/clients/skopeo.ts';
import type { TestImage } from './env/image.ts';
import type { Pullthrough } from './env/proxy.ts';
import { servedRequests } from './env/registry.ts';
import { expectFailure, expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY, TOKEN_REGISTRY } from './env/world.ts';

const MiB = 1024 * 1024;
const world = useWorld({
  images: {
    restart: { repository: 'e2e/restart', tag: 'v1', file: 'restart.bin', size: 8 * MiB },
    cold: { repository: 'e2e/cold', tag: 'v1', file: 'cold.bin', size: 16 * MiB },
    crash: { repository: 'e2e/crash', tag: 'v1', file: 'crash.bin', size: 64 * MiB },
  },
  tokenAuth: {
    images: { private: { repository: 'private/scale', tag: 'v1', file: 'private.bin', size: MiB } },
  },
});
const AWS_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
const PREFIX = 'pullthrough:';

async function startReplicas(s3: TestS3, redis: TestRedis): Promise<Pullthrough[]> {
  const w = world();
  const replicas: Pullthrough[] = [];
  for (const id of ['r1', 'r2', 'r3']) {
    replicas.push(
      await w.startProxy(id, {
        storage: s3.storage(),
        env: AWS_ENV,
        cluster: {
          redis: redis.url,
          secret: 'e2e-cluster-secret-0123456789',
          id,
          listen: '127.0.0.1:0',
          heartbeat: '200ms',
          leaseTtl: '2s',
        },
      }),
    );
  }
  return replicas;
}

/** Who takes the fill lease of `digest` next, from Redis's keyspace events (no polling). */
async function watchLease(url: string, digest: string): Promise<{ holder: Promise<string>; close(): void }> {
  const key = `${PREFIX}lease:${digest}`;
  const sub = new Redis(url, { lazyConnect: true });
  const cmd = new Redis(url, { lazyConnect: true });
  for (const client of [sub, cmd]) client.on('error', () => undefined);
  await cmd.config('SET', 'notify-keyspace-events', 'K$');
  await sub.subscribe(`__keyspace@0__:${key}`);
  const holder = new Promise<string>((resolve) => {
    sub.on('message', (_channel: string, event: string) => {
      if (event !== 'set') return;
      void cmd.get(key).then((value) => value && resolve((JSON.parse(value) as { id: string }).id));
    });
  });
  return { holder, close: () => [sub, cmd].forEach((client) => client.disconnect()) };
}

/** Resolves once a temp file of `digest` in `dir` has `bytes` (inotify events, no polling). */
function tempReaches(dir: string, digest: string, bytes: number): Promise<number> {
  const name = `sha256-${digest.slice('sha256:'.length)}`;
  return new Promise((resolve) => {
    const check = async () => {
      for (const file of await readdir(dir).catch(() => [] as string[])) {
        if (!file.startsWith(name)) continue;
        const size = (await stat(join(dir, file)).catch(() => undefined))?.size ?? 0;
        if (size >= bytes) {
          watcher.close();
          resolve(size);
        }
      }
    };
    const watcher = watch(dir, () => void check());
    // It may have grown past `bytes` before the watch began.
    void check();
  });
}

async function readyz(replica: Pullthrough): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${replica.port}/readyz`);
  return response.text();
}

/** Each replica's /readyz, asked again until it sees the three with Redis up (heartbeats: 200 ms). */
async function untilClustered(replicas: Pullthrough[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (const replica of replicas) {
    for (;;) {
      const text = await readyz(replica);
      if (text.includes('cluster: 3 replicas') && !text.includes('redis unreachable')) break;
      if (Date.now() > deadline) throw new Error(`replica never saw the cluster again: ${text}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function pull(replica: Pullthrough, image: TestImage, label: string) {
  const ref = `docker://${REGISTRY}/${image.repository}:${image.tag}`;
  return skopeoCopy(world(), ref, world().mkdir(label), { certDir: replica.caCertDir, proxy: replica.url });
}

/** GETs of `digest` in `image`'s repository that the registry served (its own log, up to a mark). */
async function upstreamGets(image: TestImage, digest: string): Promise<number> {
  const upstream = world().registries.find((registry) => registry.name === REGISTRY)!;
  await upstream.mark();
  const uri = `/v2/${image.repository}/blobs/${digest}`;
  return servedRequests(upstream).filter((r) => r.method === 'GET' && r.uri === uri).length;
}

/** Every blob object in the bucket hashes to its key: nothing partial or unverified is listed. */
async function expectOnlyWholeBlobs(s3: TestS3): Promise<string[]> {
  const keys: string[] = [];
  for (const object of await s3.objects('blobs/')) {
    const got = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: object.key }));
    const hash = createHash('sha256');
    for await (const chunk of got.Body as AsyncIterable<Buffer>) hash.update(chunk);
    expect(object.key.endsWith(`/${hash.digest('hex')}`), object.key).toBe(true);
    keys.push(object.key);
  }
  return keys;
}

const blobKey = (digest: string) => {
  const hex = digest.slice('sha256:'.length);
  return `blobs/sha256/${hex.slice(0, 2)}/${hex}`;
};

type Three = [Pullthrough, Pullthrough, Pullthrough];

/** Redis killed once a layer's fill holds its lease, and started again (empty) after the pulls. */
async function redisRestartMidPull(redis: TestRedis, replicas: Three): Promise<void> {
  const [r1, r2, r3] = replicas;
  const restart = world().image('restart');
  const leased = await watchLease(redis.url, restart.layer.digest);
  const pulls = [pull(r1, restart, 'restart-1'), pull(r2, restart, 'restart-2')];
  console.log(`[e2e] cluster-s3 | restart layer leased by ${await leased.holder}: redis killed`);
  leased.close();
  await redis.stop();
  (await Promise.all(pulls)).forEach((result, i) => expectSuccess(`pull ${i} with redis down`, result));
  expectSuccess('pull via r3 with redis down', await pull(r3, restart, 'restart-3'));
  expect(await readyz(r3)).toContain('redis unreachable');
  await redis.start();
  await untilClustered(replicas);
  console.log(`[e2e] cluster-s3 | redis back: ${(await readyz(r1)).trim().replace(/\n/g, ' | ')}`);
}

/**
 * Eight cold pulls at once over the three: one upstream GET per blob for the whole cluster, and
 * one upload of each to the bucket (the replicas streaming from the holder keep theirs local).
 */
async function coldStampede(s3: TestS3, replicas: Three): Promise<void> {
  const cold = world().image('cold');
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => pull(replicas[i % 3]!, cold, `cold-${i}`)),
  );
  results.forEach((result, i) => expectSuccess(`cold pull ${i} via r${(i % 3) + 1}`, result));
  console.log(`[e2e] cluster-s3 | 8 cold pulls over 3 replicas in ${Date.now() - started} ms`);
  expect(await upstreamGets(cold, cold.layer.digest)).toBe(1);
  expect(await upstreamGets(cold, cold.config.digest)).toBe(1);
  const layerUploads = uploadsOf(s3.requests, cold.layer.digest.slice('sha256:'.length));
  expect(layerUploads).toEqual({
    created: 1,
    completed: 1,
    aborted: 0,
    singlePuts: 0,
    bytes: cold.layer.size,
  });
  const configUploads = uploadsOf(s3.requests, cold.config.digest.slice('sha256:'.length));
  expect(configUploads).toMatchObject({ created: 0, singlePuts: 1 });
  console.log(`[e2e] cluster-s3 | cold layer: ${JSON.stringify(layerUploads)} at the bucket`);
  for (const [i, replica] of replicas.slice(1).entries()) {
    expectSuccess(`warm pull via r${i + 2}`, await pull(replica, cold, `warm-${i}`));
  }
  expect(await upstreamGets(cold, cold.layer.digest)).toBe(1);
  expect(await upstreamGets(cold, cold.config.digest)).toBe(1);
}

/** kill -9 of the replica that owns the 64 MiB layer's fill once 16 MiB of it are in: the survivors. */
async function killOwnerMidFill(s3: TestS3, redis: TestRedis, replicas: Three): Promise<Pullthrough[]> {
  const crash = world().image('crash');
  const lease = await watchLease(redis.url, crash.layer.digest);
  const started = Date.now();
  const crashPulls = replicas.flatMap((replica, i) =>
    [0, 1].map((j) => pull(replica, crash, `crash-${i}-${j}`)),
  );
  const owner = await lease.holder;
  lease.close();
  const victim = replicas[['r1', 'r2', 'r3'].indexOf(owner)]!;
  const reached = await tempReaches(join(victim.cacheDir, 'tmp'), crash.layer.digest, 16 * MiB);
  victim.daemon.child.kill('SIGKILL');
  console.log(`[e2e] cluster-s3 | ${owner} owns the crash layer: killed at ${reached} bytes of its fill`);
  const crashResults = await Promise.all(crashPulls);
  const survivors = replicas.filter((replica) => replica !== victim);
  for (const [i, result] of crashResults.entries()) {
    if (replicas[Math.floor(i / 2)] !== victim) expectSuccess(`crash pull ${i} (a survivor)`, result);
  }
  console.log(`[e2e] cluster-s3 | survivors' pulls done ${Date.now() - started} ms after they started`);
  const keys = await expectOnlyWholeBlobs(s3);
  expect(keys).toContain(blobKey(crash.layer.digest));
  // Put there by the survivor that took the fetch over, alone (the dead owner's upload never completed).
  const crashUploads = uploadsOf(s3.requests, crash.layer.digest.slice('sha256:'.length));
  expect(crashUploads.completed).toBe(1);
  console.log(`[e2e] cluster-s3 | crash layer: ${JSON.stringify(crashUploads)} at the bucket`);
  console.log(`[e2e] cluster-s3 | bucket: ${keys.length} blobs, each hashing to its key`);
  const takenOver = await upstreamGets(crash, crash.layer.digest);
  expectSuccess('pull after the crash', await pull(survivors[0]!, crash, 'crash-after'));
  expect(await upstreamGets(crash, crash.layer.digest)).toBe(takenOver);
  console.log(`[e2e] cluster-s3 | crash layer: ${takenOver} upstream GETs (the dead fill, the takeover)`);
  return survivors;
}

/** Private content pulled with credentials on one replica is refused anonymously on another. */
async function privateAcrossReplicas(s3: TestS3, first: Pullthrough, second: Pullthrough): Promise<void> {
  const w = world();
  const { tokenAuth } = w;
  const secret = tokenAuth.image('private');
  const privateRef = `docker://${TOKEN_REGISTRY}/${secret.repository}:${secret.tag}`;
  const layerPath = `/v2/${secret.repository}/blobs/${secret.layer.digest}`;
  const withCreds = ['copy', '--quiet', '--src-creds', tokenAuth.creds, '--src-cert-dir', first.caCertDir];
  expectSuccess(
    'skopeo copy --src-creds (private)',
    await skopeo(w, [...withCreds, privateRef, `dir:${w.mkdir('private-creds')}`], { proxy: first.url }),
  );
  const fetched = await first.log.waitForRequest(TOKEN_REGISTRY, 'GET', layerPath);
  expect([fetched.status, fetched['cache']]).toEqual([200, 'miss']);
  expect(await s3.objects(blobKey(secret.layer.digest))).toHaveLength(1);
  const refused = expectFailure(
    'skopeo copy --src-no-creds (private, another replica)',
    await skopeoCopy(w, privateRef, w.mkdir('private-anon'), {
      certDir: second.caCertDir,
      proxy: second.url,
    }),
  );
  expect(refused).toMatch(/unauthorized|authentication required/i);
  const served = second.log.requests(TOKEN_REGISTRY).filter((line) => line.status === 200);
  expect(served.map((line) => line.path)).not.toContain(layerPath);
}

test.skipIf(!(await hasRedisServer()))(
  '3 replicas on one bucket: Redis restart, 8 cold pulls, kill -9 mid-fill, private stays private',
  async () => {
    const s3 = await startS3();
    const redis = await startRedis();
    const replicas = (await startReplicas(s3, redis)) as Three;
    await untilClustered(replicas);
    await redisRestartMidPull(redis, replicas);
    await coldStampede(s3, replicas);
    const [first, second] = await killOwnerMidFill(s3, redis, replicas);
    await privateAcrossReplicas(s3, first!, second!);
  },
  180_000,
);
