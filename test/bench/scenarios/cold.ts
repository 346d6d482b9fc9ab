// Scenario 3: a blob not in the cache, fetched through pullthrough (upstream fetch + sha256 +
// cache file write + TLS to the client) against the same curl straight from the upstream: from
// an upstream faster than the proxy, again with upstream and client pinned to a core each, and
// from one paced like a remote registry. Each run gets a fresh pullthrough with an empty cache;
// its start is not timed. The proxy's CPU per GiB is compared with the hardware floor of the same
// work (floor.ts), measured in the same run.
//
// The upstream is nginx, not a Node server: it serves TLS at ~2 GB/s on this kind of machine
// (shared/notes/real-clients.md §12), well above what the proxy can pass on.
import { spawnSync } from 'node:child_process';
import { CpuMeter } from '../cpu.ts';
import { download, type Target } from '../curl.ts';
import { curlSuite, describeFloor, measureFloor, nodeClientSuite } from '../floor.ts';
import { alternate, rate, ratio, type Row, type Summary } from '../harness.ts';
import { PACED_RATE } from '../nginx.ts';
import type { ProxyExtras, World } from '../world.ts';

type Upstream = 'fast' | 'pinned' | 'paced';

/** CPU-s/GiB of a cold fill at most this many times the floor. */
const FLOOR_TARGET = 1.4;

/** Issue 21: the own blob reader is kept only if it saves at least this much CPU per GiB. */
const READER_SAVING = 0.5;

export async function coldBlob(world: World): Promise<Row[]> {
  const fast = await cold(world, 'fast');
  return [
    fast.row,
    await floorRow(world, fast.proxyCpu),
    await readerRow(world),
    (await cold(world, 'pinned')).row,
    (await cold(world, 'paced')).row,
  ];
}

/**
 * What the own blob reader (src/upstream/h1/) buys: the same cold fill with
 * `upstream.blobReader: undici`, alternated with the default, in fresh proxies.
 */
async function readerRow(world: World): Promise<Row> {
  const reader = (blobReader: 'own' | 'undici') => ({
    name: `cold-${blobReader}`,
    extras: { config: { upstream: { blobReader } } },
  });
  const { result, cpu } = await alternateProxies(world, {
    pullthrough: reader('own'),
    reference: reader('undici'),
  });
  const saved = cpu.reference.secondsPerGiB() - cpu.pullthrough.secondsPerGiB();
  return {
    scenario: 'cold blob, own blob reader against undici reading it',
    pullthrough: `${rate(result.pullthrough)}, ${cpu.pullthrough.perGiB()}`,
    reference: `blobReader: undici ${rate(result.reference)}, ${cpu.reference.perGiB()}`,
    ratio: `saves ${saved.toFixed(2)} CPU-s/GiB`,
    target: `saves ≥ ${READER_SAVING} CPU-s/GiB`,
    met: saved >= READER_SAVING,
  };
}

type Which = 'pullthrough' | 'reference';

/**
 * The world's blob through a fresh proxy per run, two kinds of proxy (`extras`: another config,
 * another build) alternated run by run, so that both see the same machine; cold, or with `hit`
 * fetched once before the fetch that is measured. Each side's rates and the CPU of its proxies.
 */
export async function alternateProxies(
  world: World,
  sides: Record<Which, { readonly name: string; readonly extras?: ProxyExtras }>,
  hit = false,
): Promise<{ result: Record<Which, Summary>; cpu: Record<Which, CpuMeter> }> {
  const { nginx, blob } = world;
  let pid = 0;
  const cpu = { pullthrough: new CpuMeter(() => [pid]), reference: new CpuMeter(() => [pid]) };
  const fetch = (which: Which) => async () => {
    const proxy = await world.startProxy(sides[which].name, sides[which].extras);
    const target = { url: world.blobUrl(nginx.upstream, blob), cacert: proxy.caFile, proxy: proxy.url };
    try {
      if (hit) await download(target, blob.size);
      pid = proxy.pid;
      return await cpu[which].around(blob.size, () => download(target, blob.size));
    } finally {
      await proxy.stop();
    }
  };
  const result = await alternate(world.counts, {
    pullthrough: fetch('pullthrough'),
    reference: fetch('reference'),
  });
  return { result, cpu };
}

