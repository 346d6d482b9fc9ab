// HTTPS through a CONNECT proxy from Node, for the scenarios that count requests rather than
// bytes (curl would start a process per request): CONNECT, then TLS over the tunnel to
// whatever answers, trusting the CA given (pullthrough's for an intercepted host), then
// HTTP/1.1 requests on that socket. Runs in the harness's process, never in the proxy's.
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/** How long each step of `tunnelTls` took, ms from its start. */
export interface TunnelTimings {
  /** The proxy's 200 to CONNECT arrived. */
  connected: number;
  /** The TLS handshake through the tunnel is done (the leaf verified). */
  secure: number;
}

/** A TLS socket to `authority` (host:port) through the proxy at `proxyUrl` (`http://host:port`). */
export async function tunnelTls(
  proxyUrl: string,
  authority: string,
  ca: string,
  timings?: TunnelTimings,
): Promise<tls.TLSSocket> {
  const started = performance.now();
  const proxy = new URL(proxyUrl);
  const req = http.request({
    host: proxy.hostname,
    port: proxy.port,
    method: 'CONNECT',
    path: authority,
    headers: { host: authority },
    agent: false,
  });
  req.end();
  const [res, socket] = (await once(req, 'connect')) as [http.IncomingMessage, net.Socket, Buffer];
  if (res.statusCode !== 200) {
    socket.destroy();
    throw new Error(`CONNECT ${authority} answered ${String(res.statusCode)}`);
  }
  if (timings) timings.connected = performance.now() - started;
  const host = authority.slice(0, authority.lastIndexOf(':'));
  const secure = tls.connect({ socket, ca, host, ...(net.isIP(host) ? {} : { servername: host }) });
  try {
    await once(secure, 'secureConnect');
  } catch (error) {
    secure.destroy();
    throw error;
  }
  if (timings) timings.secure = performance.now() - started;
  return secure;
}

/**
 * An http.Agent whose sockets are `tunnelTls` sockets: with `keepAlive` and `maxSockets: n`, n
 * kept-alive TLS connections through the proxy. Use it with `http.request` (TLS is inside).
 */
export class TunnelAgent extends http.Agent {
  readonly #proxyUrl: string;
  readonly #ca: string;

  constructor(proxyUrl: string, ca: string, options: http.AgentOptions) {
    super(options);
    this.#proxyUrl = proxyUrl;
    this.#ca = ca;
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const authority = `${String(options.host)}:${String(options.port)}`;
    tunnelTls(this.#proxyUrl, authority, this.#ca).then(
      (socket) => callback?.(null, socket),
      // The agent reads no stream when given an error.
      (error: unknown) => callback?.(error as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One request on `socket` (a fresh connection: first-request.ts), its body read whole. */
export async function requestOn(
  socket: Duplex,
  authority: string,
  path: string,
  method = 'GET',
): Promise<Answer> {
  const req = http.request({ createConnection: () => socket, path, method, headers: { host: authority } });
  req.end();
  return readAnswer(req);
}

export async function readAnswer(req: http.ClientRequest): Promise<Answer> {
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}
