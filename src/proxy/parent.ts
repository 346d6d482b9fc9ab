// Tunnels through a parent proxy: a Connector whose socket goes to the parent, asks it to
// CONNECT to the destination, and only then says 'connect', so the tunnel starts relaying
// exactly when bytes can reach the destination. Destinations under NO_PROXY go directly.
import net from 'node:net';
import { bypassesParent, handshake, type ParentProxy } from '../net/parent-proxy.ts';
import type { Connector } from './tunnel.ts';

/** A socket to the parent that holds back its 'connect' until the parent has opened the tunnel. */
class ThroughParent extends net.Socket {
  #open = false;
  readonly #parent: ParentProxy;
  readonly #destination: { host: string; port: number };

  constructor(parent: ParentProxy, destination: { host: string; port: number }) {
    super();
    this.#parent = parent;
    this.#destination = destination;
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'connect' || this.#open) return super.emit(event, ...args);
    // TCP to the parent is up: now the CONNECT. Its failure is this socket's error.
    handshake(this, this.#parent, this.#destination.host, this.#destination.port).then(
      () => {
        this.#open = true;
        super.emit('connect');
        this.resume();
      },
      (error: unknown) => this.destroy(error instanceof Error ? error : new Error(String(error))),
    );
    return true;
  }
}

export function parentTunnelConnector(parent: ParentProxy, direct: Connector): Connector {
  const connector: Connector = (options) => {
    // NO_PROXY names the destination as the client did; `host` may be an address resolved from it.
    if (bypassesParent(parent, options.name ?? options.host, options.port)) return direct(options);
    // No `onread`: the tunnel's relay takes 'data' events from this socket instead.
    const socket = new ThroughParent(parent, { host: options.host, port: options.port });
    return socket.connect({ host: parent.host, port: parent.port });
  };
  // The parent resolves names: the guard checks only IP literals, and NO_PROXY names are resolved here.
  connector.reachesByName = (host, port) => !bypassesParent(parent, host, port);
  return connector;
}
