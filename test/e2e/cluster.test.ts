// Three replicas of pullthrough on one Redis and one cache directory, in front of the real
// registry: eight skopeo clients pulling the same cold image at once, spread over the three,
// cost one upstream GET per blob in the registry's own log, and each replica serves the image
// afterwards from the cache. Then the admin API on any replica (`pullthrough cache ls` gives the
// same listing through each, a purge through one that does not keep the books takes effect), and
// kill -9 of the bookkeeper: a survivor takes the books within the lease's TTL, admin through the
// survivors works again, and the disk cap is still enforced.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { NODE_FLAGS } from '../../src/node-flags.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { skopeoCopy } from './env/clients/skopeo.ts';
import type { TestImage } from './env/image.ts';
import { run, type RunResult } from './env/processes.ts';
import { nodeBinary, REPO_ROOT, type Pullthrough } from './env/proxy.ts';
import { servedRequests } from './env/registry.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const MiB = 1024 * 1024;
const TOKEN = 'e2e-admin-token-0123456789';
const KEEPS = 'cache bookkeeper: this replica keeps the books';
const LEASE_TTL_MS = 3000;
const world = useWorld({
  images: {
    cluster: { repository: 'e2e/cluster', tag: 'v1', file: 'cluster.bin', size: 16 * MiB },
    capA: { repository: 'e2e/cap-a', tag: 'v1', file: 'cap-a.bin', size: 12 * MiB },
    capB: { repository: 'e2e/cap-b', tag: 'v1', file: 'cap-b.bin', size: 12 * MiB },
  },
});

type Replica = Pullthrough & { id: string };

async function startReplicas(dir: string, redisUrl: string): Promise<Replica[]> {
  const replicas: Replica[] = [];
  for (const id of ['r1', 'r2', 'r3']) {
    const proxy = await world().startProxy(id, {
      // 20 MiB: the 16 MiB image fits; two 12 MiB ones do not (eviction past 95 %).
      cache: { dir, maxSize: '20MiB', minFree: '0%' },
      admin: { token: TOKEN },
      cluster: {
        redis: redisUrl,
        secret: 'e2e-cluster-secret-0123456789',
        id,
        listen: '127.0.0.1:0',
        heartbeat: '200ms',
        leaseTtl: `${LEASE_TTL_MS}ms`,
      },
    });
    replicas.push(Object.assign(proxy, { id }));
  }
  return replicas;
}

/** `pullthrough …`, the real CLI as an operator runs it, with the admin token in its environment. */
function pullthrough(args: readonly string[]): Promise<RunResult> {
  return run(nodeBinary(), [...NODE_FLAGS, path.join(REPO_ROOT, 'src', 'main.ts'), ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: world().home, PULLTHROUGH_ADMIN_TOKEN: TOKEN },
    timeoutMs: 60_000,
  });
}

async function cacheLs(replica: Replica): Promise<unknown> {
  const ls = await pullthrough(['cache', 'ls', '--json', '--server', replica.url]);
  return JSON.parse(expectSuccess(`pullthrough cache ls via ${replica.id}`, ls).stdout) as unknown;
}

/** The replica whose log says it keeps the books (from log line `from` on). */
function keeperOf(replicas: Replica[], from = 0, timeoutMs = 10_000): Promise<Replica> {
  return Promise.race(
    replicas.map((replica) =>
      replica.log.waitForLine((line) => line.msg === KEEPS, { from, timeoutMs }).then(() => replica),
    ),
  );
}

function pull(replica: Replica, image: TestImage, label: string) {
  const ref = `docker://${REGISTRY}/${image.repository}:${image.tag}`;
  return skopeoCopy(world(), ref, world().mkdir(label), { certDir: replica.caCertDir, proxy: replica.url });
}

function blobFile(dir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(dir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** Eight cold pulls at once over the three: one upstream GET per blob; a later one costs none. */
async function coldPulls(replicas: Replica[]): Promise<void> {
  const image = world().image('cluster');
  const upstream = world().registries.find((registry) => registry.name === REGISTRY)!;
  const gets = (digest: string) =>
    servedRequests(upstream).filter(
      (r) => r.method === 'GET' && r.uri === `/v2/${image.repository}/blobs/${digest}`,
    ).length;
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => pull(replicas[i % 3]!, image, `pull-${i}`)),
  );
  results.forEach((result, i) => expectSuccess(`skopeo copy ${i} via r${(i % 3) + 1}`, result));
  console.log(`[e2e] cluster | 8 cold pulls over 3 replicas in ${Date.now() - started} ms`);
  await upstream.mark();
  expect(gets(image.layer.digest)).toBe(1);
  expect(gets(image.config.digest)).toBe(1);

  // How each replica served the layer: the holder's fill (miss), joined while it ran, or a hit.
  const layerPath = `/v2/${image.repository}/blobs/${image.layer.digest}`;
  const served = replicas.map((replica) => {
    const lines = replica.log.requests(REGISTRY).filter((line) => line.path === layerPath);
    return `${replica.id}: ${lines.map((line) => `${String(line['cache'])}${line['shared'] ? '+shared' : ''}`).join(' ')}`;
  });
  console.log(`[e2e] cluster | layer served ${served.join(' | ')}`);
  for (const replica of replicas) {
    const line = await replica.log.waitForRequest(REGISTRY, 'GET', layerPath);
    expect(line['status']).toBe(200);
  }
  expectSuccess('skopeo copy via r2 (warm)', await pull(replicas[1]!, image, 'again'));
  await upstream.mark();
  expect(gets(image.layer.digest)).toBe(1);
}

