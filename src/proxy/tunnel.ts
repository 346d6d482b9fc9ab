// A raw TCP tunnel for a CONNECT that is not intercepted: the destination's addresses checked
// (net/guard.ts), bytes copied both ways untouched, both sides torn down together (or when
// idle too long), one log line when it ends.
import net from 'node:net';
import type { Logger } from '../log.ts';
import { formatAuthority, type Destination } from '../http/destination.ts';
import { DestinationRefusedError, type DestinationGuard } from '../net/guard.ts';
import { isLoopback } from '../net/networks.ts';
import { Relay } from './relay.ts';
import { writeStatus } from './status.ts';

/**
 * Opens a TCP connection to an address the guard allowed. Tests inject one. `onread`, when given,
 * is for `net.connect` (reads into the caller's buffers); one that drops it still works, slower.
 */
export type Connector = ((options: {
  host: string;
  port: number;
  family: 4 | 6;
  onread?: net.OnReadOpts;
  /** The destination as the client named it, when `host` is an address resolved from it. */
  name?: string;
}) => net.Socket) & {
  /** True when this connector reaches `host` by name itself (a parent proxy resolves it). */
  reachesByName?: (host: string, port: number) => boolean;
};

export const netConnector: Connector = ({ host, port, onread }) => net.connect({ host, port, onread });

export interface TunnelOptions {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly guard: DestinationGuard;
  readonly connect: Connector;
  readonly log: Logger;
  /** Called with the upstream socket so the server can cut it on shutdown. */
  readonly track: (socket: net.Socket) => void;
  /** Called once when the tunnel is over (or never opened). */
  readonly release: () => void;
  /** Told when a tunnel is established and when it closes (metrics). */
  readonly observe?: TunnelObserver;
}

export interface TunnelObserver {
  /** The upstream connection is made: bytes flow. */
  opened(): void;
  /** An opened tunnel's both sides are closed; what it carried each way. */
  closed(bytes: { readonly up: number; readonly down: number }): void;
}

/** Where a tunnel is at: both sockets, and whether the upstream connection was ever made. */
interface Tunnel {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly destination: Destination;
  /** Copies upstream's reads to the client. */
  readonly down: Relay;
  established: boolean;
}

type Address = { address: string; family: 4 | 6 };

export async function openTunnel(
  client: net.Socket,
  head: Buffer,
  destination: Destination,
  options: TunnelOptions,
): Promise<void> {
  const started = performance.now();
  const address = await resolveAllowed(client, destination, options);
  if (address === undefined) return;
  if (client.destroyed) {
    options.release();
    return;
  }
  const tunnel = connectWithTimeout(client, destination, address, options, (connected) => {
    options.observe?.opened();
    relay(connected, head, options.idleTimeoutMs);
  });
  tearDownTogether(client, tunnel.upstream);
  logWhenClosed(tunnel, started, options);
}

/**
 * The address to connect to, if the guard allows the destination; otherwise the client is
 * answered (403 refused, 502 unresolvable), the tunnel released, and undefined returned.
 */
async function resolveAllowed(
  client: net.Socket,
  destination: Destination,
  options: TunnelOptions,
): Promise<Address | undefined> {
  // Through a parent proxy the parent resolves names; an IP literal is still checked here.
  if (
    net.isIP(destination.host) === 0 &&
    options.connect.reachesByName?.(destination.host, destination.port)
  ) {
    return { address: destination.host, family: 4 };
  }
  try {
    const addresses = await options.guard.addresses(destination.host, {
      allowLoopback: isLoopback(client.remoteAddress ?? ''),
    });
    return addresses[0] ?? { address: destination.host, family: 4 };
  } catch (error) {
    options.release();
    const refused = error instanceof DestinationRefusedError;
    if (refused) {
      options.log.warn(
        { destination: formatAuthority(destination), client: client.remoteAddress, reason: error.reason },
        'tunnel refused',
      );
    }
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    writeStatus(
      client,
      refused ? 403 : 502,
      refused
        ? `${formatAuthority(destination)} may not be reached through this proxy: ${error.reason}`
        : `cannot reach ${formatAuthority(destination)}: ${code}`,
    );
    return undefined;
  }
}

/**
 * Opens the upstream connection (tracked, releasing the tunnel when it closes) and calls
 * `onConnect` once it is made. Not made within connectTimeoutMs, or failed: the client gets a
 * 502. An upstream error after that can only cut the client.
 */
function connectWithTimeout(
  client: net.Socket,
  destination: Destination,
  address: Address,
  options: TunnelOptions,
  onConnect: (tunnel: Tunnel) => void,
): Tunnel {
  // Downloads are the heavy direction: upstream's reads go to the client through reused buffers.
  const down = new Relay(client);
  const upstream = options.connect({
    host: address.address,
    port: destination.port,
    family: address.family,
    onread: down.onread,
    name: destination.host,
  });
  options.track(upstream);
  upstream.once('close', options.release);
  upstream.setNoDelay(true);
  client.setNoDelay(true);

  const tunnel: Tunnel = { client, upstream, destination, down, established: false };
  const connectTimer = setTimeout(
    () => upstream.destroy(new Error('connect timeout')),
    options.connectTimeoutMs,
  );
  upstream.once('connect', () => {
    clearTimeout(connectTimer);
    tunnel.established = true;
    onConnect(tunnel);
  });
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    clearTimeout(connectTimer);
    if (!tunnel.established && client.writable) {
      writeStatus(
        client,
        502,
        `cannot reach ${formatAuthority(destination)}: ${error.code ?? error.message}`,
      );
    } else {
      client.destroy();
    }
  });
  return tunnel;
}

/** Once connected: the 200, the bytes the client sent behind its CONNECT, then both directions. */
function relay({ client, upstream, down }: Tunnel, head: Buffer, idleTimeoutMs: number): void {
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) upstream.write(head);
  down.from(upstream);
  client.pipe(upstream);
  // The upstream socket sees both directions (it writes what the client sends): idle means both.
  upstream.setTimeout(idleTimeoutMs, () => upstream.destroy());
}

/** Neither side outlives the other: an error cuts both, a close lets the other flush, then closes it. */
function tearDownTogether(client: net.Socket, upstream: net.Socket): void {
  client.on('error', () => upstream.destroy());
  upstream.once('close', (hadError: boolean) => (hadError ? client.destroy() : closeAfterFlush(client)));
  client.once('close', (hadError: boolean) => (hadError ? upstream.destroy() : closeAfterFlush(upstream)));
}

function closeAfterFlush(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.writableFinished) socket.destroy();
  else socket.once('finish', () => socket.destroy()).end();
}

/** The tunnel's one log line (and its observer's `closed`), once both sockets are closed. */
function logWhenClosed(tunnel: Tunnel, started: number, { log, observe }: TunnelOptions): void {
  const { client, upstream } = tunnel;
  let logged = false;
  const done = () => {
    if (logged || !client.destroyed || !upstream.destroyed) return;
    logged = true;
    if (tunnel.established) observe?.closed({ up: upstream.bytesWritten, down: upstream.bytesRead });
    log.info(
      {
        destination: formatAuthority(tunnel.destination),
        established: tunnel.established,
        bytesUp: upstream.bytesWritten,
        bytesDown: upstream.bytesRead,
        ms: Math.round(performance.now() - started),
      },
      'tunnel',
    );
  };
  upstream.on('close', done);
  client.on('close', done);
}
