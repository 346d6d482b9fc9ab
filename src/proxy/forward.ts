// Plain-HTTP forward proxying of an absolute-form request (`GET http://host/path`) to a
// destination that is not intercepted: the destination's addresses checked (net/guard.ts),
// streamed both ways, hop-by-hop headers dropped. One connection per request.
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../log.ts';
import { redactUrl } from '../log.ts';
import { formatAuthority, type Destination } from '../http/destination.ts';
import { withoutHopByHop } from '../http/headers.ts';
import { DestinationRefusedError, type DestinationGuard } from '../net/guard.ts';
import { isLoopback } from '../net/networks.ts';
import type { Connector } from './tunnel.ts';

export interface ForwardOptions {
  readonly guard: DestinationGuard;
  readonly connect: Connector;
  readonly log: Logger;
}

export async function forwardPlain(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  destination: Destination,
  path: string,
  options: ForwardOptions,
): Promise<void> {
  const { log } = options;
  const started = performance.now();
  const headers = withoutHopByHop(req.headers);
  headers['host'] = req.headers.host ?? formatAuthority(destination);
  let upstream: http.ClientRequest | undefined;
  res.once('close', () => {
    if (!res.writableFinished) upstream?.destroy();
  });
  try {
    const [address] = await options.guard.addresses(destination.host, {
      allowLoopback: isLoopback(req.socket.remoteAddress ?? ''),
    });
    if (!address || res.destroyed) return;
    // A one-connection agent that opens exactly the address the guard checked.
    const agent = new http.Agent({ keepAlive: false });
    agent.createConnection = () =>
      options.connect({ host: address.address, port: destination.port, family: address.family });
    const request = http.request({ method: req.method, path, headers, agent });
    upstream = request;
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      request.once('response', resolve).once('error', reject);
      req.pipe(request);
    });
    res.writeHead(response.statusCode ?? 502, withoutHopByHop(response.headers));
    await pipeline(response, res);
  } catch (error) {
    if (!res.headersSent) {
      const refused = error instanceof DestinationRefusedError;
      res.writeHead(refused ? 403 : 502, {
        'content-type': 'text/plain; charset=utf-8',
        connection: 'close',
      });
      res.end(
        refused
          ? `${formatAuthority(destination)} may not be reached through this proxy: ${error.reason}\n`
          : `cannot reach ${formatAuthority(destination)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}\n`,
      );
    } else {
      res.destroy();
    }
  } finally {
    log.info(
      {
        destination: formatAuthority(destination),
        method: req.method,
        path: redactUrl(path),
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
      },
      'forward',
    );
  }
}
