// Scenario 3: a blob not in the cache, fetched through pullthrough (upstream fetch + sha256 +
// cache file write + TLS to the client) against the same curl straight from the upstream. Each
// run gets a fresh pullthrough with an empty cache; its start is not timed.
//
// The upstream is nginx, not a Node server: it serves TLS at ~2 GB/s on this kind of machine
// (shared/notes/real-clients.md §12), well above what the proxy can pass on.
import { download, type Target } from '../curl.ts';
import { alternate, rate, ratio, type Row } from '../harness.ts';
import type { World } from '../world.ts';

export async function coldBlob(world: World): Promise<Row> {
  const { blob, nginx } = world;
  const direct: Target = { url: world.blobUrl(nginx.upstream, blob), cacert: world.upstreamCaFile };
  const result = await alternate(world.counts, {
    async pullthrough() {
      const proxy = await world.startProxy('cold');
      try {
        return await download({ url: direct.url, cacert: proxy.caFile, proxy: proxy.url }, blob.size);
      } finally {
        await proxy.stop();
      }
    },
    reference: () => download(direct, blob.size),
  });
  return {
    scenario: 'cold blob, 1 client',
    pullthrough: rate(result.pullthrough),
    reference: `upstream ${rate(result.reference)}`,
    ratio: ratio(result.pullthrough, result.reference),
    target: '≥ 0.85×',
    met: result.pullthrough.median / result.reference.median >= 0.85,
  };
}
