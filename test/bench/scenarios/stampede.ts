// Scenario 4: 20 clients ask for one blob that is not cached, all at once. Upstream must send
// it exactly once (its access log counts the body bytes) and every client must get the right
// bytes (sha256 of each body). A wrong answer here fails the run; slowness never does.
import { rm } from 'node:fs/promises';
import { bodyDigest } from '../curl.ts';
import { summarize, type Row } from '../harness.ts';
import type { World } from '../world.ts';

export const STAMPEDE_CLIENTS = 20;

export async function stampede(world: World, size: number): Promise<Row> {
  const { nginx } = world;
  const ratios: number[] = [];
  const wrong: string[] = [];
  for (let round = 0; round < world.counts.warmup + world.counts.runs; round++) {
    const blob = await world.newBlob(size);
    const proxy = await world.startProxy('stampede');
    try {
      const mark = await nginx.upstreamLogMark();
      const target = { url: world.blobUrl(nginx.upstream, blob), cacert: proxy.caFile, proxy: proxy.url };
      const digests = await Promise.all(Array.from({ length: STAMPEDE_CLIENTS }, () => bodyDigest(target)));
      const bad = digests.filter((digest) => digest !== blob.digest).length;
      if (bad > 0) wrong.push(`round ${round}: ${bad}/${STAMPEDE_CLIENTS} bodies wrong`);
      if (round >= world.counts.warmup) ratios.push((await nginx.upstreamBytes(mark, blob.digest)) / size);
    } finally {
      await proxy.stop();
      await rm(blob.file, { force: true });
    }
  }
  return onceRow(`cold blob, ${STAMPEDE_CLIENTS} clients at once (${size / 2 ** 20} MiB)`, ratios, wrong);
}

/**
 * The row of a stampede: upstream bytes per blob in each measured round (`ratios`, the target is
 * exactly 1) and the rounds where some client got a wrong body (`wrong`): either fails it.
 */
export function onceRow(scenario: string, ratios: readonly number[], wrong: readonly string[]): Row {
  const summary = summarize([...ratios]);
  const f = (value: number) => value.toFixed(2);
  const met = summary.min === 1 && summary.max === 1 && wrong.length === 0;
  return {
    scenario,
    pullthrough: `upstream bytes/blob ${f(summary.median)} (${f(summary.min)}–${f(summary.max)}), ${
      wrong.length === 0 ? 'every body sha256 ok' : wrong.join('; ')
    }`,
    reference: '–',
    ratio: '–',
    target: '= 1.00, all bodies ok',
    met,
    ...(met
      ? {}
      : { error: `upstream sent ${f(summary.max)}× the blob; ${wrong.join('; ') || 'bodies ok'}` }),
  };
}
