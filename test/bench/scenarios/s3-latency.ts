// Issue 24: the added latency of a hit from the object store. A small cached blob (64 KiB) and a
// cached manifest by digest, asked for one at a time over one kept-alive connection to each of
// three pullthroughs (on S3 without the front tier, on S3 with it, on local disk: s3.ts starts
// them), interleaved request by request; medians and p99 of some hundreds, and the ratio to the
// disk's. Every answer must be a right body marked `X-Cache: HIT`; slowness never fails a row.
import { readFile } from 'node:fs/promises';
import type { Row } from '../harness.ts';
import {
  interleave,
  KeptAlive,
  latencyRatio,
  latencyText,
  summarizeLatency,
  type Timed,
} from '../latency.ts';
import type { ProxyChild } from '../proxy.ts';
import type { World } from '../world.ts';
import { wrong } from './manifests.ts';

const SMALL = 64 * 1024;
/** Requests a side per measured run of world.counts: 300 in quick mode, 700 in full. */
const PER_RUN = 100;
const WARMUP = 20;
/** GETs after a fill until its copy answers; each takes a ms or so. */
const SETTLE_TRIES = 1000;
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

type Side = 'bucket' | 'front' | 'disk';

/** A GET of `path` on `connection` that throws unless `check` finds nothing wrong and it is a hit. */
function checked(
  connection: KeptAlive,
  path: string,
  headers: Record<string, string>,
  check: (t: Timed) => string | undefined,
) {
  return async () => {
    const timed = await connection.get(path, headers);
    const problem =
      check(timed) ??
      (timed.answer.headers['x-cache'] === 'HIT'
        ? undefined
        : `X-Cache ${String(timed.answer.headers['x-cache'])}`);
    if (problem !== undefined) throw new Error(`${path}: ${problem}`);
    return timed;
  };
}

/** GETs `path` until the answer is a hit; each answer must be right. */
async function untilHit(
  connection: KeptAlive,
  path: string,
  headers: Record<string, string>,
  check: (t: Timed) => string | undefined,
): Promise<void> {
  for (let tries = 0; tries < SETTLE_TRIES; tries++) {
    const timed = await connection.get(path, headers);
    const problem = check(timed);
    if (problem !== undefined) throw new Error(`${path} before the hits: ${problem}`);
    if (timed.answer.headers['x-cache'] === 'HIT') return;
  }
  throw new Error(`${path}: no hit after ${SETTLE_TRIES} GETs`);
}

export async function hitLatency(world: World, proxies: Record<Side, ProxyChild>): Promise<Row[]> {
  const { nginx } = world;
  const blob = await world.newBlob(SMALL);
  const content = await readFile(blob.file);
  const manifest = await world.newManifest([blob]);
  const blobPath = new URL(world.blobUrl(nginx.upstream, blob)).pathname;
  const manifestPath = new URL(world.manifestUrl(nginx.upstream, manifest)).pathname;
  const accept = { accept: MANIFEST_TYPE };
  const sides = Object.keys(proxies) as Side[];
  const connections = await Promise.all(sides.map((side) => KeptAlive.open(proxies[side], nginx.upstream)));
  try {
    const blobOk = ({ answer }: Timed) =>
      answer.status !== 200
        ? `status ${answer.status}`
        : answer.body.equals(content)
          ? undefined
          : 'wrong body';
    const manifestOk = ({ answer }: Timed) => wrong('GET', answer, manifest);
    // The fills (a miss each), then GETs until the stored copy answers (a fill commits just
    // after its client's last byte): from then on every answer must be a hit.
    for (const connection of connections) {
      await untilHit(connection, blobPath, {}, blobOk);
      await untilHit(connection, manifestPath, accept, manifestOk);
    }
    const requests = world.counts.runs * PER_RUN;
    const measure = (path: string, headers: Record<string, string>, ok: (t: Timed) => string | undefined) =>
      interleave(
        WARMUP,
        requests,
        Object.fromEntries(
          sides.map((side, i) => [side, checked(connections[i]!, path, headers, ok)]),
        ) as Record<Side, () => Promise<Timed>>,
      );
    const blobs = await measure(blobPath, {}, blobOk);
    const manifests = await measure(manifestPath, accept, manifestOk);
    return [
      ...rows(`cached ${SMALL / 1024} KiB blob`, requests, blobs),
      ...rows('cached manifest by digest', requests, manifests),
    ];
  } finally {
    for (const connection of connections) connection.close();
  }
}

function rows(
  what: string,
  requests: number,
  found: Record<Side, Parameters<typeof summarizeLatency>[0]>,
): Row[] {
  const disk = summarizeLatency(found.disk);
  const row = (side: 'bucket' | 'front', where: string): Row => {
    const ours = summarizeLatency(found[side]);
    return {
      scenario: `${what} latency, ${where}, 1 kept-alive connection, ${requests} GETs`,
      pullthrough: latencyText(ours),
      reference: `local disk ${latencyText(disk)}`,
      ratio: latencyRatio(ours, disk),
      target: '–',
      met: undefined,
    };
  };
  return [row('bucket', 'S3 (s3rver)'), row('front', 'S3 with front tier')];
}
