// Scenario 8: pullthrough's peak memory in the two cases of issue 21, each in a fresh proxy (so
// that VmHWM is the case's own): 20 cold pulls of different blobs at once (20 upstream fills, each
// read by its client), and 20 hits of one cached blob at once, at two blob sizes to show that the
// peak does not grow with the blob. Peak RSS is VmHWM of the child at the end of the round; VmRSS
// is also sampled during the downloads.
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Blob } from '../blob.ts';
import { download, type Target } from '../curl.ts';
import { summarize, type Row, type Summary } from '../harness.ts';
import type { World } from '../world.ts';

export const CLIENTS = 20;
const MiB = 2 ** 20;
const SAMPLE_MS = 50;
/** Larger/smaller peak at most this: "flat in blob size". */
const FLAT = 1.1;
const LIMIT_MIB = 200;

/** `VmHWM` / `VmRSS` of `pid` in bytes, from /proc/<pid>/status. */
function memory(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1];
  if (kib === undefined) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(kib) * 1024;
}

interface Peaks {
  /** VmHWM at the end of each round. */
  readonly hwm: Summary;
  /** Highest VmRSS sampled during the concurrent downloads of each round. */
  readonly sampled: Summary;
  /** VmRSS after start, before any request. */
  readonly idle: Summary;
}

/**
 * `rounds` fresh proxies; in each, `prepare` runs first (a fill that makes the hits hits), then
 * every blob `blobs()` gives is downloaded at once, one curl each.
 */
async function peaks(
  world: World,
  rounds: number,
  blobs: () => Promise<{ prepare: readonly Blob[]; at: readonly Blob[] }>,
): Promise<Peaks> {
  const hwm: number[] = [];
  const sampled: number[] = [];
  const idle: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const { prepare, at } = await blobs();
    const proxy = await world.startProxy('memory');
    try {
      idle.push(memory(proxy.pid, 'VmRSS'));
      const get = (blob: Blob) =>
        download(
          {
            url: world.blobUrl(world.nginx.upstream, blob),
            cacert: proxy.caFile,
            proxy: proxy.url,
          } satisfies Target,
          blob.size,
        );
      for (const blob of prepare) await get(blob);
      let highest = 0;
      const sampler = setInterval(() => (highest = Math.max(highest, memory(proxy.pid, 'VmRSS'))), SAMPLE_MS);
      try {
        await Promise.all(at.map(get));
      } finally {
        clearInterval(sampler);
      }
      hwm.push(memory(proxy.pid, 'VmHWM'));
      sampled.push(highest);
    } finally {
      await proxy.stop();
      // Cold blobs are new each round; the cached one is removed by its caller.
      await Promise.all(
        at.filter((blob) => !prepare.includes(blob)).map((blob) => rm(blob.file, { force: true })),
      );
    }
  }
  return { hwm: summarize(hwm), sampled: summarize(sampled), idle: summarize(idle) };
}

/** 20 different blobs of `size`, new each round, all cold. */
function coldPeaks(world: World, size: number, rounds: number): Promise<Peaks> {
  return peaks(world, rounds, async () => {
    const at: Blob[] = [];
    for (let i = 0; i < CLIENTS; i++) at.push(await world.newBlob(size));
    return { prepare: [], at };
  });
}

/** One blob of `size`, filled once in each fresh proxy, then 20 hits of it at once. */
async function hitPeaks(world: World, size: number, rounds: number): Promise<Peaks> {
  const blob = await world.newBlob(size);
  try {
    return await peaks(world, rounds, () =>
      Promise.resolve({ prepare: [blob], at: Array(CLIENTS).fill(blob) }),
    );
  } finally {
    await rm(blob.file, { force: true });
  }
}

const mib = (summary: Summary) => {
  const f = (value: number) => Math.round(value / MiB).toLocaleString('en-US');
  return `${f(summary.median)} (${f(summary.min)}–${f(summary.max)}) MiB`;
};

const figures = (result: Peaks) =>
  `VmHWM ${mib(result.hwm)}; sampled VmRSS ${mib(result.sampled)}; idle ${mib(result.idle)}`;

/**
 * `coldSize`: the size of each of the 20 cold blobs; `hitSizes`: two sizes of the blob hit 20
 * times at once, smaller first; `rounds` fresh proxies for each case.
 */
export async function memoryPeak(
  world: World,
  sizes: { readonly cold: number; readonly hits: readonly [number, number] },
  rounds: number,
): Promise<Row[]> {
  const cold = await coldPeaks(world, sizes.cold, rounds);
  const small = await hitPeaks(world, sizes.hits[0], rounds);
  const large = await hitPeaks(world, sizes.hits[1], rounds);
  const growth = large.hwm.median / small.hwm.median;
  const under = (result: Peaks) => result.hwm.max < LIMIT_MIB * MiB;
  const hits = (size: number) => `peak RSS, ${CLIENTS} hits of one cached ${size / MiB} MiB blob at once`;
  return [
    {
      scenario: `peak RSS, ${CLIENTS} cold pulls of different ${sizes.cold / MiB} MiB blobs at once`,
      pullthrough: figures(cold),
      reference: '–',
      ratio: '–',
      target: `< ${LIMIT_MIB} MiB`,
      met: under(cold),
    },
    {
      scenario: hits(sizes.hits[0]),
      pullthrough: figures(small),
      reference: '–',
      ratio: '–',
      target: `< ${LIMIT_MIB} MiB`,
      met: under(small),
    },
    {
      scenario: hits(sizes.hits[1]),
      pullthrough: figures(large),
      reference: '–',
      ratio: `${growth.toFixed(2)}× of ${sizes.hits[0] / MiB} MiB`,
      target: `< ${LIMIT_MIB} MiB, ≤ ${FLAT}× of ${sizes.hits[0] / MiB} MiB`,
      met: under(large) && growth <= FLAT,
    },
  ];
}
