// Scenarios 5–7: an image pulled by skopeo (`copy docker://… dir:…`), through pullthrough against
// the distribution registry as a pull-through cache (`proxy.remoteurl`), both in front of the same
// upstream distribution registry. Throughput is the image's blob bytes over skopeo's wall time
// (process start to exit, so TLS set-ups and the ping and manifest round trips count as they do
// for a user; into `dir:` skopeo fetches the blobs one after another, a new connection each). Cold: a new pullthrough child with an empty cache / the mirror restarted on an empty
// storage directory, neither start timed; cached: the same image again after one fill.
//
// Then 20 skopeo copies of one image at once, cold: how many times the image's blobs left the
// upstream (its own log, `http.response.written` of blob GETs), and whether every copy succeeded
// (skopeo checks each blob's digest, so exit 0 is a correct copy). A failed copy fails the run;
// fetching upstream more than once is a missed target, reported like a slow figure.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { alternate, rate, ratio, summarize, type Counts, type Row } from '../harness.ts';
import type { PushedImage, Registries } from '../registries.ts';

export const SKOPEO_STAMPEDE_CLIENTS = 20;

interface Side {
  readonly authority: string;
  readonly certDir: string;
  readonly proxy?: string;
}

let copies = 0;

/** One `skopeo copy` of `image` from `side` into a new directory, removed after; resolves to bytes/s. */
async function pull(registries: Registries, image: PushedImage, side: Side): Promise<number> {
  const dest = path.join(registries.dir, `pull-${++copies}`);
  try {
    const seconds = await registries.skopeo.copy({
      source: registries.reference(side.authority, image),
      dest,
      certDir: side.certDir,
      ...(side.proxy === undefined ? {} : { proxy: side.proxy }),
    });
    return image.blobBytes / seconds;
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}

function viaProxy(registries: Registries, proxyUrl: string): Side {
  return { authority: registries.upstream.authority, certDir: registries.proxyTrustDir, proxy: proxyUrl };
}

function viaMirror(registries: Registries): Side {
  return { authority: registries.mirror.authority, certDir: registries.upstreamTrustDir };
}

/** One pull through a pullthrough of its own, started empty for it. */
function coldPull(registries: Registries, image: PushedImage, name: string): Promise<number> {
  return registries.withProxy(name, (proxy) => pull(registries, image, viaProxy(registries, proxy.url)));
}

const mib = (image: PushedImage) => `${Math.round(image.blobBytes / 2 ** 20)} MiB`;

export async function skopeoPull(registries: Registries, image: PushedImage, counts: Counts): Promise<Row[]> {
  const cold = await alternate(counts, {
    pullthrough: () => coldPull(registries, image, 'skopeo-cold'),
    async reference() {
      await registries.mirror.restartEmpty();
      return pull(registries, image, viaMirror(registries));
    },
  });

  const cached = await registries.withProxy('skopeo-cached', async (proxy) => {
    const ours = viaProxy(registries, proxy.url);
    const theirs = viaMirror(registries);
    await registries.mirror.restartEmpty();
    await pull(registries, image, ours); // the fills: every later pull is a hit
    await pull(registries, image, theirs);
    return alternate(counts, {
      pullthrough: () => pull(registries, image, ours),
      reference: () => pull(registries, image, theirs),
    });
  });
  const row = (temperature: string, result: typeof cold): Row => ({
    scenario: `skopeo pull, ${temperature} (${mib(image)}, 4 layers)`,
    pullthrough: rate(result.pullthrough),
    reference: `distribution mirror ${rate(result.reference)}`,
    ratio: ratio(result.pullthrough, result.reference),
    target: '≥ 1.00×',
    met: result.pullthrough.median / result.reference.median >= 1,
  });
  return [row('cold', cold), row('cached', cached)];
}

/**
 * Issue 21: an image of many layers pulled by skopeo straight from the upstream registry (no
 * proxy, the upstream's own certificate) against the same pull through pullthrough, cold (a new
 * pullthrough each time) and cached. The cold ratio is what the proxy's work (TLS twice, sha256,
 * the cache file) costs a user on this machine; the cached one what a hit costs over a direct pull.
 */
export async function skopeoDirect(
  registries: Registries,
  image: PushedImage,
  counts: Counts,
): Promise<Row[]> {
  const direct: Side = { authority: registries.upstream.authority, certDir: registries.upstreamTrustDir };
  const cold = await alternate(counts, {
    pullthrough: () => coldPull(registries, image, 'skopeo-direct-cold'),
    reference: () => pull(registries, image, direct),
  });
  const cached = await registries.withProxy('skopeo-direct-cached', async (proxy) => {
    const ours = viaProxy(registries, proxy.url);
    await pull(registries, image, ours); // the fills
    return alternate(counts, {
      pullthrough: () => pull(registries, image, ours),
      reference: () => pull(registries, image, direct),
    });
  });
  const layers = image.blobs.length - 1;
  const row = (temperature: string, result: typeof cold, target: number): Row => ({
    scenario: `skopeo pull through pullthrough, ${temperature}, against a direct pull (${mib(image)}, ${layers} layers)`,
    pullthrough: rate(result.pullthrough),
    reference: `direct from upstream ${rate(result.reference)}`,
    ratio: ratio(result.pullthrough, result.reference),
    target: `≥ ${target.toFixed(2)}× (information)`,
    met: result.pullthrough.median / result.reference.median >= target,
  });
  return [row('cold', cold, 0.8), row('cached', cached, 0.9)];
}

interface Stampede {
  /** Upstream blob bytes over the image's blob bytes. */
  readonly multiple: number;
  readonly failed: string[];
  /** Aggregate bytes/s of the copies, wall clock. */
  readonly rate: number;
}

async function stampedeRound(registries: Registries, image: PushedImage, side: Side): Promise<Stampede> {
  const from = await registries.upstream.mark();
  const started = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: SKOPEO_STAMPEDE_CLIENTS }, () => pull(registries, image, side)),
  );
  const seconds = (performance.now() - started) / 1000;
  const to = await registries.upstream.mark();
  const bytes = await registries.upstream.blobBytes(image.repository, from, to);
  return {
    multiple: bytes / image.blobBytes,
    failed: results.flatMap((result) =>
      result.status === 'rejected' ? [String((result.reason as Error).message ?? result.reason)] : [],
    ),
    rate: (SKOPEO_STAMPEDE_CLIENTS * image.blobBytes) / seconds,
  };
}

