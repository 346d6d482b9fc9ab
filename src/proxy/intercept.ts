// Interception of one CONNECT: answer 200, terminate TLS with a leaf for the CONNECT target's
// host, and hand the decrypted HTTP/1.1 connection to the inner HTTP server. The destination is
// remembered per TLS socket so the handler never has to trust the Host header.
import type http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../log.ts';
import { formatAuthority, type Destination } from '../http/destination.ts';
import { writeStatus } from './status.ts';

export interface CertificateSource {
  /** A SecureContext holding a leaf certificate valid for `host`. */
  get(host: string): Promise<tls.SecureContext>;
}

export interface InterceptOptions {
  readonly certificates: CertificateSource;
  readonly inner: http.Server;
  readonly destinations: WeakMap<net.Socket, Destination>;
  readonly handshakeTimeoutMs: number;
  readonly log: Logger;
  readonly track: (socket: net.Socket) => void;
}

export async function intercept(
  client: net.Socket,
  head: Buffer,
  destination: Destination,
  options: InterceptOptions,
): Promise<void> {
  // The client socket is half-open (the HTTP server made it so): once it is wrapped in TLS, the
  // inner HTTP server sees the client's end, but an end before that would go unnoticed until the
  // handshake timeout. A client that has ended its side can never finish a handshake: close.
  let clientEnded = client.readableEnded;
  client.once('end', () => (clientEnded = true));
  let secureContext: tls.SecureContext;
  try {
    secureContext = await options.certificates.get(destination.host);
  } catch (error) {
    options.log.error({ err: error, host: destination.host }, 'leaf certificate issuance failed');
    writeStatus(client, 502, `cannot issue a certificate for ${destination.host}`);
    return;
  }
  if (client.destroyed) return;

  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (clientEnded) {
    client.end();
    return;
  }
  // Bytes the client sent right behind the CONNECT (an eager ClientHello) go back in front.
  if (head.length > 0) client.unshift(head);

  // Only HTTP/1.1 is offered: every container client speaks it to registries, and it keeps one
  // request per connection at a time, which is what the streaming cache wants.
  const socket = new tls.TLSSocket(client, {
    isServer: true,
    secureContext,
    ALPNProtocols: ['http/1.1'],
  });
  options.destinations.set(socket, destination);
  options.track(socket);

  const timer = setTimeout(
    () => socket.destroy(new Error('TLS handshake timeout')),
    options.handshakeTimeoutMs,
  );
  let secured = false;
  socket.once('secure', () => {
    secured = true;
    clearTimeout(timer);
  });
  socket.once('close', () => {
    clearTimeout(timer);
    client.destroy();
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    // Before the handshake completes the HTTP server has no say; one debug line, then close.
    if (!secured) {
      options.log.debug(
        { destination: formatAuthority(destination), err: error.code ?? error.message },
        'tls handshake failed',
      );
    }
    socket.destroy();
  });
  options.inner.emit('connection', socket);
}
