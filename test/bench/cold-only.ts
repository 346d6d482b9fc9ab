// `npx node test/bench/cold-only.ts [--quick]`: the cold-blob scenario alone (run.ts runs it among
// all the others), printing its rows: the fill against nginx, the floor, the own blob reader
// against undici, pinned and paced upstreams. Writes no results.md.
import { parseArgs } from 'node:util';
import { ensureDeps } from './deps.ts';
import { textTable } from './harness.ts';
import { buildProxy } from './proxy.ts';
import { coldBlob } from './scenarios/cold.ts';
import { makeWorld } from './world.ts';

const MiB = 2 ** 20;
const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
ensureDeps();
buildProxy();
const world = await makeWorld({
  counts: values.quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 7 },
  blobSize: (values.quick ? 256 : 1024) * MiB,
});
try {
  process.stdout.write(`${textTable(await coldBlob(world))}\n`);
} finally {
  await world.close();
}
