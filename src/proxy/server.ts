// The proxy's listening server and its life: it creates the two http.Servers and exposes
// listen/close. It moves bytes and knows nothing about registries: CONNECTs go to connect.ts,
// plain-HTTP requests to requests.ts, intercepted connections' requests to the handler.
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.ts';
import type { Destination } from '../http/destination.ts';
import type { DestinationGuard } from '../net/guard.ts';
import type { ParentProxy } from '../net/parent-proxy.ts';
import type { Admission } from './admission.ts';
import { dispatchConnect, type ConnectDispatch } from './connect.ts';
import { Connections } from './connections.ts';
import { enforceHeaderDeadlines, FirstRequestDeadline, stopHeaderDeadlines } from './deadlines.ts';
import type { CertificateSource } from './intercept.ts';
import type { InterceptList } from './intercept-list.ts';
import { routeRequest, type InterceptHandler, type LocalHandler, type RequestRouting } from './requests.ts';
import { netConnector, type Connector, type TunnelObserver } from './tunnel.ts';
import { writeStatus } from './status.ts';

export type { InterceptHandler, LocalHandler } from './requests.ts';

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
  /** Opens tunnel connections when they go another way than forwards (a parent proxy). */
  readonly tunnelConnect?: Connector;
  /** Where plain-HTTP forwards go instead of their destination (upstream.proxy). */
  readonly parent?: ParentProxy;
  readonly connectTimeoutMs: number;
  /** Told when tunnels open and close (metrics). */
  readonly tunnels?: TunnelObserver;
  readonly limits: {
    readonly maxHeaderSize: number;
    readonly maxHeaders: number;
    /** Time a client may take to send a request's headers (slowloris guard). */
    readonly headersTimeoutMs: number;
    /** Time a client may take to finish the TLS handshake of an intercepted CONNECT. */
    readonly handshakeTimeoutMs: number;
    /** Idle time after which a client connection with no request in progress is closed. */
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
  const { log, limits } = options;
  const connect = options.connect ?? netConnector;
  const connections = new Connections();
  const serverOptions = httpServerOptions(limits);
  const firstRequest = new FirstRequestDeadline(limits.idleTimeoutMs);

  // Decrypted requests of intercepted connections arrive here; it never listens itself, so its
  // header deadline is switched on by hand.
  const destinations = new WeakMap<net.Socket, Destination>();
  const inner = createHttpServer(serverOptions, options, (req, res) => {
    firstRequest.firstRequest(req.socket);
    connections.begin(req, res);
    const destination = destinations.get(req.socket);
    if (destination === undefined) {
      res.destroy();
      return;
    }
    void options.handler(req, res, destination);
  });
  enforceHeaderDeadlines(inner);
  inner.on('connection', (socket: Duplex) => firstRequest.arm(socket));

  const routing: RequestRouting = {
    admission: options.admission,
    interceptList: options.interceptList,
    handler: options.handler,
    local: options.local,
    httpPorts: options.httpPorts,
    log,
    forward: { guard: options.guard, connect, log, parent: options.parent },
  };
  const dispatch = connectDispatch(options, connect, connections, inner, destinations);
  const outer = createOuterServer(serverOptions, options, { connections, firstRequest, routing, dispatch });

  return {
    listen: (host, port) => listen(outer, host, port),
    async close(graceMs) {
      connections.beginClosing();
      const stopped = new Promise<void>((resolve) => outer.close(() => resolve()));
      outer.closeIdleConnections();
      stopHeaderDeadlines(inner);
      await connections.drain(graceMs);
      await stopped;
    },
  };
}

/** What a CONNECT needs: the rules, and the means to intercept it or tunnel it. */
function connectDispatch(
  options: ProxyServerOptions,
  connect: Connector,
  connections: Connections,
  inner: http.Server,
  destinations: WeakMap<net.Socket, Destination>,
): ConnectDispatch {
  const { log } = options;
  return {
    admission: options.admission,
    interceptList: options.interceptList,
    connectPorts: options.connectPorts,
    log,
    closing: () => connections.closing,
    intercept: {
      certificates: options.certificates,
      inner,
      destinations,
      handshakeTimeoutMs: options.limits.handshakeTimeoutMs,
      log,
      track: connections.track,
    },
    tunnel: {
      connectTimeoutMs: options.connectTimeoutMs,
      idleTimeoutMs: options.limits.tunnelIdleTimeoutMs,
      guard: options.guard,
      connect: options.tunnelConnect ?? connect,
      log,
      track: connections.track,
      ...(options.tunnels ? { observe: options.tunnels } : {}),
    },
  };
}

function httpServerOptions(limits: ProxyServerOptions['limits']): http.ServerOptions {
  return {
    // A blob upload or download may take as long as it takes: no whole-request deadline.
    requestTimeout: 0,
    headersTimeout: limits.headersTimeoutMs,
    // Node checks header deadlines on this interval; keep it well under the deadline itself.
    connectionsCheckingInterval: Math.max(100, Math.min(limits.headersTimeoutMs / 4, 30_000)),
    keepAliveTimeout: limits.idleTimeoutMs,
    maxHeaderSize: limits.maxHeaderSize,
  };
}

/** An http.Server with the proxy's header limits, answering what its parser rejects. */
function createHttpServer(
  serverOptions: http.ServerOptions,
  options: ProxyServerOptions,
  onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): http.Server {
  const server = http.createServer(serverOptions, onRequest);
  // Node's parser fails a request with more header lines than this (HPE_HEADER_OVERFLOW → 431).
  server.maxHeadersCount = options.limits.maxHeaders;
  server.on('clientError', (error: NodeJS.ErrnoException, socket) =>
    answerClientError(error, socket, options.log),
  );
  return server;
}

/** The listening server: admission at accept time, then plain requests and CONNECTs. */
function createOuterServer(
  serverOptions: http.ServerOptions,
  options: ProxyServerOptions,
  parts: {
    connections: Connections;
    firstRequest: FirstRequestDeadline;
    routing: RequestRouting;
    dispatch: ConnectDispatch;
  },
): http.Server {
  const { connections, firstRequest, routing, dispatch } = parts;
  // Connections refused at accept time: answered and ended, but Node's HTTP parser is already
  // attached and would still hand over whatever requests they send. Those are dropped here.
  const refusedSockets = new WeakSet<Duplex>();

  const outer = createHttpServer(serverOptions, options, (req, res) => {
    if (refusedSockets.has(req.socket)) {
      req.socket.destroy();
      return;
    }
    firstRequest.firstRequest(req.socket);
    connections.begin(req, res);
    void routeRequest(req, res, routing);
  });
  outer.on('connection', (socket: net.Socket) => {
    connections.track(socket);
    firstRequest.arm(socket);
    const refusal = options.admission.admitConnection(socket);
    if (refusal) {
      refusedSockets.add(socket);
      socket.on('error', () => socket.destroy());
      writeStatus(socket, refusal.status, refusal.message);
    }
  });
  outer.on('connect', (req: http.IncomingMessage, duplex: Duplex, head: Buffer) => {
    // http.Server hands over the raw TCP socket of the CONNECT request.
    const socket = duplex as net.Socket;
    firstRequest.firstRequest(socket);
    socket.on('error', () => socket.destroy());
    if (refusedSockets.has(socket)) {
      socket.destroy();
      return;
    }
    void dispatchConnect(req, socket, head, dispatch);
  });
  return outer;
}

async function listen(server: http.Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
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
