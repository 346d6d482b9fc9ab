// `npx node test/bench/compare-builds.ts OTHER_CHECKOUT [--quick]`: the CPU per GiB of a cold fill
// (the fast loopback nginx, 1 client) and of a cached hit, this checkout's build against another
// checkout's (a git worktree of the commit before a change, say), alternated run by run in fresh
// proxies so that both see the same machine. For changes too small to show between two runs of
// cold-only.ts. Builds both; writes no results.md.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CpuMeter } from './cpu.ts';
import { download } from './curl.ts';
import { ensureDeps } from './deps.ts';
import { alternate, rate, textTable, type Row } from './harness.ts';
import { buildProxy } from './proxy.ts';
import { makeWorld, type World } from './world.ts';

const MiB = 2 ** 20;
const { values, positionals } = parseArgs({
  options: { quick: { type: 'boolean', default: false } },
  allowPositionals: true,
});
const other = positionals[0];
if (!other) throw new Error('usage: compare-builds.ts OTHER_CHECKOUT [--quick]');
ensureDeps();
buildProxy();
const built = spawnSync('npm', ['run', '--silent', 'build'], { cwd: other, encoding: 'utf8' });
if (built.status !== 0) throw new Error(`npm run build in ${other} failed: ${built.stdout}${built.stderr}`);
const otherMain = path.resolve(other, 'dist', 'main.js');

/** One fetch of the world's blob through a fresh proxy of `main` (cold), or a second one (hit). */
async function compare(world: World, hit: boolean): Promise<Row> {
  const { nginx, blob } = world;
  let pid = 0;
  const meters = { here: new CpuMeter(() => [pid]), other: new CpuMeter(() => [pid]) };
  const fetch = (which: 'here' | 'other') => async () => {
    const proxy = await world.startProxy(`build-${which}`, which === 'other' ? { main: otherMain } : {});
    const target = { url: world.blobUrl(nginx.upstream, blob), cacert: proxy.caFile, proxy: proxy.url };
    try {
      if (hit) await download(target, blob.size);
      pid = proxy.pid;
      return await meters[which].around(blob.size, () => download(target, blob.size));
    } finally {
      await proxy.stop();
    }
  };
  const result = await alternate(world.counts, { pullthrough: fetch('here'), reference: fetch('other') });
  const saved = meters.other.secondsPerGiB() - meters.here.secondsPerGiB();
  return {
    scenario: `${hit ? 'cached' : 'cold'} blob, 1 client, this build against ${other}`,
    pullthrough: `${rate(result.pullthrough)}, ${meters.here.perGiB()}`,
    reference: `${rate(result.reference)}, ${meters.other.perGiB()}`,
    ratio: `saves ${saved.toFixed(3)} CPU-s/GiB`,
    target: '–',
    met: true,
  };
}

const world = await makeWorld({
  counts: values.quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 7 },
  blobSize: (values.quick ? 256 : 1024) * MiB,
});
try {
  process.stdout.write(`${textTable([await compare(world, false), await compare(world, true)])}\n`);
} finally {
  await world.close();
}
