// Scenarios 1 and 2: a blob already in pullthrough's cache, fetched through it (CONNECT + TLS
// from the cache file) by one client and by 8 at once, against nginx serving the same file over
// TLS to the same curl.
import { CpuMeter } from '../cpu.ts';
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

    const cpu = () => ({ proxy: new CpuMeter(() => [proxy.pid]), nginx: new CpuMeter(() => nginx.pids()) });
    const oneCpu = cpu();
    const one = await alternate(world.counts, {
      pullthrough: () => oneCpu.proxy.around(blob.size, () => download(viaProxy, blob.size)),
      reference: () => oneCpu.nginx.around(blob.size, () => download(direct, blob.size)),
    });
    const manyCpu = cpu();
    const manyBytes = blob.size * CONCURRENT_CLIENTS;
    const many = await alternate(world.counts, {
      pullthrough: () =>
        manyCpu.proxy.around(manyBytes, () => downloadConcurrently(viaProxy, blob.size, CONCURRENT_CLIENTS)),
      reference: () =>
        manyCpu.nginx.around(manyBytes, () => downloadConcurrently(direct, blob.size, CONCURRENT_CLIENTS)),
    });
    return [
      {
        scenario: 'cached blob, 1 client',
        pullthrough: `${rate(one.pullthrough)}, ${oneCpu.proxy.perGiB()}`,
        reference: `nginx ${rate(one.reference)}, ${oneCpu.nginx.perGiB()}`,
        ratio: ratio(one.pullthrough, one.reference),
        target: '≥ 0.90×',
        met: one.pullthrough.median / one.reference.median >= 0.9,
      },
      {
        scenario: `cached blob, ${CONCURRENT_CLIENTS} clients (aggregate)`,
        pullthrough: `${rate(many.pullthrough)}, ${manyCpu.proxy.perGiB()}`,
        reference: `nginx ${rate(many.reference)}, ${manyCpu.nginx.perGiB()}`,
        ratio: ratio(many.pullthrough, many.reference),
        target: '≥ 0.90×',
        met: many.pullthrough.median / many.reference.median >= 0.9,
      },
    ];
  } finally {
    await proxy.stop();
  }
}
