// `npx node test/bench/memory-only.ts [--quick] [--rounds N]`: the memory scenario alone (run.ts
// runs it among all the others, which takes long), printing its rows; writes no results.md.
import { parseArgs } from 'node:util';
import { textTable } from './harness.ts';
import { buildProxy } from './proxy.ts';
import { memoryPeak } from './scenarios/memory.ts';
import { makeWorld } from './world.ts';

const MiB = 2 ** 20;
const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' } },
});
const sizes = values.quick
  ? { cold: 64 * MiB, hits: [256 * MiB, 1024 * MiB] as const }
  : { cold: 256 * MiB, hits: [1024 * MiB, 4096 * MiB] as const };
buildProxy();
const world = await makeWorld({ counts: { warmup: 0, runs: 1 }, blobSize: MiB });
try {
  const rows = await memoryPeak(world, sizes, Number(values.rounds ?? (values.quick ? 1 : 3)));
  process.stdout.write(`${textTable(rows)}\n`);
} finally {
  await world.close();
}
