// Scenario 3: a blob not in the cache, fetched through pullthrough (upstream fetch + sha256 +
// cache file write + TLS to the client) against the same curl straight from the upstream, once
// from an upstream faster than the proxy and once from one paced like a remote registry. Each
// run gets a fresh pullthrough with an empty cache; its start is not timed.
//
// The upstream is nginx, not a Node server: it serves TLS at ~2 GB/s on this kind of machine
// (shared/notes/real-clients.md §12), well above what the proxy can pass on.
import { CpuMeter } from '../cpu.ts';
import { download, type Target } from '../curl.ts';
import { alternate, rate, ratio, type Row } from '../harness.ts';
import { PACED_RATE } from '../nginx.ts';
import type { World } from '../world.ts';

export async function coldBlob(world: World): Promise<Row[]> {
  return [await cold(world, 'fast'), await cold(world, 'paced')];
}

/**
 * `fast`: nginx on loopback, far faster than the proxy can pass on, so the proxy's own cost shows.
 * `paced`: nginx at PACED_RATE, the usual case of an upstream slower than the proxy.
 */
async function cold(world: World, upstream: 'fast' | 'paced'): Promise<Row> {
  const { nginx } = world;
  const authority = upstream === 'fast' ? nginx.upstream : nginx.paced;
  // At 100 MiB/s a 1 GiB blob takes 10 s a run: a quarter of it says as much.
  const blob =
    upstream === 'fast' ? world.blob : await world.newBlob(Math.min(world.blob.size, 256 * 2 ** 20));
  const direct: Target = { url: world.blobUrl(authority, blob), cacert: world.upstreamCaFile };
  let pid = 0;
  const proxyCpu = new CpuMeter(() => [pid]);
  const nginxCpu = new CpuMeter(() => nginx.pids());
  const result = await alternate(world.counts, {
    async pullthrough() {
      const proxy = await world.startProxy('cold', { registries: [authority] });
      pid = proxy.pid;
      const via = { url: direct.url, cacert: proxy.caFile, proxy: proxy.url };
      try {
        return await proxyCpu.around(blob.size, () => download(via, blob.size));
      } finally {
        await proxy.stop();
      }
    },
    reference: () => nginxCpu.around(blob.size, () => download(direct, blob.size)),
  });
  const paced = upstream === 'paced';
  return {
    scenario: paced
      ? `cold blob, 1 client, upstream paced at ${PACED_RATE / 2 ** 20} MiB/s (${blob.size / 2 ** 20} MiB)`
      : 'cold blob, 1 client',
    pullthrough: `${rate(result.pullthrough)}, ${proxyCpu.perGiB()}`,
    reference: `${paced ? 'paced ' : ''}upstream nginx ${rate(result.reference)}${paced ? '' : `, ${nginxCpu.perGiB()}`}`,
    ratio: ratio(result.pullthrough, result.reference),
    target: '≥ 0.85×',
    met: result.pullthrough.median / result.reference.median >= 0.85,
  };
}
