// The mirror listener (issue 23): plain HTTP serving the registry API directly, for nodes that
// name pullthrough as a registry mirror instead of trusting its CA. It names the upstream
// (naming.ts), answers the `/v2/` ping and its refusals itself, and hands every other request,
// rewritten to the upstream's own path, to the same registry handler as proxy mode.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Destination } from '../http/destination.ts';
import { redactUrl, type Logger } from '../log.ts';
import { nameTarget, type NamingRules } from './naming.ts';

export type MirrorHandler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  destination: Destination,
) => Promise<void>;

export interface MirrorServerOptions {
  readonly handler: MirrorHandler;
  readonly naming: NamingRules;
  readonly log: Logger;
  /** Client addresses allowed (proxy.allowClients); undefined: any. */
  readonly allowClient?: (address: string) => boolean;
  /** PEM certificate chain and key: HTTPS instead of plain HTTP. */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly limits: {
    readonly maxHeaderSize: number;
    readonly headersTimeoutMs: number;
    readonly idleTimeoutMs: number;
  };
}

export interface MirrorServer {
  listen(host: string, port: number): Promise<AddressInfo>;
  /** Stop accepting; in-flight requests get `graceMs`, then every connection is cut. */
  close(graceMs: number): Promise<void>;
}

export function createMirrorServer(options: MirrorServerOptions): MirrorServer {
  const { limits } = options;
  const serverOptions: http.ServerOptions = {
    maxHeaderSize: limits.maxHeaderSize,
    headersTimeout: limits.headersTimeoutMs,
    // Blobs may take long; the request deadline would cut them. Idle sockets are still closed.
    requestTimeout: 0,
    keepAliveTimeout: limits.idleTimeoutMs,
  };
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => route(req, res, options);
  const server: http.Server = options.tls
    ? https.createServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, listener)
    : http.createServer(serverOptions, listener);
  return {
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

function route(req: http.IncomingMessage, res: http.ServerResponse, options: MirrorServerOptions): void {
  const { log } = options;
  const client = req.socket.remoteAddress ?? '';
  if (options.allowClient && !options.allowClient(client)) {
    log.info({ client, path: redactUrl(req.url ?? '/') }, 'mirror: client refused');
    sendError(res, 403, 'DENIED', 'client address not allowed (proxy.allowClients)');
    return;
  }
  const target = nameTarget(req.url ?? '/', options.naming);
  switch (target.kind) {
    case 'ping':
      res.writeHead(200, {
        'content-type': 'application/json',
        'docker-distribution-api-version': 'registry/2.0',
      });
      res.end('{}');
      return;
    case 'upstream':
      // How the client named the upstream (?ns=, a prefix, the default): the completion line
      // that follows has only the rewritten path.
      log.debug({ client, url: redactUrl(req.url ?? '/'), as: target.url }, 'mirror request');
      req.url = target.url;
      void options.handler(req, res, target.destination);
      return;
    case 'denied':
      log.info({ client, registry: target.registry }, 'mirror: registry not served');
      sendError(res, 403, 'DENIED', target.message, { registry: target.registry });
      return;
    case 'invalid':
      sendError(res, 400, 'NAME_INVALID', `${target.registry} is not a registry host[:port]`);
      return;
    case 'unnamed':
      sendError(res, 404, 'NAME_UNKNOWN', target.message);
      return;
  }
}

/** The distribution spec's error body; HEAD gets the status alone. */
function sendError(
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  detail?: unknown,
): void {
  const body = JSON.stringify({ errors: [{ code, message, ...(detail === undefined ? {} : { detail }) }] });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'docker-distribution-api-version': 'registry/2.0',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
