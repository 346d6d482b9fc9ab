// Issue 24: aggregate throughput of one cached blob with 1 vs 3 replicas (cluster.ts starts
// them). SPREAD_CLIENTS curl clients read world.blob at once, all through replica 1 or spread
// over the three (client i through replica i mod 3), the two alternated round by round. The
// replicas have the local front tier on, so a hit is read from each replica's own disk and the
// figure is the replicas', not s3rver's (an emulator in the bench's process: s3.ts shows what it
// serves). On this 2-core machine, shared with the clients and other work, this is no scaling
// figure: one replica is one event loop doing the TLS of every client, about one core, and three
// can take the second core too, but no more than that. What the row shows is that spreading
// costs nothing (ratio ≥ 1.00×) and what the second core gives; across machines it is not measured.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Blob } from '../blob.ts';
import { bodyDigest, download, type Target } from '../curl.ts';
import { alternate, rate, ratio, type Row } from '../harness.ts';
import type { World } from '../world.ts';

export const SPREAD_CLIENTS = 6;
/** How long a replica may take to copy a blob into its front tier. */
const FRONT_WAIT_MS = 180_000;
/** A read that did not set off a copy is done again after this long. */
const READ_AGAIN_MS = 30_000;

export type Replica = Awaited<ReturnType<World['startProxy']>>;

/**
 * Reads `blob` whole through `replica` until it is in the replica's front tier (storage/front.ts's
 * layout): a fill's file is linked in when it commits, and a whole read from the bucket sets off a
 * copy in the background; a read that was streamed from another replica's fill sets off neither,
 * so the read is done again now and then. Nothing outside the replica tells when a copy is done
 * but the file appearing: polled.
 */
async function inFront(replica: Replica, target: Target, blob: Blob): Promise<void> {
  const [algorithm, hex] = blob.digest.split(':') as [string, string];
  const file = path.join(replica.cacheDir, 'front', algorithm, hex);
  const deadline = performance.now() + FRONT_WAIT_MS;
  let nextRead = 0;
  while (!(await stat(file).catch(() => undefined))?.isFile()) {
    if (performance.now() > deadline)
      throw new Error(`${blob.digest} not in ${replica.cacheDir}'s front tier`);
    if (performance.now() < nextRead) {
      await delay(100);
      continue;
    }
    await download(target, blob.size);
    nextRead = performance.now() + READ_AGAIN_MS;
  }
}

/** SPREAD_CLIENTS GETs at once over `targets` in turn; their aggregate bytes/s, wall clock. */
async function aggregate(targets: readonly Target[], size: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SPREAD_CLIENTS }, (_, i) => download(targets[i % targets.length]!, size)),
  );
  return (SPREAD_CLIENTS * size) / ((performance.now() - started) / 1000);
}

export async function spreadHits(world: World, replicas: readonly Replica[]): Promise<Row> {
  const { blob, nginx } = world;
  const targets = replicas.map((replica): Target => ({
    url: world.blobUrl(nginx.upstream, blob),
    cacert: replica.caFile,
    proxy: replica.url,
  }));
  // The fill through replica 1, then each replica's front tier holds the blob.
  await download(targets[0]!, blob.size);
  for (const [i, replica] of replicas.entries()) await inFront(replica, targets[i]!, blob);
  // What each replica now serves, checked byte for byte once before it is timed (the timed
  // reads check the size: hashing 6 bodies at once would take the cores being measured).
  for (const [i, target] of targets.entries()) {
    const digest = await bodyDigest(target);
    if (digest !== blob.digest) throw new Error(`replica ${i + 1} served a wrong body (${digest})`);
  }
  const found = await alternate(world.counts, {
    three: () => aggregate(targets, blob.size),
    one: () => aggregate(targets.slice(0, 1), blob.size),
  });
  return {
    scenario: `cached blob, ${SPREAD_CLIENTS} clients spread over 3 replicas vs all on replica 1 (front tier on, ${blob.size / 2 ** 20} MiB)`,
    pullthrough: `3 replicas ${rate(found.three)}`,
    reference: `1 replica ${rate(found.one)}`,
    ratio: ratio(found.three, found.one),
    target: 'none (2 cores: no scaling figure)',
    met: undefined,
  };
}
