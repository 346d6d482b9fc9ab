// `npx node test/bench/cluster-only.ts [--quick] [--only cluster|s3]`: the scenarios of issue 24
// alone (replicas on S3 + Redis: cluster.ts; hits from the object store: s3.ts), with run.ts's
// sizes and counts, printing their rows; writes no results.md. run.ts runs them among all the
// others, which takes long.
import { runAlone } from './alone.ts';
import type { Row } from './harness.ts';
import { cluster } from './scenarios/cluster.ts';
import { s3Hits } from './scenarios/s3.ts';

const MiB = 2 ** 20;

await runAlone(
  async (world, flags) => {
    const rows: Row[] = [];
    if (flags.options['only'] !== 's3') rows.push(...(await cluster(world, (flags.quick ? 32 : 64) * MiB)));
    if (flags.options['only'] !== 'cluster') rows.push(...(await s3Hits(world)));
    return rows;
  },
  { options: { only: { type: 'string' } } },
);
