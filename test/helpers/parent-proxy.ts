// A small parent proxy on loopback port 0, standing in for a corporate proxy: it records every
// CONNECT it is asked for (target and Proxy-Authorization) and every plain-HTTP request in
// absolute form (`forwards`), answers 407 when it requires credentials that were not sent,
// resolves names through a map of its own (the child proxy need not resolve them), and pipes
// bytes both ways.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { onTestFinished } from 'vitest';

export interface ParentConnect {
  readonly target: string;
  readonly proxyAuthorization: string | undefined;
}

export interface TestParentProxy {
  readonly port: number;
  /** `http://127.0.0.1:<port>`, with `user:pass@` when credentials are required. */
  readonly url: string;
  readonly connects: ParentConnect[];
  /** Plain-HTTP requests it forwarded (or refused): `target` is the absolute-form URL. */
  readonly forwards: ParentConnect[];
  close(): Promise<void>;
}

export async function startParentProxy(
  options: { credentials?: { user: string; password: string }; names?: Record<string, string> } = {},
): Promise<TestParentProxy> {
  const connects: ParentConnect[] = [];
  const sockets = new Set<Duplex>();
  const expected = options.credentials
    ? `Basic ${Buffer.from(`${options.credentials.user}:${options.credentials.password}`).toString('base64')}`
    : undefined;
  const forwards: ParentConnect[] = [];
  const server = http.createServer((req, res) => {
    const target = req.url ?? '';
    const proxyAuthorization = req.headers['proxy-authorization'];
    forwards.push({ target, proxyAuthorization });
    if (expected !== undefined && proxyAuthorization !== expected) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="parent"' }).end();
      return;
    }
    const url = URL.parse(target);
    if (url === null) return res.writeHead(400).end();
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const upstream = http.request(
      {
        host: options.names?.[host] ?? host,
        port: url.port || 80,
        method: req.method,
        path: `${url.pathname}${url.search}`,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const target = req.url ?? '';
    const proxyAuthorization = req.headers['proxy-authorization'];
    connects.push({ target, proxyAuthorization });
    if (expected !== undefined && proxyAuthorization !== expected) {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="parent"\r\n\r\n',
      );
      return;
    }
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
    const host = match?.[1] ?? '';
    const upstream = net.connect({ host: options.names?.[host] ?? host, port: Number(match?.[2]) });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const auth = options.credentials
    ? `${encodeURIComponent(options.credentials.user)}:${encodeURIComponent(options.credentials.password)}@`
    : '';
  const close = async () => {
    for (const socket of sockets) socket.destroy();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  onTestFinished(close);
  return { port, url: `http://${auth}127.0.0.1:${port}`, connects, forwards, close };
}
