// The upstream HTTP client: one pooled keep-alive undici Agent for every registry, trusting
// Node's roots, the OS store, NODE_EXTRA_CA_CERTS and configured CAs. It forwards requests as
// given (the client's own Authorization included) and never follows redirects by itself.
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import net from 'node:net';
import { Agent, buildConnector } from 'undici';
import type { DestinationGuard } from '../net/guard.ts';
import { bypassesParent, connectThrough, type ParentProxy } from '../net/parent-proxy.ts';
import { toUpstreamError, UpstreamUnavailableError } from './errors.ts';
import { BlobReader, Unsupported } from './h1/blob-reader.ts';
import type { SharedLogin } from './login.ts';
import type { UpstreamRequest, UpstreamResponse } from './types.ts';

export type { UpstreamRequest, UpstreamResponse } from './types.ts';

export interface UpstreamOptions {
  readonly verifyTls: boolean;
  /** Extra trusted CA certificates, PEM text. */
  readonly extraCas: readonly string[];
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** Checks every address before a connection is opened (registries, their redirect targets, token realms). */
  readonly guard?: DestinationGuard;
  /** Logs in with configured credentials for registries whose policy is `share`. */
  readonly login?: SharedLogin;
  /** Wraps the socket connector; tests use it to see (and stop) every address connected to. */
  readonly wrapConnector?: (connector: buildConnector.connector) => buildConnector.connector;
  /** Told of every request sent: its response's status and headers, or why none came (metrics). */
  readonly observe?: (observation: UpstreamObservation) => void;
  /** A parent proxy every upstream connection CONNECTs through (except its NO_PROXY destinations). */
  readonly parent?: ParentProxy | undefined;
  /** Who reads blob bodies (requests marked `bulk`): the own reader (h1/), or undici as every other. */
  readonly blobReader?: 'own' | 'undici';
}

/** One request sent upstream (redirect hops and token requests each count) and what came of it. */
export type UpstreamObservation = { readonly origin: string; readonly method: string } & (
  | { readonly status: number; readonly headers: Readonly<Record<string, unknown>> }
  | { readonly failure: 'unreachable' | 'timeout' | 'tls' }
);

export class Upstream {
  readonly #agent: Agent;
  /** Undefined when undici reads blobs too (configured so, or a test watches every connection). */
  readonly #blobs: BlobReader | undefined;
  readonly #parent: ParentProxy | undefined;
  readonly #login: SharedLogin | undefined;
  readonly #observe: ((observation: UpstreamObservation) => void) | undefined;

