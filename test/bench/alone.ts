// One group of scenarios run alone (cold-, hits-, cluster-only.ts, compare-builds.ts): the proxy
// built, a world of the usual size (1 GiB blob and 1 warm-up + 7 runs a side; --quick: 256 MiB
// and 3), the rows printed as a table. Writes no results.md.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ensureDeps } from './deps.ts';
import { textTable, type Row } from './harness.ts';
import { buildProxy } from './proxy.ts';
import { makeWorld, type World } from './world.ts';

const MiB = 2 ** 20;

/** The command line: `quick`, the options `extra` declares, and the arguments after them. */
export interface Flags {
  readonly quick: boolean;
  readonly options: Readonly<Record<string, string | boolean | undefined>>;
  readonly args: readonly string[];
}

/** What a script takes besides --quick: options, and `args` arguments (else `usage` is thrown). */
export interface AloneCommand {
  readonly options?: NonNullable<ParseArgsConfig['options']>;
  readonly args?: number;
  readonly usage?: string;
}

export async function runAlone(
  rows: (world: World, flags: Flags) => Promise<Row[]>,
  command: AloneCommand = {},
): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { ...command.options, quick: { type: 'boolean', default: false } },
    allowPositionals: (command.args ?? 0) > 0,
  });
  if (positionals.length !== (command.args ?? 0)) throw new Error(`usage: ${command.usage ?? '[--quick]'}`);
  const flags: Flags = { quick: values.quick === true, options: values, args: positionals };
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
