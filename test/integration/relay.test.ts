// The tunnel's download relay (src/proxy/relay.ts) on real loopback sockets: bytes arrive intact
// and in order while a few buffers are reused under a reader that falls behind, the source stops
// reading while the sink's queue is full, and a source made without `onread` works the same.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Relay } from '../../src/proxy/relay.ts';
import { rawConnection, readHead, startProxy } from '../helpers/proxy.ts';

const MiB = 2 ** 20;

/** A server on port 0 that runs `onSocket` for each connection; closed after the test. */
async function listen(onSocket: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer(onSocket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

/** An origin that sends `data` to whoever connects, then ends. */
function origin(data: Buffer): Promise<number> {
  return listen((socket) => {
    socket.on('error', () => undefined);
    socket.end(data);
  });
}

/** Both ends of one loopback connection: `sink` for the relay to write to, `reader` for the test. */
async function socketPair(): Promise<{ sink: net.Socket; reader: net.Socket }> {
  let accept: (socket: net.Socket) => void = () => undefined;
  const accepted = new Promise<net.Socket>((resolve) => (accept = resolve));
  const port = await listen((socket) => accept(socket));
  const reader = net.connect(port, '127.0.0.1');
  const [sink] = await Promise.all([accepted, once(reader, 'connect')]);
  onTestFinished(() => {
    sink.destroy();
    reader.destroy();
  });
  return { sink, reader };
}

async function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('relay', () => {
  it('reuses a few buffers, in order, and stops reading while the sink is full', async () => {
    const data = randomBytes(32 * MiB);
    const port = await origin(data);
    const { sink, reader } = await socketPair();
    reader.pause();
    const bufferBytes = 16 * 1024;
    const highWaterBytes = 64 * 1024;
    const relay = new Relay(sink, { bufferBytes, highWaterBytes });
    // Watch what the source is handed and what the sink holds after each read.
    const buffers = new Set<Uint8Array>();
    let maxQueued = 0;
    let pauses = 0;
    let firstPause: () => void = () => undefined;
    const paused = new Promise<void>((resolve) => (firstPause = resolve));
    const next = relay.onread.buffer as () => Uint8Array;
    const source = net.connect({
      port,
      host: '127.0.0.1',
      onread: {
        buffer: () => {
          const buffer = next();
          buffers.add(buffer);
          return buffer;
        },
        callback: (nread, buffer) => {
          const more = relay.onread.callback(nread, buffer);
          maxQueued = Math.max(maxQueued, sink.writableLength);
          if (!more && ++pauses === 1) firstPause();
          return more;
        },
      },
    });
    onTestFinished(() => void source.destroy());
    await once(source, 'connect');
    relay.from(source);

    // The reader reads nothing until the kernel's buffers are full and the relay has paused (or,
    // were it never to pause, until the source has given it everything).
    await Promise.race([paused, once(source, 'end')]);
    const received = readAll(reader);
    reader.resume();
    expect((await received).equals(data)).toBe(true);
    // Reads were stopped while a full queue waited: never much more than the mark was queued,
    // so a handful of buffers served 2,048 reads.
    expect(pauses).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThan(highWaterBytes + bufferBytes);
    expect(buffers.size).toBeLessThanOrEqual(highWaterBytes / bufferBytes + 4);
  });

  it('takes the reads of a source made without onread as they come', async () => {
    const data = randomBytes(8 * MiB);
    const port = await origin(data);
    const { sink, reader } = await socketPair();
    const relay = new Relay(sink, { bufferBytes: 16 * 1024, highWaterBytes: 64 * 1024 });
    const source = net.connect({ port, host: '127.0.0.1' });
    onTestFinished(() => void source.destroy());
    await once(source, 'connect');
    relay.from(source);
    expect((await readAll(reader)).equals(data)).toBe(true);
  });

  it('tunnels a large stream intact through the proxy and logs its size', async () => {
    const data = randomBytes(24 * MiB);
    const port = await origin(data);
    const proxy = await startProxy({ proxy: { connectPorts: [port] } });
    const client = await rawConnection(proxy.port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`);
    const { head, rest } = await readHead(client);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const line = proxy.waitForLog((l) => l.msg === 'tunnel');
    const body = Buffer.concat([rest, await readAll(client)]);
    expect(body.length).toBe(data.length);
    expect(body.equals(data)).toBe(true);
    expect(await line).toMatchObject({ established: true, bytesDown: data.length });
  });
});
