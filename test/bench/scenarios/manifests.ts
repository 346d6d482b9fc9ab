// Scenario 6: a manifest already in pullthrough's cache, asked for by digest over 64 kept-alive
// intercepted connections at once (CONNECT + TLS to pullthrough's leaf, then HTTP/1.1
// keep-alive), HEAD and GET in turn, against the same client on 64 kept-alive TLS connections
// straight to nginx serving the same file. Every answer is checked: status, digest header,
// length, and each GET body byte for byte.
// Twice: as fast as each answers (a closed loop: the latency there is mostly the queue of 64
// waiting requests, and the faster server runs the longer queue per turn of its loop), and at one
// rate for both, half what nginx managed, where the latency is the service's own.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { summarize, type Row, type Summary } from '../harness.ts';
import { readAnswer, TunnelAgent, type Answer } from '../tunnel-client.ts';
import type { Manifest, World } from '../world.ts';

export const CONNECTIONS = 64;
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

type Send = (method: string) => Promise<Answer>;

interface Round {
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** What is wrong with `answer` to a `method` of `manifest`, or undefined. */
export function wrong(method: string, answer: Answer, manifest: Manifest): string | undefined {
  if (answer.status !== 200) return `${method} answered ${answer.status}`;
  if (answer.headers['docker-content-digest'] !== manifest.digest)
    return `${method}: wrong docker-content-digest`;
  if (answer.headers['content-length'] !== String(manifest.content.length))
    return `${method}: content-length ${String(answer.headers['content-length'])}`;
  if (method === 'GET' && !answer.body.equals(manifest.content)) return 'GET: wrong body';
  return undefined;
}

/**
 * `requests` requests, HEAD and GET in turn, from CONNECTIONS workers each waiting for its
 * answer before asking again (one request in flight per connection).
 */
async function round(send: Send, manifest: Manifest, requests: number): Promise<Round> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < requests) {
      const method = next++ % 2 === 0 ? 'HEAD' : 'GET';
      const started = performance.now();
      const answer = await send(method);
      latencies.push(performance.now() - started);
      const problem = wrong(method, answer, manifest);
      if (problem !== undefined) throw new Error(problem);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { perSecond: requests / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/**
 * `requests` requests at `rate` a second, HEAD and GET in turn, from CONNECTIONS workers; each
 * request is due at its place in the schedule, and its latency runs from then, so that an answer
 * late by a stall counts the wait of the requests queued behind it too (no coordinated omission).
 */
async function pacedRound(send: Send, manifest: Manifest, requests: number, rate: number): Promise<Round> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < requests) {
      const index = next++;
      const due = started + (index * 1000) / rate;
      const early = due - performance.now();
      if (early > 0) await sleep(Math.ceil(early));
      const method = index % 2 === 0 ? 'HEAD' : 'GET';
      // A timer may fire a little early: then the latency runs from the send.
      const from = Math.min(due, performance.now());
      const answer = await send(method);
      latencies.push(performance.now() - from);
      const problem = wrong(method, answer, manifest);
      if (problem !== undefined) throw new Error(problem);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { perSecond: requests / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

function describe(rounds: readonly Round[]): { text: string; perSecond: Summary; p99: Summary } {
  const perSecond = summarize(rounds.map((r) => r.perSecond));
  const p50 = summarize(rounds.map((r) => r.p50));
  const p99 = summarize(rounds.map((r) => r.p99));
  const n = (value: number) => Math.round(value).toLocaleString('en-US');
  const ms = (value: number) => value.toFixed(1);
  return {
    text: `${n(perSecond.median)} (${n(perSecond.min)}–${n(perSecond.max)}) req/s, p50 ${ms(p50.median)} ms, p99 ${ms(p99.median)} (${ms(p99.min)}–${ms(p99.max)}) ms`,
    perSecond,
    p99,
  };
}

/**
 * `total` requests through pullthrough (and as many straight to nginx), split over the measured
 * rounds, as fast as each answers; then as many again at half nginx's rate. A warm-up round of 20
 * requests per connection opens the connections first.
 */
export async function cachedManifests(world: World, total: number): Promise<Row[]> {
  const { runs } = world.counts;
  const perRound = Math.round(total / runs);
  const manifest = await world.newManifest([world.blob]);
  const proxy = await world.startProxy('manifests');
  const clients = await manifestClients(world, manifest, proxy);
  try {
    // The fill: the GET that puts the manifest in the cache; from here on each request is a hit.
    const problem = wrong('GET', await clients.viaProxy('GET'), manifest);
    if (problem !== undefined) throw new Error(`the filling ${problem}`);
    const closed = await rounds(
      world,
      clients,
      (send, requests) => round(send, manifest, requests),
      perRound,
    );
    const rate = Math.round(closed.reference.perSecond.median / 2);
    const paced = await rounds(
      world,
      clients,
      (send, requests) => pacedRound(send, manifest, requests, rate),
      perRound,
    );
    const title = `cached manifest HEAD/GET by digest, ${CONNECTIONS} kept-alive connections, ${runs} × ${perRound.toLocaleString('en-US')} requests`;
    return [
      latencyRow(`${title}, as fast as answered`, closed),
      latencyRow(`${title}, both at ${rate.toLocaleString('en-US')} req/s (half nginx's rate)`, paced),
    ];
  } finally {
    clients.close();
    await proxy.stop();
  }
}

interface Clients {
  readonly viaProxy: Send;
  readonly direct: Send;
  close(): void;
}

/** The same client's two ways to the manifest: intercepted by `proxy`, and straight to nginx. */
async function manifestClients(
  world: World,
  manifest: Manifest,
  proxy: { url: string; caFile: string },
): Promise<Clients> {
  const { nginx } = world;
  const viaProxy = new TunnelAgent(proxy.url, await readFile(proxy.caFile, 'utf8'), {
    keepAlive: true,
    maxSockets: CONNECTIONS,
  });
  const direct = new https.Agent({
    keepAlive: true,
    maxSockets: CONNECTIONS,
    ca: await readFile(world.upstreamCaFile, 'utf8'),
  });
  const headers = { accept: MANIFEST_TYPE };
  const path = new URL(world.manifestUrl(nginx.upstream, manifest)).pathname;
  const [host, port] = nginx.upstream.split(':');
  const [referenceHost, referencePort] = nginx.reference.split(':');
  return {
    viaProxy(method) {
      const req = http.request({ agent: viaProxy, host, port, path, method, headers });
      req.end();
      return readAnswer(req);
    },
    direct(method) {
      const req = https.request({
        agent: direct,
        host: referenceHost,
        port: referencePort,
        path,
        method,
        headers,
      });
      req.end();
      return readAnswer(req);
    },
    close() {
      viaProxy.destroy();
      direct.destroy();
    },
  };
}

/** Warm-up and measured rounds of `run`, pullthrough and nginx in turn. */
async function rounds(
  world: World,
  clients: Clients,
  run: (send: Send, requests: number) => Promise<Round>,
  perRound: number,
): Promise<{ pullthrough: ReturnType<typeof describe>; reference: ReturnType<typeof describe> }> {
  const { warmup, runs } = world.counts;
  const measured = { pullthrough: [] as Round[], reference: [] as Round[] };
  for (let i = 0; i < warmup + runs; i++) {
    const requests = i < warmup ? CONNECTIONS * 20 : perRound;
    const pullthrough = await run(clients.viaProxy, requests);
    const reference = await run(clients.direct, requests);
    if (i < warmup) continue;
    measured.pullthrough.push(pullthrough);
    measured.reference.push(reference);
  }
  return { pullthrough: describe(measured.pullthrough), reference: describe(measured.reference) };
}

/** Issue 21: p99 no worse than nginx's with the same client, the absolute figures shown. */
function latencyRow(
  scenario: string,
  result: { pullthrough: ReturnType<typeof describe>; reference: ReturnType<typeof describe> },
): Row {
  const { pullthrough, reference } = result;
  return {
    scenario,
    pullthrough: pullthrough.text,
    reference: `nginx ${reference.text}`,
    ratio: `${(pullthrough.perSecond.median / reference.perSecond.median).toFixed(2)}× req/s, ${(pullthrough.p99.median / reference.p99.median).toFixed(2)}× p99`,
    target: "p99 ≤ nginx's",
    met: pullthrough.p99.median <= reference.p99.median,
  };
}
