// Scenario 3: a blob not in the cache, fetched through pullthrough (upstream fetch + sha256 +
// cache file write + TLS to the client) against the same curl straight from the upstream. Each
// run gets a fresh pullthrough with an empty cache; its start is not timed.
//
// The upstream is nginx, not a Node server: it serves TLS at ~2 GB/s on this kind of machine
// (shared/notes/real-clients.md §12), well above what the proxy can pass on.
import { CpuMeter } from '../cpu.ts';
import { download, type Target } from '../curl.ts';
import { alternate, rate, ratio, type Row } from '../harness.ts';
import type { World } from '../world.ts';

export async function coldBlob(world: World): Promise<Row> {
  const { blob, nginx } = world;
  const direct: Target = { url: world.blobUrl(nginx.upstream, blob), cacert: world.upstreamCaFile };
  let pid = 0;
  const proxyCpu = new CpuMeter(() => [pid]);
  const nginxCpu = new CpuMeter(() => nginx.pids());
  const result = await alternate(world.counts, {
    async pullthrough() {
      const proxy = await world.startProxy('cold');
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
  return {
    scenario: 'cold blob, 1 client',
    pullthrough: `${rate(result.pullthrough)}, ${proxyCpu.perGiB()}`,
    reference: `upstream nginx ${rate(result.reference)}, ${nginxCpu.perGiB()}`,
    ratio: ratio(result.pullthrough, result.reference),
    target: '≥ 0.85×',
    met: result.pullthrough.median / result.reference.median >= 0.85,
  };
}
