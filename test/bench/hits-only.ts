// `npx node test/bench/hits-only.ts [--quick]`: the cache-hit scenarios alone (run.ts runs them
// among all the others), printing their rows: a cached blob to 1 and 8 clients against nginx,
// and cached manifests at 64 connections against nginx. Writes no results.md.
import { parseArgs } from 'node:util';
import { ensureDeps } from './deps.ts';
import { textTable } from './harness.ts';
import { buildProxy } from './proxy.ts';
import { cachedBlob } from './scenarios/cached.ts';
import { cachedManifests } from './scenarios/manifests.ts';
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
  const rows = [
    ...(await cachedBlob(world)),
    ...(await cachedManifests(world, values.quick ? 20_000 : 100_000)),
  ];
  process.stdout.write(`${textTable(rows)}\n`);
} finally {
  await world.close();
}
