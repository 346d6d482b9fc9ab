// How long one request takes, for the rows that ask about the latency of a hit rather than how
// many go through (s3.ts): GETs one at a time over one kept-alive connection through a proxy
// (CONNECT + TLS once, then HTTP/1.1), timed to the first body byte and to the last, in the
// harness's process. The sides are interleaved request by request so that drift hits all alike.
import { once } from 'node:events';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { percentile } from './scenarios/manifests.ts';
import { TunnelAgent, type Answer } from './tunnel-client.ts';

export interface Timed {
  readonly answer: Answer;
  /** ms from the request to the first byte of the body (its headers came with or before it). */
  readonly firstByte: number;
  /** ms from the request to the last byte of the body. */
  readonly total: number;
}

/** One kept-alive TLS connection through pullthrough to `authority` (host:port). */
export class KeptAlive {
  readonly #agent: TunnelAgent;
  readonly #host: string;
  readonly #port: string;

  private constructor(agent: TunnelAgent, authority: string) {
    this.#agent = agent;
    this.#host = authority.slice(0, authority.lastIndexOf(':'));
    this.#port = authority.slice(authority.lastIndexOf(':') + 1);
  }

  static async open(proxy: { url: string; caFile: string }, authority: string): Promise<KeptAlive> {
    const ca = await readFile(proxy.caFile, 'utf8');
    return new KeptAlive(new TunnelAgent(proxy.url, ca, { keepAlive: true, maxSockets: 1 }), authority);
  }

  async get(path: string, headers: http.OutgoingHttpHeaders = {}): Promise<Timed> {
    const started = performance.now();
    const req = http.request({ agent: this.#agent, host: this.#host, port: this.#port, path, headers });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    const chunks: Buffer[] = [];
    let firstByte: number | undefined;
    for await (const chunk of res) {
      firstByte ??= performance.now() - started;
      chunks.push(chunk as Buffer);
    }
    const total = performance.now() - started;
    const answer = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
    return { answer, firstByte: firstByte ?? total, total };
  }

  close(): void {
    this.#agent.destroy();
  }
}

export interface Latencies {
  readonly firstByte: number[];
  readonly total: number[];
}

/**
 * `warmup` unrecorded then `requests` recorded rounds; each round asks every side once, in turn.
 * A side checks its answer and throws when it is wrong.
 */
export async function interleave<K extends string>(
  warmup: number,
  requests: number,
  sides: Record<K, () => Promise<Timed>>,
): Promise<Record<K, Latencies>> {
  const keys = Object.keys(sides) as K[];
  const found = Object.fromEntries(
    keys.map((key) => [key, { firstByte: [] as number[], total: [] as number[] }]),
  ) as Record<K, Latencies>;
  for (let round = 0; round < warmup + requests; round++) {
    for (const key of keys) {
      const { firstByte, total } = await sides[key]();
      if (round < warmup) continue;
      found[key].firstByte.push(firstByte);
      found[key].total.push(total);
    }
  }
  return found;
}

export interface LatencySummary {
  readonly firstByte: { p50: number; p99: number };
  readonly total: { p50: number; p99: number };
}

export function summarizeLatency(latencies: Latencies): LatencySummary {
  const of = (values: readonly number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  };
  return { firstByte: of(latencies.firstByte), total: of(latencies.total) };
}

/** `first byte p50 0.41 / p99 0.90 ms, whole p50 0.52 / p99 1.10 ms`. */
export function latencyText({ firstByte, total }: LatencySummary): string {
  const ms = (value: number) => value.toFixed(2);
  return `first byte p50 ${ms(firstByte.p50)} / p99 ${ms(firstByte.p99)} ms, whole p50 ${ms(total.p50)} / p99 ${ms(total.p99)} ms`;
}

/** `1.80× p50, 2.10× p99` of the whole request. */
export function latencyRatio(ours: LatencySummary, reference: LatencySummary): string {
  const f = (a: number, b: number) => (a / b).toFixed(2);
  return `${f(ours.total.p50, reference.total.p50)}× p50, ${f(ours.total.p99, reference.total.p99)}× p99`;
}