  constructor(options: UpstreamOptions) {
    // One context for every connection: given as `ca`, the ~270 roots would be parsed into a
    // new store for each TLS connection (25–90 ms each on a 2-core machine, measured by
    // npm run bench's first-request scenario). `ca` replaces the default store, so the
    // defaults go in explicitly.
    const secureContext = tls.createSecureContext({ ca: trustedCas(options.extraCas) });
    const base = buildConnector({
      timeout: options.connectTimeoutMs,
      secureContext,
      rejectUnauthorized: options.verifyTls,
    });
    this.#parent = options.parent;
    this.#blobs =
      options.blobReader === 'undici' || options.wrapConnector
        ? undefined
        : new BlobReader({
            secureContext,
            rejectUnauthorized: options.verifyTls,
            connectTimeoutMs: options.connectTimeoutMs,
            headersTimeoutMs: options.headersTimeoutMs,
            bodyTimeoutMs: options.bodyTimeoutMs,
            guard: options.guard,
          });
    const wrapped = options.wrapConnector?.(base) ?? base;
    const direct = options.guard ? guardedConnector(wrapped, options.guard) : wrapped;
    this.#login = options.login;
    this.#observe = options.observe;
    this.#agent = new Agent({
      connect: options.parent ? parentConnector(wrapped, direct, options.parent, options) : direct,
      // HTTP/1.1 upstream: measured faster than h2 for large bodies here (dependencies.md §5.8)
      // and each blob stream gets its own connection instead of sharing one flow-control window.
      allowH2: false,
      connections: 128,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
    });
  }

  /** Sends one request; the caller must consume or destroy the response body. */
  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    return this.#login ? this.#login.send(request, (r) => this.#send(r)) : this.#send(request);
  }

  async #send(request: UpstreamRequest): Promise<UpstreamResponse> {
    const { origin, method } = request;
    try {
      const response =
        (await this.#sendOwn(request)) ??
        (await this.#agent.request({
          origin: request.origin,
          method: request.method,
          path: request.path,
          headers: request.headers,
          body: request.body ?? null,
          signal: request.signal ?? null,
          ...(request.headersTimeoutMs === undefined ? {} : { headersTimeout: request.headersTimeoutMs }),
        }));
      this.#observe?.({ origin, method, status: response.statusCode, headers: response.headers });
      return response;
    } catch (error) {
      const wrapped = toUpstreamError(error, request.origin);
      if (wrapped instanceof UpstreamUnavailableError) {
        const failure = wrapped.timeout ? 'timeout' : wrapped.tls ? 'tls' : 'unreachable';
        this.#observe?.({ origin, method, failure });
      }
      throw wrapped;
    }
  }

  /** A blob's GET through the own reader; undefined when undici is to send it. */
  async #sendOwn(request: UpstreamRequest): Promise<UpstreamResponse | undefined> {
    if (!this.#blobs || !request.bulk || !BlobReader.handles(request)) return undefined;
    if (this.#parent) {
      const url = new URL(request.origin);
      const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
      if (!bypassesParent(this.#parent, url.hostname.replace(/^\[|\]$/g, ''), port)) return undefined;
    }
    try {
      return await this.#blobs.request(request);
    } catch (error) {
      // A framing the reader leaves to undici (an unknown transfer coding): asked again there.
      if (error instanceof Unsupported) return undefined;
      throw error;
    }
  }

  /** Cuts every upstream connection (the proxy has already drained or given up on its requests). */
  async destroy(): Promise<void> {
    this.#blobs?.close();
    await this.#agent.destroy();
  }
}

/**
 * Resolves the name through the guard and connects to the first allowed address, with the name
 * kept as TLS server name: the certificate is still checked against the name, and the address
 * connected to is the one that was checked.
 */
function guardedConnector(base: buildConnector.connector, guard: DestinationGuard): buildConnector.connector {
  return (options, callback) => {
    const hostname = options.hostname.replace(/^\[|\]$/g, '');
    guard.addresses(hostname, { allowLoopback: true }).then(
      ([first]) => {
        if (!first) throw new Error(`no address for ${hostname}`);
        const servername = options.servername ?? (net.isIP(hostname) === 0 ? hostname : undefined);
        base({ ...options, hostname: first.address, ...(servername ? { servername } : {}) }, callback);
      },
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), null),
    );
  };
}

/**
 * Through the parent proxy: it resolves the registry's name (this host may not be able to), so
 * the guard checks only IP literals here; TLS to the registry runs inside the CONNECT tunnel,
 * checked against the registry's name as ever. NO_PROXY destinations go the direct way.
 */
function parentConnector(
  base: buildConnector.connector,
  direct: buildConnector.connector,
  parent: ParentProxy,
  options: UpstreamOptions,
): buildConnector.connector {
  return (connect, callback) => {
    const hostname = connect.hostname.replace(/^\[|\]$/g, '');
    const https = connect.protocol === 'https:';
    const port = Number(connect.port) || (https ? 443 : 80);
    if (bypassesParent(parent, hostname, port)) return direct(connect, callback);
    const checked =
      options.guard && net.isIP(hostname) !== 0
        ? options.guard.addresses(hostname, { allowLoopback: true })
        : Promise.resolve();
    checked
      .then(() => connectThrough(parent, hostname, port, options.connectTimeoutMs))
      .then(
        (socket) => (https ? base({ ...connect, httpSocket: socket }, callback) : callback(null, socket)),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), null),
      );
  };
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
