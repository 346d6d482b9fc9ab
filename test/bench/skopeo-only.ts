// `npx node test/bench/skopeo-only.ts [--quick]`: the skopeo and podman scenarios that compare
// with a direct pull (a 10-layer image, cold and cached) and the 20 concurrent cold copies, alone,
// printing their rows; run.ts runs them among all the others. Writes no results.md.
import { parseArgs } from 'node:util';
import { ensureDeps } from './deps.ts';
import { textTable } from './harness.ts';
import { buildProxy } from './proxy.ts';
import { startRegistries } from './registries.ts';
import { podmanDirect } from './scenarios/podman.ts';
import { skopeoDirect, skopeoStampede } from './scenarios/skopeo.ts';

const MiB = 2 ** 20;
const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick;
ensureDeps();
buildProxy();
const registries = await startRegistries({
  'bench/layered': { bytes: (quick ? 64 : 256) * MiB, layers: 10 },
  'bench/stampede': (quick ? 32 : 64) * MiB,
});
try {
  const counts = quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 7 };
  const rows = [
    ...(await skopeoDirect(registries, registries.image('bench/layered'), counts)),
    ...(await podmanDirect(registries, registries.image('bench/layered'), counts)),
    await skopeoStampede(registries, registries.image('bench/stampede'), counts),
  ];
  process.stdout.write(`${textTable(rows)}\n`);
} finally {
  await registries.close();
}
