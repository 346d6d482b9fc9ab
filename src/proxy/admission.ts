// Who may use the proxy and how much of it: client networks (proxy.allowClients), proxy
// authentication (proxy.htpasswd), and the connection and tunnel limits (header limits are
// the HTTP parser's: server.ts). Each
// refusal is one status for the client and one log line; nothing here knows about registries.
import type http from 'node:http';
import type net from 'node:net';
import type { Logger } from '../log.ts';
import type { NetworkList } from '../net/networks.ts';
import { claimedUser, PROXY_AUTHENTICATE, type ProxyAuth } from './auth.ts';

export interface AdmissionOptions {
  /** Client networks allowed; undefined: any. */
  readonly allowClients?: NetworkList | undefined;
  readonly auth?: ProxyAuth | undefined;
  readonly maxConnections: number;
  readonly maxTunnels: number;
  readonly log: Logger;
}

export interface Refusal {
  readonly status: number;
  readonly message: string;
  readonly headers?: Record<string, string>;
}

export class Admission {
  readonly #options: AdmissionOptions;
  #connections = 0;
  #tunnels = 0;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** A new client TCP connection: counted while open; a refusal when it may not stay. */
  admitConnection(socket: net.Socket): Refusal | undefined {
    const client = socket.remoteAddress ?? '';
    const { allowClients, log } = this.#options;
    if (allowClients && !allowClients.has(client)) {
      log.warn({ client }, 'client refused: not in proxy.allowClients');
      return { status: 403, message: 'this proxy does not serve your network' };
    }
    if (this.#connections >= this.#options.maxConnections) {
      log.warn({ client, limit: this.#options.maxConnections }, 'connection refused: limits.maxConnections');
      return { status: 503, message: 'too many connections' };
    }
    this.#connections += 1;
    socket.once('close', () => (this.#connections -= 1));
    return undefined;
  }

  /** A proxy request (CONNECT or absolute-form): proxy credentials, when required. */
  async admitRequest(req: http.IncomingMessage): Promise<Refusal | undefined> {
    const { auth } = this.#options;
    if (!auth) return undefined;
    const header = req.headers['proxy-authorization'];
    const user = await auth.check(header);
    if (user !== undefined) return undefined;
    const client = req.socket.remoteAddress;
    const target = req.url?.slice(0, 300);
    // No credentials: a client whose proxy setting lacks user:pass (info, the usual first
    // mistake); wrong ones: a warning.
    if (header === undefined) this.#options.log.info({ client, target }, 'proxy authentication required');
    else this.#options.log.warn({ client, user: claimedUser(header), target }, 'proxy authentication failed');
    return {
      status: 407,
      message: 'proxy authentication required',
      headers: { 'Proxy-Authenticate': PROXY_AUTHENTICATE },
    };
  }

  /** A tunnel is about to open: counted until `release` is called; undefined when over the limit. */
  openTunnel(client: string | undefined): (() => void) | undefined {
    if (this.#tunnels >= this.#options.maxTunnels) {
      this.#options.log.warn(
        { client, limit: this.#options.maxTunnels },
        'tunnel refused: limits.maxTunnels',
      );
      return undefined;
    }
    this.#tunnels += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#tunnels -= 1;
    };
  }
}
