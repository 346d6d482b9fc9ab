// `npx node test/bench/compare-builds.ts OTHER_CHECKOUT [--quick]`: the CPU per GiB of a cold fill
// (the fast loopback nginx, 1 client) and of a cached hit, this checkout's build against another
// checkout's (a git worktree of the commit before a change, say), alternated run by run in fresh
// proxies so that both see the same machine. For changes too small to show between two runs of
// cold-only.ts. Builds both; writes no results.md.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { runAlone } from './alone.ts';
import { rate, type Row } from './harness.ts';
import { alternateProxies } from './scenarios/cold.ts';
import type { World } from './world.ts';

/** This build against `other`'s (its dist/main.js): cold, or a second fetch (a hit). */
async function compare(world: World, other: string, otherMain: string, hit: boolean): Promise<Row> {
  const { result, cpu } = await alternateProxies(
    world,
    { pullthrough: { name: 'build-here' }, reference: { name: 'build-other', extras: { main: otherMain } } },
    hit,
  );
  const saved = cpu.reference.secondsPerGiB() - cpu.pullthrough.secondsPerGiB();
  return {
    scenario: `${hit ? 'cached' : 'cold'} blob, 1 client, this build against ${other}`,
    pullthrough: `${rate(result.pullthrough)}, ${cpu.pullthrough.perGiB()}`,
    reference: `${rate(result.reference)}, ${cpu.reference.perGiB()}`,
    ratio: `saves ${saved.toFixed(3)} CPU-s/GiB`,
    target: '–',
    met: true,
  };
}

await runAlone(
  async (world, { args }) => {
    const other = args[0]!;
    const built = spawnSync('npm', ['run', '--silent', 'build'], { cwd: other, encoding: 'utf8' });
    if (built.status !== 0)
      throw new Error(`npm run build in ${other} failed: ${built.stdout}${built.stderr}`);
    const otherMain = path.resolve(other, 'dist', 'main.js');
    return [await compare(world, other, otherMain, false), await compare(world, other, otherMain, true)];
  },
  { args: 1, usage: 'compare-builds.ts OTHER_CHECKOUT [--quick]' },
);
