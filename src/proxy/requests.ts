// Plain-HTTP requests to the proxy's listener. Origin-form ones (`GET /healthz`) are for the
// proxy itself: the local handler. Absolute-form ones (`GET http://host/path`, or
// `GET https://host/path` sent in plain HTTP) are proxy requests: admitted, then given to the
// handler in origin form when the destination is intercepted (so they go through the cache, as
// a CONNECT would), else forwarded (forward.ts; plain http only).
import type http from 'node:http';
import type { Logger } from '../log.ts';
import { formatAuthority, normalizeHost, type Destination } from '../http/destination.ts';
import type { Admission, Refusal } from './admission.ts';
import { forwardPlain, type ForwardOptions } from './forward.ts';
import type { InterceptList } from './intercept-list.ts';

export type InterceptHandler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  destination: Destination,
) => Promise<void>;

export type LocalHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface RequestRouting {
  readonly admission: Admission;
  readonly interceptList: InterceptList;
  readonly handler: InterceptHandler;
  readonly local: LocalHandler;
  /** Ports a plain-HTTP request may be forwarded to. */
  readonly httpPorts: ReadonlySet<number>;
  readonly log: Logger;
  readonly forward: ForwardOptions;
}

// Origin-form requests are for the proxy itself (health, CA download): open to every admitted
// client. Absolute-form requests are proxy requests: credentials and destination rules apply.
export async function routeRequest(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  options: RequestRouting,
): Promise<void> {
  const url = req.url ?? '/';
  if (url.startsWith('/')) {
    options.local(req, res);
    return;
  }
  const refusal = await options.admission.admitRequest(req);
  if (refusal) return refuse(res, refusal);
  const target = parseAbsoluteUrl(url);
  if (target === undefined) {
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bad request target\n');
    return;
  }
  const { destination } = target;
  if (options.interceptList.matches(destination.host, destination.port)) {
    // The handler reads routes from origin-form targets, as requests through a CONNECT have them.
    req.url = target.path;
    void options.handler(req, res, destination);
  } else if (destination.scheme === 'https') {
    refuse(res, { status: 400, message: `${formatAuthority(destination)} is not intercepted: use CONNECT` });
  } else if (!options.httpPorts.has(destination.port)) {
    options.log.warn(
      { destination: formatAuthority(destination) },
      'forward refused: port not in proxy.httpPorts',
    );
    refuse(res, { status: 403, message: `port ${destination.port} is not allowed (proxy.httpPorts)` });
  } else {
    void forwardPlain(req, res, destination, target.path, options.forward);
  }
}

function parseAbsoluteUrl(url: string): { destination: Destination; path: string } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const scheme = parsed.protocol === 'http:' ? 'http' : parsed.protocol === 'https:' ? 'https' : undefined;
  if (scheme === undefined) return undefined;
  const host = normalizeHost(parsed.hostname.replace(/^\[|\]$/g, ''));
  if (host === undefined) return undefined;
  const port = parsed.port === '' ? (scheme === 'https' ? 443 : 80) : Number(parsed.port);
  return { destination: { host, port, scheme }, path: `${parsed.pathname}${parsed.search}` };
}

function refuse(res: http.ServerResponse, refusal: Refusal): void {
  res.writeHead(refusal.status, {
    'content-type': 'text/plain; charset=utf-8',
    connection: 'close',
    ...refusal.headers,
  });
  res.end(`${refusal.message}\n`);
}
