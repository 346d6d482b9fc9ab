// The client limits hold inside intercepted TLS sessions as they do on the proxy port: a client
// that drips its request headers gets 408 after limits.headersTimeout, one that says nothing after
// its handshake is closed after limits.idleTimeout, one that never finishes the handshake after
// limits.handshakeTimeout. Each test drives a raw socket and awaits the proxy's answer or close.
// The lower bounds are half the limit: the proxy's timer starts before the client sees its side
// of the handshake, and on a loaded machine that gap alone has measured over 20 ms.
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it, onTestFinished } from 'vitest';
import { rawConnection, readHead, startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

/** CONNECT to `authority` and a finished TLS handshake with the proxy's leaf. */
async function interceptedSession(proxy: TestProxy, authority: string): Promise<tls.TLSSocket> {
  const socket = await rawConnection(
    proxy.port,
    `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`,
  );
  expect((await readHead(socket)).head).toMatch(/^HTTP\/1\.1 200 /);
  const secure = tls.connect({ socket, ca: proxy.app.ca.certPem, checkServerIdentity: () => undefined });
  onTestFinished(() => void secure.destroy());
  await once(secure, 'secureConnect');
  return secure;
}

/** Everything the proxy sends until it closes the connection. */
async function readUntilClosed(socket: net.Socket | tls.TLSSocket): Promise<string> {
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => {});
  await once(socket, 'close');
  return text;
}

describe('timeouts inside intercepted TLS sessions', () => {
  it('answers 408 to a client that drips its headers past limits.headersTimeout', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({
      registries: [upstream.authority],
      limits: { headersTimeout: '500ms', idleTimeout: '5m' },
    });
    const secure = await interceptedSession(proxy, upstream.authority);
    const closed = readUntilClosed(secure);
    const started = performance.now();
    secure.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    // One header byte every 50 ms: never idle, never done.
    const drip = setInterval(() => secure.write('X'), 50);
    onTestFinished(() => clearInterval(drip));
    const answer = await closed;
    clearInterval(drip);
    const elapsed = performance.now() - started;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5_000);
    await proxy.waitForLog((l) => l.msg === 'request refused: limits.headersTimeout');
    expect(upstream.requests).toHaveLength(0);
  });

  it('closes a session that sends nothing after its handshake, after limits.idleTimeout', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority], limits: { idleTimeout: '300ms' } });
    const secure = await interceptedSession(proxy, upstream.authority);
    const started = performance.now();
    expect(await readUntilClosed(secure)).toBe('');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('keeps a session whose request waits on upstream longer than limits.idleTimeout', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority], limits: { idleTimeout: '200ms' } });
    // Upstream thinks for three idle timeouts before answering the ping.
    upstream.route('/v2/', (_req, res) => {
      const timer = setTimeout(() => res.writeHead(200, { 'content-length': '2' }).end('{}'), 600);
      res.once('close', () => clearTimeout(timer));
    });
    const secure = await interceptedSession(proxy, upstream.authority);
    const closed = readUntilClosed(secure);
    secure.write(`GET /v2/ HTTP/1.1\r\nHost: ${upstream.authority}\r\nConnection: close\r\n\r\n`);
    expect(await closed).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('closes a CONNECT whose client never finishes the TLS handshake, after limits.handshakeTimeout', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({
      registries: [upstream.authority],
      limits: { handshakeTimeout: '300ms' },
    });
    const socket = await rawConnection(
      proxy.port,
      `CONNECT ${upstream.authority} HTTP/1.1\r\nHost: ${upstream.authority}\r\n\r\n`,
    );
    const { head } = await readHead(socket);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    socket.resume();
    const started = performance.now();
    await once(socket, 'close');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('closes a plain connection that sends nothing, after limits.idleTimeout, on the proxy port too', async () => {
    const proxy = await startProxy({ limits: { idleTimeout: '300ms' } });
    const socket = await rawConnection(proxy.port);
    const started = performance.now();
    expect(await readUntilClosed(socket)).toBe('');
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('leaves a quiet tunnel to limits.tunnelIdleTimeout, not limits.idleTimeout', async () => {
    const origin = await startFakeRegistry();
    const proxy = await startProxy({
      limits: { idleTimeout: '100ms', tunnelIdleTimeout: '1h' },
      proxy: { connectPorts: [origin.port] },
    });
    const socket = await rawConnection(proxy.port, `CONNECT ${origin.authority} HTTP/1.1\r\n\r\n`);
    expect((await readHead(socket)).head).toMatch(/^HTTP\/1\.1 200 /);
    // Proving that nothing happens takes time: four idle timeouts of silence.
    await sleep(400);
    const secure = tls.connect({ socket, rejectUnauthorized: false });
    await once(secure, 'secureConnect');
    secure.end('GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(await readUntilClosed(secure)).toMatch(/^HTTP\/1\.1 200 /);
  });
});
