// The proxy's listening socket. It moves bytes and knows nothing about registries:
// - CONNECT to an intercepted host:port → intercept.ts → the handler it is given;
// - CONNECT to anything else → tunnel.ts;
// - absolute-form plain-HTTP requests → the handler (intercepted) or forward.ts;
// - origin-form requests (to the proxy itself) → the local handler (health, CA download).
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.ts';
import { normalizeHost, parseAuthority, type Destination } from '../http/destination.ts';
import { forwardPlain } from './forward.ts';
import { intercept, type CertificateSource } from './intercept.ts';
import type { InterceptList } from './intercept-list.ts';
import { openTunnel } from './tunnel.ts';
import { writeStatus } from './status.ts';

export type InterceptHandler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  destination: Destination,
) => Promise<void>;

export type LocalHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface ProxyServerOptions {
  readonly interceptList: InterceptList;
  readonly certificates: CertificateSource;
  readonly handler: InterceptHandler;
  readonly local: LocalHandler;
  readonly log: Logger;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs?: number;
  /** Time a client may take to send a request's headers (slowloris guard). */
  readonly headersTimeoutMs?: number;
  /** Idle time after which a kept-alive client connection is closed. */
  readonly keepAliveTimeoutMs?: number;
}

export interface ProxyServer {
  listen(host: string, port: number): Promise<AddressInfo>;
  /** Stop accepting; let in-flight requests finish for up to `graceMs`; then cut everything. */
  close(graceMs: number): Promise<void>;
}

export function createProxyServer(options: ProxyServerOptions): ProxyServer {
  const { log } = options;
  const sockets = new Set<net.Socket | Duplex>();
  const track = (socket: net.Socket | Duplex) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const destinations = new WeakMap<net.Socket, Destination>();
  let inFlight = 0;
  let closing = false;
  let drained: (() => void) | undefined;

  // Counts requests so shutdown can wait for them; closes the connection after the last one.
  const begin = (req: http.IncomingMessage, res: http.ServerResponse) => {
    inFlight += 1;
    if (closing) res.shouldKeepAlive = false;
    res.once('close', () => {
      inFlight -= 1;
      if (closing) {
        req.socket.destroySoon();
        if (inFlight === 0) drained?.();
      }
    });
  };

  const serverOptions: http.ServerOptions = {
    // A blob upload or download may take as long as it takes: no whole-request deadline.
    requestTimeout: 0,
    headersTimeout: options.headersTimeoutMs ?? 30_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 60_000,
  };

  // Decrypted requests of intercepted connections arrive here; it never listens itself.
  const inner = http.createServer(serverOptions, (req, res) => {
    begin(req, res);
    const destination = destinations.get(req.socket);
    if (destination === undefined) {
      res.destroy();
      return;
    }
    void options.handler(req, res, destination);
  });
  inner.on('clientError', (error: NodeJS.ErrnoException, socket) => answerClientError(error, socket, log));

  const outer = http.createServer(serverOptions, (req, res) => {
    begin(req, res);
    const url = req.url ?? '/';
    if (url.startsWith('/')) {
      options.local(req, res);
      return;
    }
    const target = parseAbsoluteUrl(url);
    if (target === undefined) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bad request target\n');
      return;
    }
    if (options.interceptList.matches(target.destination.host, target.destination.port)) {
      void options.handler(req, res, target.destination);
    } else {
      void forwardPlain(req, res, target.destination, target.path, log);
    }
  });
  outer.on('connection', track);
  outer.on('clientError', (error: NodeJS.ErrnoException, socket) => answerClientError(error, socket, log));

  outer.on('connect', (req: http.IncomingMessage, duplex: Duplex, head: Buffer) => {
    // http.Server hands over the raw TCP socket of the CONNECT request.
    const socket = duplex as net.Socket;
    socket.on('error', () => socket.destroy());
    const destination = parseAuthority(req.url ?? '');
    if (destination === undefined) {
      log.info({ target: String(req.url).slice(0, 300) }, 'bad connect target');
      writeStatus(socket, 400, 'CONNECT target must be host:port');
      return;
    }
    if (closing) {
      writeStatus(socket, 503, 'shutting down');
      return;
    }
    if (options.interceptList.matches(destination.host, destination.port)) {
      void intercept(socket, head, destination, {
        certificates: options.certificates,
        inner,
        destinations,
        handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
        log,
        track,
      });
    } else {
      openTunnel(socket, head, destination, { connectTimeoutMs: options.connectTimeoutMs, log, track });
    }
  });

  return {
    async listen(host, port) {
      await new Promise<void>((resolve, reject) => {
        outer.once('error', reject);
        outer.listen({ host, port }, () => {
          outer.off('error', reject);
          resolve();
        });
      });
      return outer.address() as AddressInfo;
    },

    async close(graceMs) {
      closing = true;
      const stopped = new Promise<void>((resolve) => outer.close(() => resolve()));
      outer.closeIdleConnections();
      if (inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (drained = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
        ]);
        clearTimeout(timer);
      }
      for (const socket of sockets) socket.destroy();
      await stopped;
    },
  };
}

function parseAbsoluteUrl(url: string): { destination: Destination; path: string } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:') return undefined;
  const host = normalizeHost(parsed.hostname.replace(/^\[|\]$/g, ''));
  if (host === undefined) return undefined;
  const port = parsed.port === '' ? 80 : Number(parsed.port);
  return { destination: { host, port, scheme: 'http' }, path: `${parsed.pathname}${parsed.search}` };
}

function answerClientError(error: NodeJS.ErrnoException, socket: Duplex, log: Logger): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  log.debug({ err: error.code ?? error.message, status }, 'bad client request');
  writeStatus(socket, status, http.STATUS_CODES[status] ?? 'bad request');
}
