// `npx node test/bench/cluster-only.ts [--quick]`: the scenarios of issue 24 alone (replicas on
// S3 + Redis: cluster.ts; hits from the object store: s3.ts), with run.ts's sizes and counts,
// printing their rows; writes no results.md. run.ts runs them among all the others, which takes long.
import { parseArgs } from 'node:util';
import { ensureDeps } from './deps.ts';
import { textTable, type Row } from './harness.ts';
import { buildProxy } from './proxy.ts';
import { cluster } from './scenarios/cluster.ts';
import { s3Hits } from './scenarios/s3.ts';
import { makeWorld } from './world.ts';

const MiB = 2 ** 20;
const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } },
});
const quick = values.quick;
ensureDeps();
buildProxy();
const world = await makeWorld({
  counts: quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 7 },
  blobSize: (quick ? 256 : 1024) * MiB,
});
const rows: Row[] = [];
try {
  // --only cluster | s3: one of the two.
  if (values.only !== 's3') rows.push(...(await cluster(world, (quick ? 32 : 64) * MiB)));
  if (values.only !== 'cluster') rows.push(...(await s3Hits(world)));
} finally {
  await world.close();
}
process.stdout.write(`${textTable(rows)}\n`);
