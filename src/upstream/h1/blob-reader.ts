// The own HTTP/1.1 client for the hot path of blob bodies (issue 21): GETs whose body a fill hashes
// and stores, read into one reused buffer per connection instead of a new buffer per TLS record
// (what undici's socket reads cost: `npm run bench` shows the difference). Kept-alive connections
// per origin, addresses checked by the destination guard as undici's are. What it does not
// handle goes to undici (client.ts): other methods, request bodies, hop-by-hop request fields,
// a parent proxy, and responses it does not frame (an unknown transfer coding: `Unsupported`).
import net from 'node:net';
import type tls from 'node:tls';
import type { DestinationGuard } from '../../net/guard.ts';
import type { UpstreamRequest, UpstreamResponse } from '../types.ts';
import { Connection, type Response } from './connection.ts';
import { ResponseParseError } from './response-parser.ts';

/** Request fields the reader frames itself or that would change the framing: undici's business. */
const OWN_FIELDS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'upgrade',
  'content-length',
  'expect',
  'host',
]);
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const UNSAFE_VALUE = /[\r\n\0]/;

export interface BlobReaderOptions {
  readonly secureContext: tls.SecureContext;
  readonly rejectUnauthorized: boolean;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly guard?: DestinationGuard | undefined;
  /** How long an idle connection is kept for the next request. */
  readonly keepAliveMs?: number;
}

/** The response is valid HTTP but not framed by this reader: send the request with undici. */
export class Unsupported extends Error {
  override readonly name = 'Unsupported';
}

export class BlobReader {
  readonly #options: BlobReaderOptions;
  /** Idle connections by origin, each with what stops keeping it. */
  readonly #idle = new Map<string, Map<Connection, () => void>>();
  #closed = false;

  constructor(options: BlobReaderOptions) {
    this.#options = options;
  }

  /** Whether this reader can send `request` (else undici does). */
  static handles(request: UpstreamRequest): boolean {
    if (request.method !== 'GET' || request.body) return false;
    if (!request.origin.startsWith('https://') && !request.origin.startsWith('http://')) return false;
    return Object.entries(request.headers).every(([name, value]) => {
      const values = Array.isArray(value) ? value : [value];
      return (
        FIELD_NAME.test(name) &&
        !OWN_FIELDS.has(name.toLowerCase()) &&
        !values.some((item) => UNSAFE_VALUE.test(item))
      );
    });
  }

  /** Sends `request` (handles() must be true); the caller consumes or destroys the body. */
  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    const url = new URL(request.origin);
    const reused = this.#takeIdle(request.origin);
    try {
      return await this.#send(reused ?? (await this.#dial(url)), url, request);
    } catch (error) {
      // A kept-alive connection the server closed as this request went out: once more, afresh.
      if (reused === undefined || !isReset(error)) throw error;
      return this.#send(await this.#dial(url), url, request);
    }
  }

  /** Closes the idle connections; those in use close when their response ends. */
  close(): void {
    this.#closed = true;
    for (const connections of this.#idle.values())
      for (const connection of connections.keys()) connection.socket.destroy();
    this.#idle.clear();
  }

  async #send(connection: Connection, url: URL, request: UpstreamRequest): Promise<UpstreamResponse> {
    const { signal } = request;
    signal?.throwIfAborted();
    const onAbort = () => connection.socket.destroy(signal?.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    let response: Response;
    try {
      response = await connection.send(
        {
          method: 'GET',
          path: request.path,
          headers: { host: url.host, ...request.headers },
          headersTimeoutMs: request.headersTimeoutMs ?? this.#options.headersTimeoutMs,
          bodyTimeoutMs: this.#options.bodyTimeoutMs,
        },
        (reusable) => {
          signal?.removeEventListener('abort', onAbort);
          if (reusable) this.#park(request.origin, connection);
        },
      );
    } catch (error) {
      signal?.removeEventListener('abort', onAbort);
      if (error instanceof ResponseParseError && error.unsupported) throw new Unsupported(error.message);
      throw error;
    }
    return { statusCode: response.head.statusCode, headers: response.head.headers, body: response.body };
  }

  async #dial(url: URL): Promise<Connection> {
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    const https = url.protocol === 'https:';
    const port = Number(url.port) || (https ? 443 : 80);
    const [first] = this.#options.guard
      ? await this.#options.guard.addresses(hostname, { allowLoopback: true })
      : [{ address: hostname }];
    if (!first) throw new Error(`no address for ${hostname}`);
    const { secureContext, rejectUnauthorized, connectTimeoutMs } = this.#options;
    const servername = net.isIP(hostname) === 0 ? hostname : undefined;
    return Connection.dial({
      host: first.address,
      port,
      connectTimeoutMs,
      ...(https ? { tls: { servername, secureContext, rejectUnauthorized } } : {}),
    });
  }

  #takeIdle(origin: string): Connection | undefined {
    const connections = this.#idle.get(origin);
    for (const [connection, untrack] of connections ?? []) {
      untrack();
      if (connection.idle) return connection;
    }
    return undefined;
  }

  /** Keeps a connection for the next request to `origin`, until it closes or idles out. */
  #park(origin: string, connection: Connection): void {
    const { socket } = connection;
    if (this.#closed) return void socket.destroy();
    let connections = this.#idle.get(origin);
    if (!connections) this.#idle.set(origin, (connections = new Map<Connection, () => void>()));
    const untrack = () => {
      clearTimeout(timer);
      socket.off('close', untrack).ref();
      connections.delete(connection);
      if (connections.size === 0 && this.#idle.get(origin) === connections) this.#idle.delete(origin);
    };
    const timer = setTimeout(() => {
      untrack();
      socket.destroy();
    }, this.#options.keepAliveMs ?? 30_000);
    timer.unref();
    socket.once('close', untrack).unref();
    connections.set(connection, untrack);
  }
}

function isReset(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET';
}