/** `taskset` on every thread of `pids`; returns a function that gives them all cores back. */
function pin(pids: readonly number[], cpu: number): () => void {
  const all = spawnSync('nproc', ['--all'], { encoding: 'utf8' }).stdout.trim();
  const set = (cpus: string) => {
    for (const pid of pids) spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
  };
  set(String(cpu));
  return () => set(`0-${Number(all) - 1}`);
}

/**
 * `fast`: nginx on loopback, far faster than the proxy can pass on, so the proxy's own cost shows.
 * `pinned`: the same with nginx on CPU 0 and curl on CPU 1 (the proxy free to use either), so
 * that the figure is less a measure of three processes sharing two cores.
 * `paced`: nginx at PACED_RATE, the usual case of an upstream slower than the proxy.
 */
async function cold(world: World, upstream: Upstream): Promise<{ row: Row; proxyCpu: CpuMeter }> {
  const { nginx } = world;
  const authority = upstream === 'paced' ? nginx.paced : nginx.upstream;
  // At 100 MiB/s a 1 GiB blob takes 10 s a run: a quarter of it says as much.
  const blob =
    upstream === 'paced' ? await world.newBlob(Math.min(world.blob.size, 256 * 2 ** 20)) : world.blob;
  const direct: Target = {
    url: world.blobUrl(authority, blob),
    cacert: world.upstreamCaFile,
    ...(upstream === 'pinned' ? { cpu: 1 } : {}),
  };
  let pid = 0;
  const proxyCpu = new CpuMeter(() => [pid]);
  const nginxCpu = new CpuMeter(() => nginx.pids());
  const unpin = upstream === 'pinned' ? pin(nginx.pids(), 0) : () => {};
  try {
    const result = await alternate(world.counts, {
      async pullthrough() {
        const proxy = await world.startProxy('cold', { registries: [authority] });
        pid = proxy.pid;
        const via = { ...direct, cacert: proxy.caFile, proxy: proxy.url };
        try {
          return await proxyCpu.around(blob.size, () => download(via, blob.size));
        } finally {
          await proxy.stop();
        }
      },
      reference: () => nginxCpu.around(blob.size, () => download(direct, blob.size)),
    });
    const title = {
      fast: 'cold blob, 1 client',
      pinned: 'cold blob, 1 client, upstream on CPU 0, client on CPU 1',
      paced: `cold blob, 1 client, upstream paced at ${PACED_RATE / 2 ** 20} MiB/s (${blob.size / 2 ** 20} MiB)`,
    }[upstream];
    const paced = upstream === 'paced';
    const row: Row = {
      scenario: title,
      pullthrough: `${rate(result.pullthrough)}, ${proxyCpu.perGiB()}`,
      reference: `${paced ? 'paced ' : ''}upstream nginx ${rate(result.reference)}${paced ? '' : `, ${nginxCpu.perGiB()}`}`,
      ratio: ratio(result.pullthrough, result.reference),
      target: '≥ 0.85×',
      met: result.pullthrough.median / result.reference.median >= 0.85,
    };
    return { row, proxyCpu };
  } finally {
    unpin();
  }
}

/** The fast cold fill's CPU per GiB against the floor of the same work on this machine. */
async function floorRow(world: World, proxyCpu: CpuMeter): Promise<Row> {
  const [host, port] = world.nginx.upstream.split(':');
  const url = world.blobUrl(world.nginx.upstream, world.blob);
  const floor = await measureFloor({
    upstreamSuite: await nodeClientSuite(host!, Number(port), world.upstreamCaFile),
    clientSuite: curlSuite(url, world.upstreamCaFile),
    dir: world.dir,
    bytes: Math.min(world.blob.size, 2 ** 30),
    runs: 3,
  });
  const times = proxyCpu.secondsPerGiB() / floor.total;
  return {
    scenario: 'cold blob, CPU per GiB against the floor of the same work',
    pullthrough: proxyCpu.perGiB(),
    reference: describeFloor(floor),
    ratio: `${times.toFixed(2)}× floor`,
    target: `≤ ${FLOOR_TARGET}× floor`,
    met: times <= FLOOR_TARGET,
  };
}
