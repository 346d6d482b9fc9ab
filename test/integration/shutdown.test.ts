// Graceful stop: stop accepting, let in-flight requests finish within the grace time, then cut
// tunnels and whatever is left.
import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { rawConnection, readHead, startProxy } from '../helpers/proxy.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

describe('shutdown', () => {
  it('lets an in-flight request finish, then closes tunnels and stops listening', async () => {
    const upstream = await startFakeRegistry();
    const origin = await startFakeRegistry();
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let started: () => void = () => undefined;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    upstream.route('/v2/slow/blobs/uploads/', (_req, res) => {
      res.writeHead(200, { 'content-length': 10 });
      res.write('12345');
      started();
      void released.then(() => res.end('67890'));
    });
    const proxy = await startProxy({
      registries: [upstream.authority],
      proxy: { connectPorts: [origin.port] },
      shutdownTimeout: '10s',
    });

    const tunnel = await rawConnection(proxy.port, `CONNECT ${origin.authority} HTTP/1.1\r\n\r\n`);
    expect((await readHead(tunnel)).head).toMatch(/^HTTP\/1\.1 200 /);
    tunnel.resume();
    const tunnelClosed = once(tunnel, 'close');

    const slow = proxy.fetch(upstream.authority, '/v2/slow/blobs/uploads/');
    await inFlight;
    const closing = proxy.close();
    // New connections are refused while the in-flight request is still running.
    const refused = net.connect(proxy.port, '127.0.0.1');
    const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNREFUSED');

    release();
    const res = await slow;
    expect(await res.body.text()).toBe('1234567890');
    await closing;
    await tunnelClosed;
  });

  it('cuts a request that outlives the grace time', async () => {
    const upstream = await startFakeRegistry();
    let started: () => void = () => undefined;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    upstream.route('/v2/stuck/blobs/uploads/', (_req, res) => {
      res.writeHead(200, { 'content-length': 10 });
      res.write('12345');
      started();
    });
    const proxy = await startProxy({ registries: [upstream.authority], shutdownTimeout: '200ms' });
    const res = await proxy.fetch(upstream.authority, '/v2/stuck/blobs/uploads/');
    await inFlight;
    await proxy.close();
    await expect(res.body.text()).rejects.toThrow();
  });
});