export async function skopeoStampede(
  registries: Registries,
  image: PushedImage,
  counts: Counts,
): Promise<Row> {
  const rounds: Record<'pullthrough' | 'reference', Stampede[]> = { pullthrough: [], reference: [] };
  await alternate(counts, {
    async pullthrough() {
      const proxy = await registries.startProxy('skopeo-stampede');
      try {
        const round = await stampedeRound(registries, image, viaProxy(registries, proxy.url));
        rounds.pullthrough.push(round);
        return round.multiple;
      } finally {
        await proxy.stop();
      }
    },
    async reference() {
      await registries.mirror.restartEmpty();
      const round = await stampedeRound(registries, image, viaMirror(registries));
      rounds.reference.push(round);
      return round.multiple;
    },
  });
  // The warm-up rounds count for correctness too; only the measured ones for the figures.
  const measured = (list: Stampede[]) => list.slice(counts.warmup);
  const describe = (list: Stampede[]) => {
    const multiple = summarize(measured(list).map((round) => round.multiple));
    const failed = list.reduce((sum, round) => sum + round.failed.length, 0);
    const f = (value: number) => value.toFixed(2);
    return {
      multiple,
      failed,
      text: `upstream ${f(multiple.median)}× (${f(multiple.min)}–${f(multiple.max)}) the blobs, ${
        failed === 0 ? 'every copy ok' : `${failed}/${list.length * SKOPEO_STAMPEDE_CLIENTS} copies failed`
      }, ${rate(summarize(measured(list).map((round) => round.rate)))}`,
    };
  };
  const ours = describe(rounds.pullthrough);
  const theirs = describe(rounds.reference);
  // Only pullthrough's copies fail the row: the reference's failures show in its column (the
  // distribution mirror answers some of 20 concurrent cold copies with a 500).
  const firstFailure = rounds.pullthrough.flatMap((round) => round.failed)[0];
  return {
    scenario: `skopeo pull, ${SKOPEO_STAMPEDE_CLIENTS} at once, cold (${mib(image)})`,
    pullthrough: ours.text,
    reference: `distribution mirror ${theirs.text}`,
    ratio: `${(ours.multiple.median / theirs.multiple.median).toFixed(2)}× upstream bytes`,
    target: 'upstream = 1.00×, all copies ok',
    met: ours.multiple.min === 1 && ours.multiple.max === 1 && firstFailure === undefined,
    ...(firstFailure === undefined
      ? {}
      : { error: `${ours.failed} copies through pullthrough failed, first: ${firstFailure}` }),
  };
}
