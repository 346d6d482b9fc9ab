// The upstream HTTP client: one pooled keep-alive undici Agent for every registry, trusting
// Node's roots, the OS store, NODE_EXTRA_CA_CERTS and configured CAs. It forwards requests as
// given (the client's own Authorization included) and never follows redirects by itself.
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { toUpstreamError } from './errors.ts';

export interface UpstreamOptions {
  readonly verifyTls: boolean;
  /** Extra trusted CA certificates, PEM text. */
  readonly extraCas: readonly string[];
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

export interface UpstreamRequest {
  readonly origin: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  readonly body?: Readable | null;
  readonly signal?: AbortSignal;
}

export type UpstreamResponse = Dispatcher.ResponseData;

export class Upstream {
  readonly #agent: Agent;

  constructor(options: UpstreamOptions) {
    this.#agent = new Agent({
      connect: {
        timeout: options.connectTimeoutMs,
        // `ca` replaces the default store, so the defaults go in explicitly.
        ca: trustedCas(options.extraCas),
        rejectUnauthorized: options.verifyTls,
      },
      // HTTP/1.1 upstream: measured faster than h2 for large bodies here (dependencies.md §5.8)
      // and each blob stream gets its own connection instead of sharing one flow-control window.
      allowH2: false,
      connections: 128,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      autoSelectFamily: true,
    });
  }

  /** Sends one request; the caller must consume or destroy the response body. */
  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    try {
      return await this.#agent.request({
        origin: request.origin,
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body ?? null,
        signal: request.signal ?? null,
      });
    } catch (error) {
      throw toUpstreamError(error, request.origin);
    }
  }

  /** Cuts every upstream connection (the proxy has already drained or given up on its requests). */
  async destroy(): Promise<void> {
    await this.#agent.destroy();
  }
}

/** Node's bundled roots and NODE_EXTRA_CA_CERTS ('default'), the OS store, and `extra`, deduplicated. */
export function trustedCas(extra: readonly string[]): string[] {
  return [...new Set([...tls.getCACertificates('default'), ...tls.getCACertificates('system'), ...extra])];
}

/** Reads configured CA files; a missing or non-PEM file is reported by path. */
export async function readCaFiles(files: readonly string[]): Promise<string[]> {
  const pems: string[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    if (!certs) throw new Error(`${file} holds no PEM certificate`);
    pems.push(...certs.map((pem) => `${pem}\n`));
  }
  return pems;
}
