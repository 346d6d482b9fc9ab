// Scenario 9: start-up of a pullthrough whose cache already holds 100k blobs: from spawning the
// child to its `listening` log line, against the same on an empty cache. The cache is made once
// in pullthrough's layout (src/cache/layout.ts: blobs/sha256/<2 hex>/<hex>) from small contents
// with their real sha256 digests, and reused by every start; nothing is served.
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { alternate, ratio, type Row, type Summary } from '../harness.ts';
import type { World } from '../world.ts';

export const CACHED_FILES = 100_000;
const PARALLEL_WRITES = 64;

/** A cache directory holding `count` blobs, each the bytes of `blob <i>\n` under its digest. */
async function filledCache(dir: string, count: number): Promise<void> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  await Promise.all(
    Array.from({ length: 256 }, (_, i) =>
      mkdir(path.join(blobs, i.toString(16).padStart(2, '0')), { recursive: true }),
    ),
  );
  let next = 0;
  const writer = async () => {
    while (next < count) {
      const content = `blob ${next++}\n`;
      const hex = createHash('sha256').update(content).digest('hex');
      await writeFile(path.join(blobs, hex.slice(0, 2), hex), content);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_WRITES }, writer));
}

const ms = (summary: Summary) => {
  const f = (value: number) => Math.round(value).toLocaleString('en-US');
  return `${f(summary.median)} (${f(summary.min)}–${f(summary.max)}) ms`;
};

export async function startup(world: World): Promise<Row> {
  const full = path.join(world.dir, 'startup-full');
  const empty = path.join(world.dir, 'startup-empty');
  try {
    await filledCache(full, CACHED_FILES);
    await mkdir(empty);
    const start = async (cacheDir: string) => {
      const proxy = await world.startProxy('startup', { cacheDir });
      await proxy.stop();
      return proxy.startupMs;
    };
    const result = await alternate(world.counts, {
      pullthrough: () => start(full),
      reference: () => start(empty),
    });
    return {
      scenario: `start-up to listening, ${CACHED_FILES.toLocaleString('en-US')} cached blobs`,
      pullthrough: ms(result.pullthrough),
      reference: `empty cache ${ms(result.reference)}`,
      ratio: ratio(result.pullthrough, result.reference),
      target: '< 1 s',
      met: result.pullthrough.median < 1000,
    };
  } finally {
    await rm(full, { recursive: true, force: true });
    await rm(empty, { recursive: true, force: true });
  }
}
