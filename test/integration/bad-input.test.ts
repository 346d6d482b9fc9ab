// Hostile and broken input: each gets a clear status or a clean close, and the proxy keeps
// serving everyone else (every test ends by proving the proxy still answers).
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { rawConnection, readHead, startProxy, type TestProxy } from '../helpers/proxy.ts';
import { connectIntercepted, exchange, parseResponse } from '../helpers/wire.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

async function stillServes(proxy: TestProxy, authority?: string): Promise<void> {
  if (authority === undefined) {
    const socket = await rawConnection(proxy.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await readHead(socket)).head).toMatch(/^HTTP\/1\.1 200 /);
    return;
  }
  const res = await proxy.fetch(authority, '/v2/');
  expect(res.statusCode).toBe(200);
  await res.body.dump();
}

async function statusOf(proxy: TestProxy, data: string | Buffer): Promise<string> {
  const socket = await rawConnection(proxy.port, data);
  const { head } = await readHead(socket);
  return head.split('\r\n')[0] ?? '';
}

describe('bad input', () => {
  it.each([
    ['no port', 'CONNECT example.com HTTP/1.1\r\n\r\n'],
    ['port 0', 'CONNECT example.com:0 HTTP/1.1\r\n\r\n'],
    ['port out of range', 'CONNECT example.com:99999 HTTP/1.1\r\n\r\n'],
    ['garbage host', 'CONNECT ex$ample..com:443 HTTP/1.1\r\n\r\n'],
    ['unbracketed IPv6', 'CONNECT ::1:443 HTTP/1.1\r\n\r\n'],
  ])('answers 400 to a malformed CONNECT target (%s)', async (_name, line) => {
    const proxy = await startProxy();
    expect(await statusOf(proxy, line)).toMatch(/^HTTP\/1\.1 400 /);
    await stillServes(proxy);
  });

  it('answers 431 to an oversized header block', async () => {
    const proxy = await startProxy();
    const status = await statusOf(proxy, `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    expect(status).toMatch(/^HTTP\/1\.1 431 /);
    await stillServes(proxy);
  });

  it('answers 400 to bytes that are not HTTP', async () => {
    const proxy = await startProxy();
    expect(await statusOf(proxy, Buffer.concat([randomBytes(64), Buffer.from('\r\n\r\n')]))).toMatch(
      /^HTTP\/1\.1 400 /,
    );
    await stillServes(proxy);
  });

  it('closes cleanly when the bytes after an intercepted CONNECT are not TLS', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const socket = await rawConnection(proxy.port, `CONNECT ${upstream.authority} HTTP/1.1\r\n\r\n`);
    expect((await readHead(socket)).head).toMatch(/^HTTP\/1\.1 200 /);
    socket.resume();
    socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(socket, 'close');
    await proxy.waitForLog((l) => l.msg === 'tls handshake failed');
    await stillServes(proxy, upstream.authority);
  });

  it('survives a client that does not trust the CA (failed handshake)', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const socket = await rawConnection(proxy.port, `CONNECT ${upstream.authority} HTTP/1.1\r\n\r\n`);
    await readHead(socket);
    const secure = tls.connect({ socket, servername: 'localhost' });
    const [error] = (await once(secure, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toMatch(/CERT|SIGNATURE|ISSUER|SELF_SIGNED/);
    await stillServes(proxy, upstream.authority);
  });

  it('survives a client that disconnects mid-blob, and logs the request as aborted', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(randomBytes(32 * 1024 * 1024));
    const proxy = await startProxy({ registries: [upstream.authority] });
    const res = await proxy.fetch(upstream.authority, `/v2/big/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    for await (const _chunk of res.body) break; // one chunk, then hang up
    const line = await proxy.waitForLog((l) => l.msg === 'request' && l.route === 'blob');
    expect(line['aborted']).toBe(true);
    expect(line['err']).toBeUndefined();
    expect(line['cache']).toBe('miss');
    expect(line['bytes']).toBeGreaterThan(0);
    await stillServes(proxy, upstream.authority);
  });

  it('survives a client that disconnects mid-request (headers half sent)', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const socket = await rawConnection(proxy.port, 'CONNECT ' + upstream.authority + ' HTTP/1.1\r\nHost: x');
    socket.destroy();
    await stillServes(proxy, upstream.authority);
  });

  it('answers malformed /v2/ paths itself with OCI errors, and relays none of them', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const digest = `sha256:${'a'.repeat(64)}`;
    const cases: [path: string, status: number, code: string][] = [
      [`/v2/../../etc/passwd/blobs/${digest}`, 400, 'NAME_INVALID'],
      ['/v2/%2e%2e/%2e%2e/etc/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/library%2falpine/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/library/alpine%00/manifests/latest', 400, 'NAME_INVALID'],
      [`/v2/${'a'.repeat(10_000)}/manifests/latest`, 400, 'NAME_INVALID'],
      ['/v2/Library/Alpine/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/library/alpine/blobs/sha256:abc', 400, 'DIGEST_INVALID'],
      [`/v2/library/alpine/blobs/sha256:${'g'.repeat(64)}`, 400, 'DIGEST_INVALID'],
      [`/v2/library/alpine/blobs/md5:${'a'.repeat(32)}`, 400, 'DIGEST_INVALID'],
      [`/v2/library/alpine/manifests/sha999:${'a'.repeat(64)}`, 400, 'DIGEST_INVALID'],
      ['/v2/library/alpine/manifests/-latest', 404, 'MANIFEST_UNKNOWN'],
    ];
    for (const [path, status, code] of cases) {
      const secure = await connectIntercepted(proxy.port, upstream.authority, proxy.app.ca.certPem);
      const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 'latin1');
      const { bytes } = await exchange(secure, request, { end: false, deadlineMs: 5_000 });
      const response = parseResponse(bytes);
      expect(response?.status, path.slice(0, 80)).toBe(status);
      const body = JSON.parse(response!.body.toString('utf8')) as { errors: { code: string }[] };
      expect(body.errors[0]?.code, path.slice(0, 80)).toBe(code);
    }
    expect(upstream.requests.map((r) => r.path)).toEqual([]);
    await stillServes(proxy, upstream.authority);
  });

  it('accepts a ClientHello sent in the same packet as the CONNECT (bytes read ahead)', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const raw = net.connect(proxy.port, '127.0.0.1');
    await once(raw, 'connect');
    let connectSent = false;
    let headSkipped = false;
    let pending = Buffer.alloc(0);
    // A stream under the TLS client that prefixes its first write (the ClientHello) with the
    // CONNECT request and hides the proxy's 200 from it.
    const carrier = new Duplex({
      write(chunk: Buffer, _encoding, callback) {
        raw.write(
          connectSent
            ? chunk
            : Buffer.concat([Buffer.from(`CONNECT ${upstream.authority} HTTP/1.1\r\n\r\n`), chunk]),
        );
        connectSent = true;
        callback();
      },
      read() {},
    });
    raw.on('data', (chunk: Buffer) => {
      if (headSkipped) return void carrier.push(chunk);
      pending = Buffer.concat([pending, chunk]);
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      headSkipped = true;
      if (pending.length > end + 4) carrier.push(pending.subarray(end + 4));
    });
    raw.on('close', () => carrier.push(null));
    const secure = tls.connect({
      socket: carrier,
      ca: proxy.app.ca.certPem,
      checkServerIdentity: () => undefined,
    });
    await once(secure, 'secureConnect');
    secure.write('GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let response = '';
    for await (const chunk of secure) response += (chunk as Buffer).toString();
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    raw.destroy();
  });
});
