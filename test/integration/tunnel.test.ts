// Destinations that are not intercepted: CONNECT tunnels byte for byte (the client sees the
// origin's own certificate) and plain-HTTP absolute-form requests forwarded.
import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { ProxyAgent, request } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import { upstreamPki } from '../helpers/pki.ts';
import { rawConnection, readHead, startProxy } from '../helpers/proxy.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

describe('tunnel', () => {
  it('tunnels a non-intercepted TLS destination untouched: the client sees the origin certificate', async () => {
    const origin = await startFakeRegistry();
    // Intercept the same host on another port only: interception is by host *and* port.
    const proxy = await startProxy({
      registries: [`${origin.host}:1`],
      proxy: { connectPorts: [origin.port] },
    });
    const pki = await upstreamPki();

    const socket = await rawConnection(proxy.port, `CONNECT ${origin.authority} HTTP/1.1\r\n\r\n`);
    const { head } = await readHead(socket);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const secure = tls.connect({
      socket,
      ca: pki.ca.certPem,
      servername: 'localhost',
      checkServerIdentity: () => undefined,
    });
    await once(secure, 'secureConnect');
    expect(secure.authorized).toBe(true);
    const peer = new X509Certificate(secure.getPeerX509Certificate()?.raw ?? Buffer.alloc(0));
    expect(peer.checkIssued(new X509Certificate(pki.ca.certPem))).toBe(true);
    expect(peer.checkIssued(new X509Certificate(proxy.app.ca.certPem))).toBe(false);
    secure.end('GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let response = '';
    for await (const chunk of secure) response += (chunk as Buffer).toString();
    expect(response).toMatch(/^HTTP\/1\.1 200 /);

    const line = await proxy.waitForLog((l) => l.msg === 'tunnel');
    expect(line).toMatchObject({ destination: origin.authority, established: true });
    expect(line['bytesUp']).toBeGreaterThan(100);
    expect(line['bytesDown']).toBeGreaterThan(response.length);
    expect(origin.requests).toHaveLength(1);
  });

  it('a client trusting only the origin CA works through the tunnel (undici ProxyAgent)', async () => {
    const origin = await startFakeRegistry();
    const proxy = await startProxy({ registries: [], proxy: { connectPorts: [origin.port] } });
    const pki = await upstreamPki();
    const agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [pki.ca.certPem] } });
    onTestFinished(() => agent.close());
    const res = await request(`https://${origin.authority}/v2/`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it('answers 502 with a short reason when the destination cannot be reached', async () => {
    const origin = await startFakeRegistry();
    const authority = origin.authority;
    await origin.close();
    const proxy = await startProxy({ proxy: { connectPorts: [origin.port] } });
    const socket = await rawConnection(proxy.port, `CONNECT ${authority} HTTP/1.1\r\n\r\n`);
    const { head, rest } = await readHead(socket);
    expect(head).toMatch(/^HTTP\/1\.1 502 /);
    expect(rest.toString()).toContain('ECONNREFUSED');
  });

  it('forwards plain-HTTP absolute-form requests, dropping hop-by-hop headers', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers);
      res.end(`you asked for ${req.url}`);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const proxy = await startProxy({ proxy: { httpPorts: [port] } });

    const socket = await rawConnection(
      proxy.port,
      `GET http://127.0.0.1:${port}/hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nProxy-Authorization: Basic eDp5\r\nConnection: close\r\n\r\n`,
    );
    const { head, rest } = await readHead(socket);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    socket.resume();
    let body = rest.toString();
    for await (const chunk of socket) body += (chunk as Buffer).toString();
    expect(body).toBe('you asked for /hello?x=1');
    expect(seen[0]?.['proxy-authorization']).toBeUndefined();
    await proxy.waitForLog((l) => l.msg === 'forward' && l.status === 200);
  });
});
