import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { ByteSource } from '../../../../src/cache/blobs.ts';
import type { Outcome } from '../../../../src/registry/outcome.ts';
import { BufferPool } from '../../../../src/buffer-pool.ts';
import { pump } from '../../../../src/registry/respond/pump.ts';

/** `total` bytes where byte i is (i * 7) mod 256, read in pieces of at most `step`. */
function patterned(total: number, step: number): ByteSource & { closed: boolean } {
  let position = 0;
  return {
    closed: false,
    read(buffer) {
      const count = Math.min(buffer.length, step, total - position);
      for (let i = 0; i < count; i++) buffer[i] = ((position + i) * 7) % 256;
      position += count;
      return Promise.resolve(count);
    },
    close() {
      this.closed = true;
      return Promise.resolve();
    },
  };
}

function expectedHash(total: number): string {
  const bytes = Buffer.alloc(total);
  for (let i = 0; i < total; i++) bytes[i] = (i * 7) % 256;
  return createHash('sha256').update(bytes).digest('hex');
}

/** A server on port 0 whose one route runs `send`; returns its URL and the pump's result. */
async function serve(send: (res: ServerResponse) => Promise<void>) {
  let result: Promise<void> = Promise.resolve();
  const server = createServer((_req, res) => {
    result = send(res);
    result.catch(() => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, result: () => result };
}

function outcome(): Outcome {
  return { bytes: 0 } as Outcome;
}

describe('pump', () => {
  it('sends every byte in order while reusing a few buffers', async () => {
    const total = 5 * 1024 * 1024 + 123;
    const pool = new BufferPool(64 * 1024, 8);
    const taken: Buffer[] = [];
    const take = pool.take.bind(pool);
    pool.take = () => {
      const buffer = take();
      taken.push(buffer);
      return buffer;
    };
    const source = patterned(total, 50_000);
    const sent = outcome();
    const server = await serve((res) => {
      res.writeHead(200, { 'content-length': total });
      return pump(source, res, sent, { length: total, pool });
    });
    const response = await new Promise<IncomingMessage>((resolve) => get(server.url, resolve));
    const hash = createHash('sha256');
    // A slow reader: the pump must wait for the socket before reusing a buffer.
    for await (const chunk of response) {
      hash.update(chunk as Buffer);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await server.result();
    expect(hash.digest('hex')).toBe(expectedHash(total));
    expect(sent.bytes).toBe(total);
    expect(new Set(taken).size).toBeLessThanOrEqual(4);
    expect(source.closed).toBe(true);
  });

  it('fails, and closes the source, when the client goes away', async () => {
    const total = 64 * 1024 * 1024;
    const source = patterned(total, 64 * 1024);
    const server = await serve((res) => {
      res.writeHead(200, { 'content-length': total });
      return pump(source, res, outcome(), { length: total });
    });
    const request = get(server.url);
    const [response] = (await once(request, 'response')) as [IncomingMessage];
    await once(response, 'data');
    request.destroy();
    await expect(server.result()).rejects.toThrow();
    expect(source.closed).toBe(true);
  });

  it('fails rather than end a sized response short', async () => {
    const source = patterned(1000, 100);
    const server = await serve((res) => {
      res.writeHead(200, { 'content-length': 2000 });
      return pump(source, res, outcome(), { length: 2000 });
    });
    const request = get(server.url);
    request.on('error', () => undefined);
    await once(request, 'response');
    await expect(server.result()).rejects.toThrow('ended after 1000 of 2000 bytes');
  });
});
