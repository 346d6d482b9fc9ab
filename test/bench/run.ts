// `npm run bench [-- --quick] [-- --cpu-prof DIR]`: sets up its references on loopback
// (world.ts; squid.ts for tunnels), runs every scenario after a warm-up (throughput, tunnels,
// request rate, first request, memory, start-up), prints the machine and a table of medians
// (min–max) with the ratio to the reference, and writes that table to test/bench/results.md.
// A slow figure is reported, never a failure: the exit code is 1 only when a scenario could
// not run or gave a wrong answer.
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as prettier from 'prettier';
import { ensureDeps } from './deps.ts';
import { markdownTable, textTable, type Counts, type Row } from './harness.ts';
import { describeMachine } from './machine.ts';
import { buildProxy } from './proxy.ts';
import { cachedBlob } from './scenarios/cached.ts';
import { s3Hits } from './scenarios/s3.ts';
import { coldBlob } from './scenarios/cold.ts';
import { cachedManifests } from './scenarios/manifests.ts';
import { firstRequestToNewHost } from './scenarios/first-request.ts';
import { memoryPeak } from './scenarios/memory.ts';
import { skopeoDirect, skopeoPull, skopeoStampede } from './scenarios/skopeo.ts';
import { podmanDirect } from './scenarios/podman.ts';
import { stampede } from './scenarios/stampede.ts';
import { cluster } from './scenarios/cluster.ts';
import { startRegistries, type Registries } from './registries.ts';
import { startup } from './scenarios/startup.ts';
import { cacheIndex } from './scenarios/eviction.ts';
import { tunnel } from './scenarios/tunnel.ts';
import { makeWorld, type World } from './world.ts';

const MiB = 2 ** 20;
const RESULTS = path.join(import.meta.dirname, 'results.md');
/** From this line on, results.md is written by hand (where the cost goes) and kept by each run. */
const KEPT = '<!-- below: written by hand, kept by npm run bench -->';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
  },
});
const quick = values.quick;
const counts: Counts = quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 7 };
const blobSize = (quick ? 256 : 1024) * MiB;
// Scenario 4 checks correctness (one upstream fetch, 20 right bodies), not speed; its 20 bodies
// go through the cold path and sha256sum on the same 2 cores, ~20 s a round at 256 MiB.
const stampedeSize = (quick ? 64 : 256) * MiB;
// The cluster's stampede goes through an S3 emulator three times over: a smaller blob.
const clusterSize = (quick ? 32 : 64) * MiB;
// The skopeo scenarios: one image pulled whole (4 layers), and one that 20 skopeo copies pull at
// once into 20 directories on disk (20 × 64 MiB written per side and round in full mode).
const IMAGE = 'bench/image';
const STAMPEDE_IMAGE = 'bench/stampede';
// Issue 21: ten equal layers, pulled straight from the upstream and through pullthrough, by
// skopeo and by podman.
const LAYERED_IMAGE = 'bench/layered';
const imageSizes = {
  [IMAGE]: (quick ? 64 : 256) * MiB,
  [STAMPEDE_IMAGE]: (quick ? 32 : 64) * MiB,
  [LAYERED_IMAGE]: { bytes: (quick ? 64 : 256) * MiB, layers: 10 },
};
// Split over the measured rounds; pullthrough answers some hundreds to thousands a second here.
const manifestRequests = quick ? 20_000 : 100_000;
// Issue 21's memory cases, in fresh proxies: 20 cold blobs at once (5 GiB a round in full mode),
// and 20 hits of one blob at two sizes (80 GiB sent a round at 4 GiB, ~1.5 min here).
const memorySizes = quick
  ? { cold: 64 * MiB, hits: [256 * MiB, 1024 * MiB] as const }
  : { cold: 256 * MiB, hits: [1024 * MiB, 4096 * MiB] as const };
const memoryRounds = quick ? 1 : 3;
const S3_ROWS = [
  'cached blob from S3 (s3rver)',
  'cached blob, S3 with front tier',
  'cached small blob latency, S3 / S3 with front tier',
  'cached manifest latency, S3 / S3 with front tier',
];