/** `cache ls` through each replica gives the bookkeeper's listing; a purge through another works. */
async function adminOnEveryReplica(replicas: Replica[], dir: string): Promise<Replica> {
  const image = world().image('cluster');
  const keeper = await keeperOf(replicas);
  const listings = await Promise.all(replicas.map((replica) => cacheLs(replica)));
  expect(JSON.stringify(listings[0])).toContain(image.manifest.digest);
  for (const listing of listings.slice(1)) expect(listing).toEqual(listings[0]);
  console.log(`[e2e] cluster | cache ls: the same listing through r1, r2, r3 (${keeper.id} keeps the books)`);

  const other = replicas.find((replica) => replica !== keeper)!;
  const ref = `${REGISTRY}/${image.repository}:${image.tag}`;
  const purge = expectSuccess(
    `pullthrough cache purge via ${other.id}`,
    await pullthrough(['cache', 'purge', ref, '--server', other.url]),
  );
  console.log(`[e2e] cluster | purge via ${other.id}: ${purge.stdout.trim()}`);
  expect(existsSync(blobFile(dir, image.layer.digest))).toBe(false);
  expect(JSON.stringify(await cacheLs(keeper))).not.toContain(image.manifest.digest);
  return keeper;
}

/** kill -9 of the bookkeeper: 503 meanwhile, a survivor keeps the books within the TTL, cap enforced. */
async function bookkeeperKilled(replicas: Replica[], keeper: Replica, dir: string): Promise<void> {
  const survivors = replicas.filter((replica) => replica !== keeper);
  const marks = survivors.map((replica) => replica.log.mark());
  keeper.daemon.child.kill('SIGKILL');
  const killedAt = Date.now();
  // The lease still names the dead replica (renewed every TTL/3): a survivor says so, at once.
  const meanwhile = await fetch(`http://127.0.0.1:${survivors[0]!.port}/admin/images`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const why = (await meanwhile.json()) as { error: string };
  console.log(`[e2e] cluster | ${keeper.id} killed; meanwhile: ${meanwhile.status} ${why.error}`);
  expect(meanwhile.status).toBe(503);
  expect(meanwhile.headers.get('retry-after')).toBe('3');
  expect(why.error).toMatch(/^no cache bookkeeper can answer: .*retry then$/);
  // The CLI asked meanwhile waits the takeover out (Retry-After 3, at most 6 s) and lists.
  const waiting = pullthrough(['cache', 'ls', '--json', '--server', survivors[0]!.url]);

  const next = await Promise.race(
    survivors.map((replica, i) =>
      replica.log
        .waitForLine((line) => line.msg === KEEPS, { from: marks[i]!, timeoutMs: LEASE_TTL_MS + 5000 })
        .then(() => replica),
    ),
  );
  const takeover = Date.now() - killedAt;
  console.log(`[e2e] cluster | ${next.id} keeps the books ${takeover} ms after the kill`);
  expect(takeover).toBeLessThan(LEASE_TTL_MS + 2000);
  const waited = expectSuccess(
    `pullthrough cache ls via ${survivors[0]!.id} during the takeover`,
    await waiting,
  );
  console.log(
    `[e2e] cluster | cache ls during the takeover: ${Math.round(waited.ms)} ms; ${waited.stderr.trim()}`,
  );
  expect(waited.stderr).toBe('pullthrough: the cache bookkeeper is changing hands; retrying for up to 6 s\n');
  const other = survivors.find((replica) => replica !== next)!;
  expect(JSON.parse(waited.stdout)).toEqual(await cacheLs(next));
  expect(await cacheLs(other)).toEqual(await cacheLs(next));

  // The cap (20 MiB) on the new bookkeeper: the second 12 MiB image evicts the first.
  const [a, b] = [world().image('capA'), world().image('capB')];
  const from = next.log.mark();
  expectSuccess(`skopeo copy cap-a via ${other.id}`, await pull(other, a, 'cap-a'));
  expectSuccess(`skopeo copy cap-b via ${next.id}`, await pull(next, b, 'cap-b'));
  const evicted = await next.log.waitForLine((line) => line.msg === 'evicted', { from });
  expect(evicted['digest']).toBe(a.manifest.digest);
  expect(existsSync(blobFile(dir, a.layer.digest))).toBe(false);
  expect(existsSync(blobFile(dir, b.layer.digest))).toBe(true);
  const listing = JSON.stringify(await cacheLs(other));
  expect([listing.includes(a.manifest.digest), listing.includes(b.manifest.digest)]).toEqual([false, true]);
  console.log(`[e2e] cluster | cap: ${next.id} evicted e2e/cap-a (${String(evicted['bytes'])} bytes)`);
}

test.skipIf(!(await hasRedisServer()))(
  '3 replicas: 1 upstream GET per blob; admin on any replica; the bookkeeper killed',
  async () => {
    const redis = await startRedis();
    const dir = path.join(world().mkdir('cluster'), 'cache');
    const replicas = await startReplicas(dir, redis.url);
    await coldPulls(replicas);
    const started = Date.now();
    const keeper = await adminOnEveryReplica(replicas, dir);
    await bookkeeperKilled(replicas, keeper, dir);
    console.log(`[e2e] cluster | admin and bookkeeper steps: ${Date.now() - started} ms`);
  },
  120_000,
);
