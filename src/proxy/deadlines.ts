// Client deadlines that an http.Server does not apply by itself: the header deadline on a server
// that is handed its sockets instead of listening, and the idle time before a connection's first
// request. Node applies headersTimeout and the idle time between kept-alive requests; not these.
import type http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * Makes `server` enforce `headersTimeout` (and track its connections for closeIdleConnections)
 * without listening. Node starts both on the server's 'listening' event (setupConnectionsTracking
 * in lib/_http_server.js) and hands each parser the connection list at 'connection' time, so an
 * http.Server fed with intercepted TLS sockets would never time out a client dripping its headers.
 * Emitting 'listening' runs exactly Node's set-up; test/integration/intercept-timeouts.test.ts
 * fails if a Node release stops honouring it. Call before the first socket is handed over.
 */
export function enforceHeaderDeadlines(server: http.Server): void {
  server.emit('listening');
}

/**
 * Stops the header-deadline checker of enforceHeaderDeadlines and closes the connections idle
 * between requests, as http.Server.close does for a listening server.
 */
export function stopHeaderDeadlines(server: http.Server): void {
  // The net.Server part of close() then reports "not running" to the callback: nothing to stop.
  server.close(() => {});
}

/**
 * Closes `socket` if no request starts within `idleMs`. Node arms its idle timer (keepAliveTimeout)
 * only after a response; before the first request a client could hold a connection, and a slot of
 * limits.maxConnections, for ever by saying nothing. firstRequest() disarms it.
 */
export class FirstRequestDeadline {
  readonly #armed = new WeakSet<Duplex>();
  readonly #idleMs: number;

  constructor(idleMs: number) {
    this.#idleMs = idleMs;
  }

  /** Arms the deadline: the server's own 'timeout' handling destroys a socket nobody claims. */
  arm(socket: net.Socket | Duplex): void {
    if (this.#idleMs <= 0) return;
    (socket as net.Socket).setTimeout(this.#idleMs);
    this.#armed.add(socket);
  }

  /** A request (or CONNECT) arrived on `socket`: from now on, Node's own timers apply. */
  firstRequest(socket: net.Socket | Duplex): void {
    if (this.#armed.delete(socket)) (socket as net.Socket).setTimeout(0);
  }
}
