// Scenarios 1 and 2: a blob already in pullthrough's cache, fetched through it (CONNECT + TLS
// from the cache file) by one client and by 8 at once, against nginx serving the same file over
// TLS to the same curl.
import { download, downloadConcurrently, type Target } from '../curl.ts';
import { alternate, rate, ratio, type Row } from '../harness.ts';
import type { World } from '../world.ts';

export const CONCURRENT_CLIENTS = 8;

export async function cachedBlob(world: World): Promise<Row[]> {
  const { blob, nginx } = world;
  const proxy = await world.startProxy('cached');
  try {
    const viaProxy: Target = {
      url: world.blobUrl(nginx.upstream, blob),
      cacert: proxy.caFile,
      proxy: proxy.url,
    };
    const direct: Target = { url: world.blobUrl(nginx.reference, blob), cacert: world.upstreamCaFile };
    await download(viaProxy, blob.size); // the fill: from here on every GET is a hit

    const one = await alternate(world.counts, {
      pullthrough: () => download(viaProxy, blob.size),
      reference: () => download(direct, blob.size),
    });
    const many = await alternate(world.counts, {
      pullthrough: () => downloadConcurrently(viaProxy, blob.size, CONCURRENT_CLIENTS),
      reference: () => downloadConcurrently(direct, blob.size, CONCURRENT_CLIENTS),
    });
    return [
      {
        scenario: 'cached blob, 1 client',
        pullthrough: rate(one.pullthrough),
        reference: `nginx ${rate(one.reference)}`,
        ratio: ratio(one.pullthrough, one.reference),
        target: '≥ 0.90×',
        met: one.pullthrough.median / one.reference.median >= 0.9,
      },
      {
        scenario: `cached blob, ${CONCURRENT_CLIENTS} clients (aggregate)`,
        pullthrough: rate(many.pullthrough),
        reference: `nginx ${rate(many.reference)}`,
        ratio: ratio(many.pullthrough, many.reference),
        target: '≥ 0.90×',
        met: many.pullthrough.median / many.reference.median >= 0.9,
      },
    ];
  } finally {
    await proxy.stop();
  }
}
