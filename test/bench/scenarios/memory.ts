// Scenario 8: pullthrough's memory while it serves 10 blobs cold (10 upstream fills at once) and
// 10 clients of a cached blob, all at once: peak RSS (VmHWM of the child, read at the end of
// each round; VmRSS sampled during), for two blob sizes to show it does not grow with the blob.
// Each round is a fresh proxy (so the 10 blobs are cold again and VmHWM is its own).
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Blob } from '../blob.ts';
import { download, type Target } from '../curl.ts';
import { summarize, type Row, type Summary } from '../harness.ts';
import type { World } from '../world.ts';

export const CLIENTS = 10;
const MiB = 2 ** 20;
const SAMPLE_MS = 50;
/** Larger/smaller peak at most this: "flat in blob size". */
const FLAT = 1.25;
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
  /** Highest VmRSS sampled during each round. */
  readonly sampled: Summary;
  /** VmRSS after start, before any request. */
  readonly idle: Summary;
}

async function peaks(world: World, size: number, rounds: number): Promise<Peaks> {
  const cold: Blob[] = [];
  for (let i = 0; i < CLIENTS; i++) cold.push(await world.newBlob(size));
  const cached = await world.newBlob(size);
  const hwm: number[] = [];
  const sampled: number[] = [];
  const idle: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const proxy = await world.startProxy('memory');
      try {
        idle.push(memory(proxy.pid, 'VmRSS'));
        const target = (blob: Blob): Target => ({
          url: world.blobUrl(world.nginx.upstream, blob),
          cacert: proxy.caFile,
          proxy: proxy.url,
        });
        await download(target(cached), size); // the fill: from here on it is a hit
        let highest = 0;
        const sampler = setInterval(
          () => (highest = Math.max(highest, memory(proxy.pid, 'VmRSS'))),
          SAMPLE_MS,
        );
        try {
          await Promise.all([
            ...cold.map((blob) => download(target(blob), size)),
            ...Array.from({ length: CLIENTS }, () => download(target(cached), size)),
          ]);
        } finally {
          clearInterval(sampler);
        }
        hwm.push(memory(proxy.pid, 'VmHWM'));
        sampled.push(highest);
      } finally {
        await proxy.stop();
      }
    }
  } finally {
    await Promise.all([...cold, cached].map((blob) => rm(blob.file, { force: true })));
  }
  return { hwm: summarize(hwm), sampled: summarize(sampled), idle: summarize(idle) };
}

const mib = (summary: Summary) => {
  const f = (value: number) => Math.round(value / MiB).toLocaleString('en-US');
  return `${f(summary.median)} (${f(summary.min)}–${f(summary.max)}) MiB`;
};

/** `sizes`: two blob sizes in bytes, smaller first; `rounds` fresh proxies for each. */
export async function memoryPeak(
  world: World,
  sizes: readonly [number, number],
  rounds: number,
): Promise<Row[]> {
  const small = await peaks(world, sizes[0], rounds);
  const large = await peaks(world, sizes[1], rounds);
  const growth = large.hwm.median / small.hwm.median;
  return [small, large].map((result, i) => {
    const under = result.hwm.max < LIMIT_MIB * MiB;
    return {
      scenario: `peak RSS, ${CLIENTS} cold + ${CLIENTS} cached blobs at once, ${sizes[i]! / MiB} MiB each`,
      pullthrough: `VmHWM ${mib(result.hwm)}; sampled VmRSS ${mib(result.sampled)}; idle ${mib(result.idle)}`,
      reference: '–',
      ratio: i === 0 ? '–' : `${growth.toFixed(2)}× of ${sizes[0] / MiB} MiB`,
      target: i === 0 ? `< ${LIMIT_MIB} MiB` : `< ${LIMIT_MIB} MiB, ≤ ${FLAT}× of ${sizes[0] / MiB} MiB`,
      met: i === 0 ? under : under && growth <= FLAT,
    };
  });
}
