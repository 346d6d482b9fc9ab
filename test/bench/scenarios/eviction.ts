// Scenario 10: the cache index and eviction engine on ~100k cached blobs, in process: rebuilding
// index.db from the files, opening it again (the start-up path, target < 1 s), 100k touches, a
// reconcile, and one eviction pass freeing 10 % (from 100 % of maxSize down to the 90 % mark).
// The cache is ~11k images of a manifest, a config and 8 layers, one of them a base shared by
// 100 images, written straight in pullthrough's layout (src/cache/layout.ts).
// Standalone: `npx node test/bench/scenarios/eviction.ts [images]`.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { removeFiles } from '../../../src/cache/eviction-files.ts';
import { Evictor } from '../../../src/cache/eviction.ts';
import { CacheIndex } from '../../../src/cache/index.ts';
import { CacheLayout } from '../../../src/cache/layout.ts';
import { parseDigest } from '../../../src/oci/digest.ts';
import { summarize, type Counts, type Row } from '../harness.ts';

const IMAGES = 11_100;
const PARALLEL_WRITES = 64;
const HOST = 'registry.bench:443';

async function put(layout: CacheLayout, content: string): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
  const file = layout.blobPath(parseDigest(digest)!);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return digest;
}

async function writeImage(layout: CacheLayout, i: number): Promise<void> {
  const config = await put(layout, JSON.stringify({ architecture: 'amd64', os: 'linux', image: i }));
  const layers = [await put(layout, `base layer ${Math.floor(i / 100)}\n`)];
  for (let j = 1; j < 8; j++) layers.push(await put(layout, `layer ${j} of image ${i}\n`));
  const descriptor = (digest: string) => ({ mediaType: 'application/octet-stream', digest, size: 1 });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    config: descriptor(config),
    layers: layers.map(descriptor),
  });
  const digest = await put(layout, manifest);
  const parsed = parseDigest(digest)!;
  const meta = layout.manifestMetaPath(parsed);
  await mkdir(path.dirname(meta), { recursive: true });
  await writeFile(meta, JSON.stringify({ mediaType: 'application/vnd.oci.image.manifest.v1+json' }));
  const tag = layout.tagPath(HOST, `bench/image${i}`, 'latest');
  await mkdir(path.dirname(tag), { recursive: true });
  await writeFile(tag, JSON.stringify({ digest, mediaType: 'x', size: manifest.length, checkedAt: 0 }));
  // Last use, as a rebuild reads it: image i was pulled i seconds after the epoch of the run.
  const seconds = 1_700_000_000 + i;
  await utimes(layout.blobPath(parsed), seconds, seconds);
}

async function filledCache(dir: string, images: number): Promise<void> {
  const layout = new CacheLayout(dir);
  let next = 0;
  const writer = async () => {
    while (next < images) await writeImage(layout, next++);
  };
  await Promise.all(Array.from({ length: PARALLEL_WRITES }, writer));
}

const ms = (value: number) => `${Math.round(value).toLocaleString('en-US')} ms`;

function row(scenario: string, figure: string, target: string, met: boolean | undefined, note = ''): Row {
  return { scenario, pullthrough: figure, reference: note, ratio: '', target, met };
}

export async function cacheIndex(world: { readonly dir: string; readonly counts: Counts }, images = IMAGES) {
  const dir = path.join(world.dir, 'eviction');
  await rm(dir, { recursive: true, force: true });
  try {
    await filledCache(dir, images);
    const rebuilt = await CacheIndex.open(dir);
    const entries = rebuilt.opened.rebuilt?.added ?? 0;
    const total = rebuilt.usage().total;
    rebuilt.close();
    const open = summarize(await repeat(world.counts, () => timeOpen(dir)));
    const index = await CacheIndex.open(dir);
    const touches = await timeTouches(index);
    let started = performance.now();
    const reconciled = await index.reconcile();
    const reconcileMs = performance.now() - started;
    const evictor = new Evictor({
      index,
      config: { maxSize: total, minFree: { bytes: 0 }, inactive: 0, pins: [], budgets: [] },
      remove: removeFiles(index.layout),
    });
    const stalls = monitorEventLoopDelay({ resolution: 5 });
    stalls.enable();
    started = performance.now();
    const pass = await evictor.pass();
    const passMs = performance.now() - started;
    stalls.disable();
    index.close();
    const files = pass.evicted.reduce((sum, image) => sum + image.digests.length, 0);
    const count = (n: number) => n.toLocaleString('en-US');
    const entriesText = `${count(entries)} entries`;
    return [
      row(`index rebuild from files, ${entriesText}`, ms(rebuilt.opened.ms), '', undefined),
      row(
        `index open, ${entriesText}`,
        `${ms(open.median)} (${ms(open.min)}–${ms(open.max)})`,
        '< 1 s',
        open.median < 1000,
      ),
      row(
        `index: 100k touches of ${count(touches.manifests)} manifests`,
        ms(touches.ms),
        '',
        undefined,
        `longest call (a flush) ${ms(touches.longest)}`,
      ),
      row(
        `index reconcile, ${entriesText}`,
        ms(reconcileMs),
        '',
        reconciled.added + reconciled.dropped === 0,
      ),
      row(
        'eviction pass freeing 10 %',
        ms(passMs),
        '',
        pass.usage.after <= total * 0.9,
        `${count(pass.evicted.length)} images, ${count(files)} files; longest event-loop stall ${ms(stalls.max / 1e6)}`,
      ),
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function repeat(counts: Counts, fn: () => Promise<number>): Promise<number[]> {
  const values: number[] = [];
  for (let round = 0; round < counts.warmup + counts.runs; round++) {
    const value = await fn();
    if (round >= counts.warmup) values.push(value);
  }
  return values;
}

async function timeOpen(dir: string): Promise<number> {
  const started = performance.now();
  const index = await CacheIndex.open(dir);
  const took = performance.now() - started;
  index.close();
  return took;
}

/** 100k touches spread over every manifest, as pulls would make them; the longest call is a flush. */
async function timeTouches(index: CacheIndex): Promise<{ ms: number; longest: number; manifests: number }> {
  const snapshot = await index.snapshot();
  const manifests = [...snapshot.entries.values()].filter((e) => e.kind === 'manifest').map((e) => e.digest);
  const started = performance.now();
  let longest = 0;
  for (let i = 0; i < 100_000; i++) {
    const before = performance.now();
    index.touch(manifests[i % manifests.length] ?? '');
    longest = Math.max(longest, performance.now() - before);
  }
  index.flush();
  return { ms: performance.now() - started, longest, manifests: manifests.length };
}

if (import.meta.main) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pullthrough-bench-'));
  try {
    const images = Number(process.argv[2] ?? IMAGES);
    const rows = await cacheIndex({ dir, counts: { warmup: 1, runs: 5 } }, images);
    for (const r of rows) process.stdout.write(`${r.scenario}: ${r.pullthrough} ${r.reference}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
