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
import { formatAuthority, normalizeHost, parseAuthority, type Destination } from '../http/destination.ts';
import type { DestinationGuard } from '../net/guard.ts';
import type { Admission, Refusal } from './admission.ts';
import { forwardPlain } from './forward.ts';
import { intercept, type CertificateSource } from './intercept.ts';
import type { InterceptList } from './intercept-list.ts';
import { netConnector, openTunnel, type Connector } from './tunnel.ts';
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
  /** Client networks, proxy authentication, connection and tunnel limits. */
  readonly admission: Admission;
  /** Where tunnels and forwarded requests may connect. */
  readonly guard: DestinationGuard;
  /** Ports a CONNECT may tunnel to (intercepted registries' ports are always allowed). */
  readonly connectPorts: ReadonlySet<number>;
  /** Ports a plain-HTTP request may be forwarded to. */
  readonly httpPorts: ReadonlySet<number>;
  /** Opens tunnel and forward connections; tests inject one. */
  readonly connect?: Connector;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs?: number;
  readonly limits: {
    readonly maxHeaderSize: number;
    readonly maxHeaders: number;
    /** Time a client may take to send a request's headers (slowloris guard). */
    readonly headersTimeoutMs: number;
    /** Idle time after which a kept-alive client connection is closed. */
    readonly idleTimeoutMs: number;
    readonly tunnelIdleTimeoutMs: number;
  };
}

export interface ProxyServer {
  listen(host: string, port: number): Promise<AddressInfo>;
  /** Stop accepting; let in-flight requests finish for up to `graceMs`; then cut everything. */
  close(graceMs: number): Promise<void>;
}

export function createProxyServer(options: ProxyServerOptions): ProxyServer {
  const { log, admission, limits } = options;
  const connect = options.connect ?? netConnector;
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
    headersTimeout: limits.headersTimeoutMs,
    // Node checks header deadlines on this interval; keep it well under the deadline itself.
    connectionsCheckingInterval: Math.max(100, Math.min(limits.headersTimeoutMs / 4, 30_000)),
    keepAliveTimeout: limits.idleTimeoutMs,
    maxHeaderSize: limits.maxHeaderSize,
  };
  // Node's parser fails a request with more header lines than this (HPE_HEADER_OVERFLOW → 431).
  const maxHeadersCount = limits.maxHeaders;

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
  inner.maxHeadersCount = maxHeadersCount;
  inner.on('clientError', (error: NodeJS.ErrnoException, socket) => answerClientError(error, socket, log));

  // Connections refused at accept time: answered and ended, but Node's HTTP parser is already
  // attached and would still hand over whatever requests they send. Those are dropped here.
  const refusedSockets = new WeakSet<Duplex>();

  const outer = http.createServer(serverOptions, (req, res) => {
    if (refusedSockets.has(req.socket)) {
      req.socket.destroy();
      return;
    }
    begin(req, res);
    void serveOuter(req, res);
  });

  // Origin-form requests are for the proxy itself (health, CA download): open to every admitted
  // client. Absolute-form requests are proxy requests: credentials and destination rules apply.
  const serveOuter = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '/';
    if (url.startsWith('/')) {
      options.local(req, res);
      return;
    }
    const refusal = await admission.admitRequest(req);
    if (refusal) return refuse(res, refusal);
    const target = parseAbsoluteUrl(url);
    if (target === undefined) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bad request target\n');
      return;
    }
    const { destination } = target;
    if (options.interceptList.matches(destination.host, destination.port)) {
      void options.handler(req, res, destination);
    } else if (!options.httpPorts.has(destination.port)) {
      log.warn({ destination: formatAuthority(destination) }, 'forward refused: port not in proxy.httpPorts');
      refuse(res, { status: 403, message: `port ${destination.port} is not allowed (proxy.httpPorts)` });
    } else {
      void forwardPlain(req, res, destination, target.path, { guard: options.guard, connect, log });
    }
  };

  outer.maxHeadersCount = maxHeadersCount;
  outer.on('connection', (socket: net.Socket) => {
    track(socket);
    const refusal = admission.admitConnection(socket);
    if (refusal) {
      refusedSockets.add(socket);
      socket.on('error', () => socket.destroy());
      writeStatus(socket, refusal.status, refusal.message);
    }
  });
  outer.on('clientError', (error: NodeJS.ErrnoException, socket) => answerClientError(error, socket, log));

  outer.on('connect', (req: http.IncomingMessage, duplex: Duplex, head: Buffer) => {
    // http.Server hands over the raw TCP socket of the CONNECT request.
    const socket = duplex as net.Socket;
    socket.on('error', () => socket.destroy());
    if (refusedSockets.has(socket)) {
      socket.destroy();
      return;
    }
    void dispatchConnect(req, socket, head);
  });

  const dispatchConnect = async (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const refusal = await admission.admitRequest(req);
    if (refusal) {
      writeStatus(socket, refusal.status, refusal.message, refusal.headers);
      return;
    }
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
      return;
    }
    if (!options.connectPorts.has(destination.port)) {
      log.warn(
        { destination: formatAuthority(destination), client: socket.remoteAddress },
        'tunnel refused: port not in proxy.connectPorts',
      );
      writeStatus(socket, 403, `CONNECT to port ${destination.port} is not allowed (proxy.connectPorts)`);
      return;
    }
    const release = admission.openTunnel(socket.remoteAddress);
    if (!release) {
      writeStatus(socket, 503, 'too many tunnels');
      return;
    }
    await openTunnel(socket, head, destination, {
      connectTimeoutMs: options.connectTimeoutMs,
      idleTimeoutMs: limits.tunnelIdleTimeoutMs,
      guard: options.guard,
      connect,
      log,
      track,
      release,
    });
  };

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

function refuse(res: http.ServerResponse, refusal: Refusal): void {
  res.writeHead(refusal.status, {
    'content-type': 'text/plain; charset=utf-8',
    connection: 'close',
    ...refusal.headers,
  });
  res.end(`${refusal.message}\n`);
}

function answerClientError(error: NodeJS.ErrnoException, socket: Duplex, log: Logger): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const client = (socket as net.Socket).remoteAddress;
  // Limits are named in the log (an operator tuning them needs to see them hit); garbage is debug.
  if (status === 431)
    log.warn({ client, status }, 'request refused: limits.maxHeaderSize or limits.maxHeaders');
  else if (status === 408) log.warn({ client, status }, 'request refused: limits.headersTimeout');
  else log.debug({ err: error.code ?? error.message, status }, 'bad client request');
  writeStatus(socket, status, http.STATUS_CODES[status] ?? 'bad request');
}
