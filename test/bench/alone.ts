// One group of scenarios run alone (cold-, hits-, cluster-only.ts): the proxy built, a world of the
// usual size (1 GiB blob and 1 warm-up + 7 runs a side; --quick: 256 MiB and 3), the rows
// printed as a table. Writes no results.md.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ensureDeps } from './deps.ts';
import { textTable, type Row } from './harness.ts';
import { buildProxy } from './proxy.ts';
import { makeWorld, type World } from './world.ts';

const MiB = 2 ** 20;

/** Flags of the command line: `quick`, and those `extra` declares. */
export type Flags = Readonly<Record<string, string | boolean | undefined>> & { readonly quick: boolean };

export async function runAlone(
  rows: (world: World, flags: Flags) => Promise<Row[]>,
  extra: NonNullable<ParseArgsConfig['options']> = {},
): Promise<void> {
  const { values } = parseArgs({ options: { ...extra, quick: { type: 'boolean', default: false } } });
  const flags = { ...(values as Record<string, string | boolean | undefined>), quick: values.quick === true };
  const quick = flags.quick;
  ensureDeps();
  buildProxy();
  const world = await makeWorld({
    counts: quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 7 },
    blobSize: (quick ? 256 : 1024) * MiB,
  });
  try {
    process.stdout.write(`${textTable(await rows(world, flags))}\n`);
  } finally {
    await world.close();
  }
}
