// Scenario 5: a large file from a host pullthrough does NOT intercept, tunnelled byte for byte
// (CONNECT, then curl's TLS straight to nginx) against the same through squid and straight from
// nginx. The nginx reference port is allowed as a CONNECT port but is not in the registries
// list; curl trusts only the upstream CA, so an intercepted connection would fail the run.
import { CpuMeter } from '../cpu.ts';
import { download, type Target } from '../curl.ts';
import { alternate, rate, ratio, type Row } from '../harness.ts';
import { startSquid } from '../squid.ts';
import type { World } from '../world.ts';

export async function tunnel(world: World): Promise<Row> {
  const { blob, nginx } = world;
  const port = Number(nginx.reference.split(':').at(-1));
  const direct: Target = { url: world.blobUrl(nginx.reference, blob), cacert: world.upstreamCaFile };
  const proxy = await world.startProxy('tunnel', { connectPorts: [port] });
  try {
    const squid = await startSquid({ dir: world.dir, connectPorts: [port] });
    try {
      const proxyCpu = new CpuMeter(() => [proxy.pid]);
      const squidCpu = new CpuMeter(() => squid.pids());
      const result = await alternate(world.counts, {
        pullthrough: () =>
          proxyCpu.around(blob.size, () => download({ ...direct, proxy: proxy.url }, blob.size)),
        squid: () => squidCpu.around(blob.size, () => download({ ...direct, proxy: squid.url }, blob.size)),
        direct: () => download(direct, blob.size),
      });
      return {
        scenario: 'tunnelled blob (not intercepted), 1 client',
        pullthrough: `${rate(result.pullthrough)}, ${proxyCpu.perGiB()}`,
        reference: `squid ${rate(result.squid)}, ${squidCpu.perGiB()}; direct ${rate(result.direct)}`,
        ratio: ratio(result.pullthrough, result.squid),
        target: '≥ 0.95× squid',
        met: result.pullthrough.median / result.squid.median >= 0.95,
      };
    } finally {
      await squid.stop();
    }
  } finally {
    await proxy.stop();
  }
}
