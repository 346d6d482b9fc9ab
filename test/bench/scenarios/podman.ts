// Issue 21, the podman half of "a cold pull of an image with 10 layers": `podman pull` straight
// from the upstream registry (its own certificate) against the same pull through pullthrough, cold
// (a new pullthrough with an empty cache each time) and cached (the proxy's cache warm). podman's
// storage is emptied (`rmi`, untimed) before every pull, so every pull fetches every blob.
//
// Throughput is the image's blob bytes over podman's wall time (process start to exit). podman
// decompresses and unpacks each layer into its storage and checks its diff ID, so that work is in
// both sides' time and shrinks the proxy's share of it: a ratio here is closer to 1 than skopeo's.
// The layers are real tar+gzip (image.ts: one file of random bytes in a tar, gzip level 0), the
// same image as skopeo's 10-layer rows.
import path from 'node:path';
import { alternate, rate, ratio, type Counts, type Row, type Summary } from '../harness.ts';
import { makePodman, type Podman } from '../podman.ts';
import type { PushedImage, Registries } from '../registries.ts';

interface Side {
  readonly certDir: string;
  readonly proxy?: string;
  /** The image's blob bytes the upstream must send for one pull: 1 (every blob) or 0 (all hits). */
  readonly upstreamShare: 0 | 1;
}

/**
 * One pull of `image` into an empty storage, emptied again after; resolves to bytes/s. The
 * upstream's own log must show the blob bytes `side` expects: proof that the storage really was
 * empty, and that a cached pull went through the proxy and was served from its cache.
 */
async function pull(podman: Podman, registries: Registries, image: PushedImage, side: Side) {
  try {
    const from = await registries.upstream.mark();
    const seconds = await podman.pull({
      reference: `${registries.upstream.authority}/${image.repository}:${image.tag}`,
      certDir: side.certDir,
      ...(side.proxy === undefined ? {} : { proxy: side.proxy }),
    });
    const sent = await registries.upstream.blobBytes(
      image.repository,
      from,
      await registries.upstream.mark(),
    );
    if (sent !== side.upstreamShare * image.blobBytes)
      throw new Error(
        `podman pull${side.proxy === undefined ? '' : ' through pullthrough'}: upstream sent ${sent} blob bytes, expected ${side.upstreamShare * image.blobBytes}`,
      );
    return image.blobBytes / seconds;
  } finally {
    await podman.clear();
  }
}

function row(image: PushedImage, temperature: string, result: Record<'pullthrough' | 'reference', Summary>) {
  const target = temperature === 'cold' ? 0.8 : 1;
  const layers = image.blobs.length - 1;
  return {
    scenario: `podman pull, ${layers} layers, ${temperature} (${Math.round(image.blobBytes / 2 ** 20)} MiB; unpack timed on both sides)`,
    pullthrough: rate(result.pullthrough),
    reference: `direct from upstream ${rate(result.reference)}`,
    ratio: ratio(result.pullthrough, result.reference),
    target: `≥ ${target.toFixed(2)}× direct${temperature === 'cold' ? ' (information)' : ''}`,
    met: result.pullthrough.median / result.reference.median >= target,
  } satisfies Row;
}

export async function podmanDirect(
  registries: Registries,
  image: PushedImage,
  counts: Counts,
): Promise<Row[]> {
  const podman = await makePodman(path.join(registries.dir, 'pm')); // short: podman's runroot goes inside;
  try {
    const once = (side: Side) => pull(podman, registries, image, side);
    const direct: Side = { certDir: registries.upstreamTrustDir, upstreamShare: 1 };
    // Through `proxy`: every blob fetched upstream once (a fill), or none (hits).
    const via = (proxy: { url: string }, upstreamShare: 0 | 1): Side => ({
      certDir: registries.proxyTrustDir,
      proxy: proxy.url,
      upstreamShare,
    });
    const cold = await alternate(counts, {
      pullthrough: () => registries.withProxy('podman-cold', (proxy) => once(via(proxy, 1))),
      reference: () => once(direct),
    });
    const cached = await registries.withProxy('podman-cached', async (proxy) => {
      await once(via(proxy, 1)); // the fills
      return alternate(counts, {
        pullthrough: () => once(via(proxy, 0)),
        reference: () => once(direct),
      });
    });
    return [row(image, 'cold', cold), row(image, 'cached', cached)];
  } finally {
    await podman.close();
  }
}
