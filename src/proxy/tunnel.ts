// A raw TCP tunnel for a CONNECT that is not intercepted: bytes copied both ways untouched,
// both sides torn down together, one log line when it ends.
import net from 'node:net';
import type { Logger } from '../log.ts';
import { formatAuthority, type Destination } from '../http/destination.ts';
import { writeStatus } from './status.ts';

export interface TunnelOptions {
  readonly connectTimeoutMs: number;
  readonly log: Logger;
  /** Called with the upstream socket so the server can cut it on shutdown. */
  readonly track: (socket: net.Socket) => void;
}

export function openTunnel(
  client: net.Socket,
  head: Buffer,
  destination: Destination,
  options: TunnelOptions,
): void {
  const started = performance.now();
  const upstream = net.connect({ host: destination.host, port: destination.port, autoSelectFamily: true });
  options.track(upstream);
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
    upstream.pipe(client);
    client.pipe(upstream);
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