async function attempt(names: string[], scenario: () => Promise<Row | Row[]>): Promise<Row[]> {
  const started = performance.now();
  process.stderr.write(`bench: ${names.join(', ')}…\n`);
  try {
    const rows = await scenario();
    process.stderr.write(`bench:   done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    return Array.isArray(rows) ? rows : [rows];
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return names.map((scenario) => ({
      scenario,
      pullthrough: '',
      reference: '',
      ratio: '',
      target: '',
      met: undefined,
      error: message,
    }));
  }
}

type WithRegistries = <T>(use: (registries: Registries) => Promise<T>) => Promise<T>;

/** skopeo's and podman's pulls, against the registries that `withRegistries` starts on first use. */
async function imageClientRows(withRegistries: WithRegistries): Promise<Row[]> {
  return [
    ...(await attempt(['skopeo pull, cold', 'skopeo pull, cached'], () =>
      withRegistries((r) => skopeoPull(r, r.image(IMAGE), counts)),
    )),
    ...(await attempt(
      ['skopeo pull against a direct pull, cold', 'skopeo pull against a direct pull, cached'],
      () => withRegistries((r) => skopeoDirect(r, r.image(LAYERED_IMAGE), counts)),
    )),
    ...(await attempt(['podman pull, 10 layers, cold', 'podman pull, 10 layers, cached'], () =>
      withRegistries((r) => podmanDirect(r, r.image(LAYERED_IMAGE), counts)),
    )),
    ...(await attempt(['skopeo pull, 20 at once, cold'], () =>
      withRegistries((r) => skopeoStampede(r, r.image(STAMPEDE_IMAGE), counts)),
    )),
  ];
}

async function main(): Promise<number> {
  ensureDeps();
  buildProxy();
  const machine = describeMachine();
  const loadBefore = os.loadavg()[0] ?? 0;
  const mode = `${quick ? 'quick' : 'full'}: ${counts.warmup} warm-up + ${counts.runs} runs per side, ${blobSize / MiB} MiB blob, client curl (HTTP/1.1); skopeo images ${imageSizes[IMAGE] / MiB} MiB, ${imageSizes[STAMPEDE_IMAGE] / MiB} MiB (20 at once) and ${imageSizes[LAYERED_IMAGE].bytes / MiB} MiB (10 layers, skopeo and podman)`;
  process.stderr.write(`bench: ${mode}\n`);
  let world: World | undefined;
  let registries: Registries | undefined;
  // Started by whichever skopeo scenario comes first, so that a failed start fails only those rows.
  const withRegistries = async <T>(use: (registries: Registries) => Promise<T>) =>
    use((registries ??= await startRegistries(imageSizes)));
  const rows: Row[] = [];
  try {
    world = await makeWorld({ counts, blobSize, cpuProfDir: values['cpu-prof'] });
    const w = world;
    rows.push(...(await attempt(['cached blob, 1 client', 'cached blob, 8 clients'], () => cachedBlob(w))));
    rows.push(
      ...(await attempt(['cold blob, 1 client', 'cold blob, 1 client, paced upstream'], () => coldBlob(w))),
    );
    rows.push(...(await attempt(['cold blob, 20 clients at once'], () => stampede(w, stampedeSize))));
    rows.push(
      ...(await attempt(['cold blob, 12 clients over 3 replicas', 'cached blob, 1 vs 3 replicas'], () =>
        cluster(w, clusterSize),
      )),
    );
    rows.push(...(await imageClientRows(withRegistries)));
    rows.push(...(await attempt(['tunnelled blob (not intercepted)'], () => tunnel(w))));
    rows.push(
      ...(await attempt(['cached manifests, as fast as answered', 'cached manifests, at one rate'], () =>
        cachedManifests(w, manifestRequests),
      )),
    );
    rows.push(...(await attempt(['first request to a new host'], () => firstRequestToNewHost(w))));
    rows.push(...(await attempt(['peak RSS'], () => memoryPeak(w, memorySizes, memoryRounds))));
    rows.push(...(await attempt(['start-up with a full cache'], () => startup(w))));
    rows.push(...(await attempt(['cache index and eviction, 100k entries'], () => cacheIndex(w))));
    rows.push(...(await attempt(S3_ROWS, () => s3Hits(w))));
  } finally {
    await registries?.close();
    await world?.close();
  }

  // Other work on the machine shows here first: the figures are only as quiet as the machine was.
  machine.push([
    'load',
    `1-min load average ${loadBefore.toFixed(2)} before, ${(os.loadavg()[0] ?? 0).toFixed(2)} after`,
  ]);
  const width = Math.max(...machine.map(([key]) => key.length));
  const description = machine.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
  process.stdout.write(`\n${description}\n${mode}\n\n${textTable(rows)}\n`);

  const markdown = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (test/bench/run.ts); numbers are medians with min–max. MB = 10⁶ bytes.',
    '',
    ...machine.map(([key, value]) => `- ${key}: ${value}`),
    `- mode: ${mode}`,
    '',
    markdownTable(rows),
    '',
  ].join('\n');
  const previous = await readFile(RESULTS, 'utf8').catch(() => '');
  const kept = previous.includes(KEPT) ? previous.slice(previous.indexOf(KEPT)) : '';
  const options = (await prettier.resolveConfig(RESULTS)) ?? {};
  const text = kept ? `${markdown}\n${kept}` : markdown;
  await writeFile(RESULTS, await prettier.format(text, { ...options, filepath: RESULTS }));
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), RESULTS)}\n`);
  return rows.some((row) => row.error !== undefined) ? 1 : 0;
}

process.exitCode = await main().catch((error: unknown) => {
  process.stderr.write(
    `bench: could not set up: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  return 1;
});
