// upstream.proxy: registry traffic (intercepted hosts), tunnels and plain-HTTP forwards go
// through a parent proxy, which resolves names itself; Proxy-Authorization reaches it only when
// credentials are configured, and they never appear in a log line.
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startParentProxy } from '../helpers/parent-proxy.ts';
import { rawConnection, readHead, startProxy } from '../helpers/proxy.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { size: 3 }, layers: [] };

/** A TCP echo server: whatever a tunnel carries comes back. */
async function startEcho(): Promise<number> {
  const server = net.createServer((socket) => socket.pipe(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** CONNECTs through pullthrough to `authority`, sends `text`, and reads it back. */
async function echoThrough(proxyPort: number, authority: string, text: string): Promise<string> {
  const socket = await rawConnection(
    proxyPort,
    `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`,
  );
  const { head } = await readHead(socket);
  expect(head).toMatch(/^HTTP\/1\.1 200 /);
  socket.resume();
  socket.write(text);
  let echoed = '';
  for await (const chunk of socket) {
    echoed += (chunk as Buffer).toString();
    if (echoed.length >= text.length) break;
  }
  socket.destroy();
  return echoed;
}

/** A plain-HTTP origin that says hello and remembers the headers it got. */
async function startPlainOrigin(): Promise<{ port: number; seen: http.IncomingHttpHeaders[] }> {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${req.url ?? ''}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, seen };
}

/** `GET <url>` sent to pullthrough as a plain-HTTP proxy request. */
async function forwardThrough(proxyPort: number, url: string): Promise<{ status: number; body: string }> {
  const req = http.request({ host: '127.0.0.1', port: proxyPort, path: url });
  req.end();
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let body = '';
  for await (const chunk of res) body += (chunk as Buffer).toString();
  return { status: res.statusCode ?? 0, body };
}

describe('parent proxy', () => {
  it('sends plain-HTTP forwards through the parent in absolute form, with its credentials', async () => {
    const parent = await startParentProxy({
      credentials: { user: 'corp', password: 's3cret/pw' },
      names: { 'plain.test': '127.0.0.1' },
    });
    const origin = await startPlainOrigin();
    const settings = { upstream: { proxy: parent.url }, proxy: { httpPorts: [origin.port] } };
    const resolved: string[] = [];
    const proxy = await startProxy(
      settings,
      {},
      {
        resolve: (host) => {
          resolved.push(host);
          return Promise.reject(Object.assign(new Error(`cannot resolve ${host}`), { code: 'ENOTFOUND' }));
        },
      },
    );
    const url = `http://plain.test:${origin.port}/hello?x=1`;
    expect(await forwardThrough(proxy.port, url)).toEqual({ status: 200, body: 'hello /hello?x=1' });
    const expected = `Basic ${Buffer.from('corp:s3cret/pw').toString('base64')}`;
    expect(parent.forwards).toEqual([{ target: url, proxyAuthorization: expected }]);
    expect(origin.seen.map((headers) => headers['proxy-authorization'])).toEqual([undefined]);
    expect(resolved).toEqual([]);
    await proxy.waitForLog((l) => l.msg === 'forward');
    expect(JSON.stringify(proxy.logs)).not.toContain('s3cret');

    // Credentials the parent refuses are the operator's to fix: the client gets a 502.
    const refused = await startProxy({
      upstream: { proxy: `http://corp:wrong@127.0.0.1:${parent.port}` },
      proxy: { httpPorts: [origin.port] },
    });
    const answer = await forwardThrough(refused.port, url);
    expect(answer.status).toBe(502);
    expect(answer.body).toContain('parent proxy answered 407');
    expect(origin.seen).toHaveLength(1);
  });

  it('sends registry pulls and tunnels through the parent, with its credentials, never logged', async () => {
    const parent = await startParentProxy({
      credentials: { user: 'corp', password: 's3cret/pw' },
      names: { 'echo.test': '127.0.0.1' },
    });
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'v1', manifest);
    const echoPort = await startEcho();
    const resolved: string[] = [];
    const proxy = await startProxy(
      {
        registries: [upstream.authority],
        upstream: { proxy: parent.url },
        proxy: { connectPorts: [echoPort] },
      },
      {},
      {
        // pullthrough itself cannot resolve echo.test: only the parent can.
        resolve: (host) => {
          resolved.push(host);
          return Promise.reject(Object.assign(new Error(`cannot resolve ${host}`), { code: 'ENOTFOUND' }));
        },
      },
    );

    const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/v1', {
      headers: { accept: OCI_MANIFEST },
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual(manifest);
    expect(await echoThrough(proxy.port, `echo.test:${echoPort}`, 'hello through the parent')).toBe(
      'hello through the parent',
    );

    const expected = `Basic ${Buffer.from('corp:s3cret/pw').toString('base64')}`;
    expect(parent.connects).toEqual(
      expect.arrayContaining([
        { target: upstream.authority, proxyAuthorization: expected },
        { target: `echo.test:${echoPort}`, proxyAuthorization: expected },
      ]),
    );
    expect(parent.connects.every((c) => c.proxyAuthorization === expected)).toBe(true);
    expect(resolved).toEqual([]);
    await proxy.waitForLog((l) => l.msg === 'tunnel');
    const logs = JSON.stringify(proxy.logs);
    expect(logs).not.toContain('s3cret');
    expect(logs).not.toContain(expected.slice('Basic '.length));
    expect(proxy.logs.find((l) => l.msg === 'parent proxy')).toMatchObject({
      host: '127.0.0.1',
      port: parent.port,
    });
  });

  it('sends no Proxy-Authorization when none is configured', async () => {
    const parent = await startParentProxy();
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'v1', manifest);
    const echoPort = await startEcho();
    const proxy = await startProxy({
      registries: [upstream.authority],
      upstream: { proxy: parent.url },
      proxy: { connectPorts: [echoPort] },
    });
    const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/v1', {
      headers: { accept: OCI_MANIFEST },
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(await echoThrough(proxy.port, `127.0.0.1:${echoPort}`, 'plain')).toBe('plain');
    expect(parent.connects).toEqual(
      expect.arrayContaining([
        { target: upstream.authority, proxyAuthorization: undefined },
        { target: `127.0.0.1:${echoPort}`, proxyAuthorization: undefined },
      ]),
    );
    expect(parent.connects.every((c) => c.proxyAuthorization === undefined)).toBe(true);
  });

  it('a parent that refuses makes the registry unreachable (502) and the tunnel answer 502', async () => {
    const parent = await startParentProxy({ credentials: { user: 'corp', password: 'right' } });
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'v1', manifest);
    const echoPort = await startEcho();
    const proxy = await startProxy({
      registries: [upstream.authority],
      upstream: { proxy: `http://corp:wrong@127.0.0.1:${parent.port}` },
      proxy: { connectPorts: [echoPort] },
    });
    const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/v1');
    expect(res.statusCode).toBe(502);
    expect(await res.body.text()).toContain('parent proxy answered 407');
    const socket = await rawConnection(proxy.port, `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\n\r\n`);
    const { head } = await readHead(socket);
    expect(head).toMatch(/^HTTP\/1\.1 502 /);
    expect(upstream.requests).toEqual([]);
  });

  it("uses pullthrough's own HTTPS_PROXY and NO_PROXY only when proxyFromEnv is on", async () => {
    const parent = await startParentProxy();
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'v1', manifest);
    vi.stubEnv('HTTPS_PROXY', parent.url);
    vi.stubEnv('NO_PROXY', 'registry.internal');
    onTestFinished(() => {
      vi.unstubAllEnvs();
    });
    const pull = async (upstreamSettings: Record<string, unknown>) => {
      const proxy = await startProxy({ registries: [upstream.authority], upstream: upstreamSettings });
      const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/v1', {
        headers: { accept: OCI_MANIFEST },
      });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      await proxy.close();
    };

    await pull({});
    expect(parent.connects).toEqual([]);
    await pull({ proxyFromEnv: true });
    // A HEAD and a GET: one pooled connection or two, each a CONNECT through the parent.
    const through = parent.connects.length;
    expect(through).toBeGreaterThan(0);
    expect(parent.connects.every((c) => c.target === upstream.authority)).toBe(true);
    vi.stubEnv('NO_PROXY', `example.com, ${upstream.host}`);
    await pull({ proxyFromEnv: true });
    expect(parent.connects).toHaveLength(through);
    expect(upstream.requests.filter((r) => r.method === 'GET')).toHaveLength(3);
  });

  it('tunnels to a NO_PROXY name directly, resolved and checked by pullthrough itself', async () => {
    const parent = await startParentProxy({ names: { 'far.test': '127.0.0.1' } });
    const echoPort = await startEcho();
    vi.stubEnv('HTTPS_PROXY', parent.url);
    vi.stubEnv('NO_PROXY', '.near.test');
    onTestFinished(() => {
      vi.unstubAllEnvs();
    });
    const resolved: string[] = [];
    const proxy = await startProxy(
      { upstream: { proxyFromEnv: true }, proxy: { connectPorts: [echoPort] } },
      {},
      {
        resolve: (host) => {
          resolved.push(host);
          return Promise.resolve([{ address: '127.0.0.1', family: 4 }]);
        },
      },
    );
    expect(await echoThrough(proxy.port, `box.near.test:${echoPort}`, 'direct')).toBe('direct');
    expect(parent.connects).toEqual([]);
    expect(resolved).toEqual(['box.near.test']);
    expect(await echoThrough(proxy.port, `far.test:${echoPort}`, 'through')).toBe('through');
    expect(parent.connects).toEqual([{ target: `far.test:${echoPort}`, proxyAuthorization: undefined }]);
    expect(resolved).toEqual(['box.near.test']);
  });
});
