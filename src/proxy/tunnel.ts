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
export type Connector = (options: {
  host: string;
  port: number;
  family: 4 | 6;
  onread?: net.OnReadOpts;
}) => net.Socket;

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
}

export async function openTunnel(
  client: net.Socket,
  head: Buffer,
  destination: Destination,
  options: TunnelOptions,
): Promise<void> {
  const started = performance.now();
  let address: { address: string; family: 4 | 6 };
  try {
    const addresses = await options.guard.addresses(destination.host, {
      allowLoopback: isLoopback(client.remoteAddress ?? ''),
    });
    address = addresses[0] ?? { address: destination.host, family: 4 };
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
    return;
  }
  if (client.destroyed) {
    options.release();
    return;
  }
  // Downloads are the heavy direction: upstream's reads go to the client through reused buffers.
  const down = new Relay(client);
  const upstream = options.connect({
    host: address.address,
    port: destination.port,
    family: address.family,
    onread: down.onread,
  });
  options.track(upstream);
  upstream.once('close', options.release);
  upstream.setNoDelay(true);
  client.setNoDelay(true);

  let established = false;
  const connectTimer = setTimeout(
    () => upstream.destroy(new Error('connect timeout')),
    options.connectTimeoutMs,
  );

  upstream.once('connect', () => {
    clearTimeout(connectTimer);
    established = true;
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    down.from(upstream);
    client.pipe(upstream);
    // The upstream socket sees both directions (it writes what the client sends): idle means both.
    upstream.setTimeout(options.idleTimeoutMs, () => upstream.destroy());
  });

  upstream.on('error', (error: NodeJS.ErrnoException) => {
    clearTimeout(connectTimer);
    if (!established && client.writable) {
      writeStatus(
        client,
        502,
        `cannot reach ${formatAuthority(destination)}: ${error.code ?? error.message}`,
      );
    } else {
      client.destroy();
    }
  });
  client.on('error', () => upstream.destroy());

  // When one side closes, let the other flush what it still holds, then close it too.
  const closeAfterFlush = (socket: net.Socket) => {
    if (socket.destroyed) return;
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy()).end();
  };
  upstream.once('close', (hadError: boolean) => (hadError ? client.destroy() : closeAfterFlush(client)));
  client.once('close', (hadError: boolean) => (hadError ? upstream.destroy() : closeAfterFlush(upstream)));

  let logged = false;
  const done = () => {
    if (logged || !client.destroyed || !upstream.destroyed) return;
    logged = true;
    options.log.info(
      {
        destination: formatAuthority(destination),
        established,
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
