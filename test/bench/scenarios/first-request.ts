// Scenario 7: the first request to an intercepted host the proxy has not seen: from sending
// CONNECT to the TLS handshake done (a leaf issued for the host, then the handshake), and to the
// first /v2/ response (relayed from upstream, which pullthrough has not connected to either).
// New hosts are the upstream's alias addresses 127.0.0.2, … (world.ts); each round is a fresh
// proxy, which has seen none of them. The reference is the same on a host it has seen (its
// leaf cached), asked in turn with each new one.
import { readFile } from 'node:fs/promises';
import { summarize, type Row } from '../harness.ts';
import { requestOn, tunnelTls, type TunnelTimings } from '../tunnel-client.ts';
import type { World } from '../world.ts';

interface Sample {
  /** CONNECT sent → TLS handshake done, ms. */
  readonly secure: number;
  /** CONNECT sent → /v2/ response read, ms. */
  readonly answered: number;
}

async function firstRequest(proxyUrl: string, ca: string, authority: string): Promise<Sample> {
  const started = performance.now();
  const timings: TunnelTimings = { connected: 0, secure: 0 };
  const socket = await tunnelTls(proxyUrl, authority, ca, timings);
  try {
    const answer = await requestOn(socket, authority, '/v2/');
    if (answer.status !== 200) throw new Error(`GET https://${authority}/v2/ answered ${answer.status}`);
    return { secure: timings.secure, answered: performance.now() - started };
  } finally {
    socket.destroy();
  }
}

function figures(values: readonly number[]): { text: string; median: number; p99: number } {
  const { median } = summarize(values);
  const sorted = [...values].sort((a, b) => a - b);
  const p99 = sorted[Math.ceil(0.99 * sorted.length) - 1] ?? Number.NaN;
  const ms = (value: number) => value.toFixed(1);
  return {
    text: `median ${ms(median)} ms, p99 ${ms(p99)} ms (${ms(sorted[0]!)}–${ms(sorted.at(-1)!)})`,
    median,
    p99,
  };
}

export async function firstRequestToNewHost(world: World): Promise<Row[]> {
  const { nginx } = world;
  const fresh: Sample[] = [];
  const seen: Sample[] = [];
  for (let round = 0; round < world.counts.warmup + world.counts.runs; round++) {
    const proxy = await world.startProxy('first-request', { registries: [nginx.upstream, ...nginx.aliases] });
    try {
      const ca = await readFile(proxy.caFile, 'utf8');
      await firstRequest(proxy.url, ca, nginx.upstream); // the seen host, now seen
      for (const alias of nginx.aliases) {
        const sample = await firstRequest(proxy.url, ca, alias);
        const again = await firstRequest(proxy.url, ca, nginx.upstream);
        if (round < world.counts.warmup) continue;
        fresh.push(sample);
        seen.push(again);
      }
    } finally {
      await proxy.stop();
    }
  }
  const handshake = figures(fresh.map((s) => s.secure));
  const seenHandshake = figures(seen.map((s) => s.secure));
  const answered = figures(fresh.map((s) => s.answered));
  const seenAnswered = figures(seen.map((s) => s.answered));
  const hosts = `${fresh.length} new hosts`;
  return [
    {
      scenario: `first request to a new host: CONNECT → TLS done (${hosts})`,
      pullthrough: handshake.text,
      reference: `seen host ${seenHandshake.text}`,
      ratio: `${(handshake.median / seenHandshake.median).toFixed(2)}×`,
      target: 'median and p99 < 20 ms',
      met: handshake.p99 < 20,
    },
    {
      scenario: `first request to a new host: CONNECT → /v2/ answered (${hosts})`,
      pullthrough: answered.text,
      reference: `seen host ${seenAnswered.text}`,
      ratio: `${(answered.median / seenAnswered.median).toFixed(2)}×`,
      target: '–',
      met: undefined,
    },
  ];
}
