// Plain-HTTP forward proxying of an absolute-form request (`GET http://host/path`) to a
// destination that is not intercepted: the destination's addresses checked (net/guard.ts),
// streamed both ways, hop-by-hop headers dropped. One connection per request. With a parent
// proxy (upstream.proxy) the request goes to the parent in absolute form, with its credentials,
// unless NO_PROXY names the destination; the parent resolves names, IP literals are still checked.
import http from 'node:http';
import net from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../log.ts';
import { redactUrl } from '../log.ts';
import { formatAuthority, originOf, type Destination } from '../http/destination.ts';
import { withoutHopByHop } from '../http/headers.ts';
import { DestinationRefusedError, type DestinationGuard } from '../net/guard.ts';
import { isLoopback } from '../net/networks.ts';
import { bypassesParent, type ParentProxy } from '../net/parent-proxy.ts';
import type { Connector } from './tunnel.ts';

export interface ForwardOptions {
  readonly guard: DestinationGuard;
  readonly connect: Connector;
  readonly log: Logger;
  /** Where forwards go instead of the destination (upstream.proxy), if anywhere. */
  readonly parent?: ParentProxy | undefined;
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
    const route = await routeOf(req, destination, path, options);
    if (!route || res.destroyed) return;
    // A one-connection agent that opens exactly the address the guard checked (or the parent).
    const agent = new http.Agent({ keepAlive: false });
    agent.createConnection = route.connect;
    if (route.proxyAuthorization) headers['proxy-authorization'] = route.proxyAuthorization;
    const request = http.request({ method: req.method, path: route.path, headers, agent });
    upstream = request;
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      request.once('response', resolve).once('error', reject);
      req.pipe(request);
    });
    if (route.parent && response.statusCode === 407) {
      // The parent wants other credentials than upstream.proxy has: ours to fix, not the client's.
      response.resume();
      throw new Error('parent proxy answered 407');
    }
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
          : `cannot reach ${formatAuthority(destination)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`,
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

/** Where the forwarded request's connection goes, and the request target to send there. */
interface ForwardRoute {
  readonly connect: () => net.Socket;
  readonly parent: boolean;
  readonly path: string;
  readonly proxyAuthorization?: string | undefined;
}

async function routeOf(
  req: http.IncomingMessage,
  destination: Destination,
  path: string,
  options: ForwardOptions,
): Promise<ForwardRoute | undefined> {
  const { parent } = options;
  const viaParent = parent !== undefined && !bypassesParent(parent, destination.host, destination.port);
  // Through a parent the parent resolves names; an IP literal is still checked here.
  if (viaParent && net.isIP(destination.host) === 0) return throughParent(parent, destination, path);
  const [address] = await options.guard.addresses(destination.host, {
    allowLoopback: isLoopback(req.socket.remoteAddress ?? ''),
  });
  if (!address) return undefined;
  if (viaParent) return throughParent(parent, destination, path);
  return {
    connect: () => options.connect({ host: address.address, port: destination.port, family: address.family }),
    parent: false,
    path,
  };
}

/** An HTTP proxy takes the absolute form (RFC 9112 §3.2.2) and our Proxy-Authorization. */
function throughParent(parent: ParentProxy, destination: Destination, path: string): ForwardRoute {
  return {
    connect: () => net.connect({ host: parent.host, port: parent.port }),
    parent: true,
    path: `${originOf(destination)}${path}`,
    proxyAuthorization: parent.authorization,
  };
}
