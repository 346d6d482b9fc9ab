// Scenario 6: a manifest already in pullthrough's cache, asked for by digest over 64 kept-alive
// intercepted connections at once (CONNECT + TLS to pullthrough's leaf, then HTTP/1.1
// keep-alive), HEAD and GET in turn, against the same client on 64 kept-alive TLS connections
// straight to nginx serving the same file. Every answer is checked: status, digest header,
// length, and each GET body byte for byte.
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { summarize, type Row, type Summary } from '../harness.ts';
import { readAnswer, TunnelAgent, type Answer } from '../tunnel-client.ts';
import type { Manifest, World } from '../world.ts';

export const CONNECTIONS = 64;
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

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
async function round(
  send: (method: string) => Promise<Answer>,
  manifest: Manifest,
  requests: number,
): Promise<Round> {
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
 * rounds; a warm-up round of 20 requests per connection opens the connections first.
 */
export async function cachedManifests(world: World, total: number): Promise<Row> {
  const { warmup, runs } = world.counts;
  const perRound = Math.round(total / runs);
  const { nginx } = world;
  const manifest = await world.newManifest([world.blob]);
  const proxy = await world.startProxy('manifests');
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
  const sendViaProxy = (method: string) => {
    const req = http.request({ agent: viaProxy, host, port, path, method, headers });
    req.end();
    return readAnswer(req);
  };
  const sendDirect = (method: string) => {
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
  };
  try {
    // The fill: the GET that puts the manifest in the cache; from here on each request is a hit.
    const problem = wrong('GET', await sendViaProxy('GET'), manifest);
    if (problem !== undefined) throw new Error(`the filling ${problem}`);
    const rounds = { pullthrough: [] as Round[], reference: [] as Round[] };
    for (let i = 0; i < warmup + runs; i++) {
      const requests = i < warmup ? CONNECTIONS * 20 : perRound;
      const pullthrough = await round(sendViaProxy, manifest, requests);
      const reference = await round(sendDirect, manifest, requests);
      if (i < warmup) continue;
      rounds.pullthrough.push(pullthrough);
      rounds.reference.push(reference);
    }
    const ours = describe(rounds.pullthrough);
    const theirs = describe(rounds.reference);
    return {
      scenario: `cached manifest HEAD/GET by digest, ${CONNECTIONS} kept-alive connections, ${runs} × ${perRound.toLocaleString('en-US')} requests`,
      pullthrough: ours.text,
      reference: `nginx ${theirs.text}`,
      ratio: `${(ours.perSecond.median / theirs.perSecond.median).toFixed(2)}× req/s`,
      target: 'p99 < 10 ms',
      met: ours.p99.median < 10,
    };
  } finally {
    viaProxy.destroy();
    direct.destroy();
    await proxy.stop();
  }
}
