// The own blob reader (src/upstream/h1/) against undici on the same bytes, and its connections:
// random framings and splits from a raw loopback server read by both must agree; kept-alive
// reuse, early close, timeouts, backpressure, and the way back to undici through Upstream.
import { once } from 'node:events';
import net from 'node:net';
import { setImmediate as turn } from 'node:timers/promises';
import fc from 'fast-check';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobReader } from '../../src/upstream/h1/blob-reader.ts';
import { ResponseParser, type Fields } from '../../src/upstream/h1/response-parser.ts';
import { Upstream } from '../../src/upstream/client.ts';
import tls from 'node:tls';

/** A server that answers each request on a connection with the next script's pieces. */
interface Script {
  readonly pieces: readonly Buffer[];
  /** End the connection after writing. */
  readonly close: boolean;
}

let server: net.Server;
let origin: string;
let scripts: Script[] = [];
let connections = 0;
const requests: string[] = [];
const open = new Set<net.Socket>();

beforeAll(async () => {
  server = net.createServer((socket) => {
    connections++;
    open.add(socket.on('close', () => open.delete(socket)));
    let pending = '';
    socket.on('error', () => undefined);
    socket.on('data', (data) => {
      pending += data.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
        requests.push(pending.slice(0, end));
        pending = pending.slice(end + 4);
        const script = scripts.shift();
        if (!script) return void socket.destroy();
        void (async () => {
          for (const piece of script.pieces) {
            socket.write(piece);
            await turn();
          }
          if (script.close) socket.end();
        })();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  for (const socket of open) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

const reader = () =>
  new BlobReader({
    secureContext: tls.createSecureContext(),
    rejectUnauthorized: true,
    connectTimeoutMs: 2000,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
  });

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------------------------------------
// Random responses: status, interim responses, fields, framing, body, and where TCP splits them.

interface Generated {
  readonly interim: ReadonlyArray<{ status: 100 | 103; fields: Array<[string, string]> }>;
  readonly status: number;
  readonly fields: Array<[string, string]>;
  readonly framing: 'length' | 'chunked' | 'close';
  readonly body: Uint8Array;
  readonly chunkSizes: number[];
  readonly extensions: boolean;
  readonly trailers: Array<[string, string]>;
  readonly cuts: number[];
}

const fieldName = fc.constantFrom('x-a', 'X-B', 'content-type', 'etag', 'docker-content-digest', 'x-c-d');
const fieldValue = fc.stringMatching(/^[A-Za-z0-9;=/:,. -]{0,30}$/);
const field = fc.tuple(fieldName, fieldValue);
const generated: fc.Arbitrary<Generated> = fc.record({
  interim: fc.array(
    fc.record({
      status: fc.constantFrom(100 as const, 103 as const),
      fields: fc.array(field, { maxLength: 2 }),
    }),
    { maxLength: 2 },
  ),
  status: fc.constantFrom(200, 206, 307, 404, 500, 204, 304),
  fields: fc.array(field, { maxLength: 6 }),
  framing: fc.constantFrom('length' as const, 'chunked' as const, 'close' as const),
  body: fc.uint8Array({ maxLength: 3000 }),
  chunkSizes: fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 10 }),
  extensions: fc.boolean(),
  trailers: fc.array(field, { maxLength: 2 }),
  cuts: fc.array(fc.integer({ min: 1, max: 4000 }), { maxLength: 8 }),
});

function serialize(g: Generated): { bytes: Buffer; body: Buffer } {
  const lines = (fields: Array<[string, string]>) =>
    fields.map(([name, value]) => `${name}: ${value}\r\n`).join('');
  const head = g.interim
    .map((interim) => `HTTP/1.1 ${interim.status} Interim\r\n${lines(interim.fields)}\r\n`)
    .join('');
  const noBody = g.status === 204 || g.status === 304;
  const body = noBody ? Buffer.alloc(0) : Buffer.from(g.body);
  const framing =
    g.framing === 'length'
      ? `content-length: ${body.length}\r\n`
      : g.framing === 'chunked'
        ? 'transfer-encoding: chunked\r\n'
        : 'connection: close\r\n';
  let payload = body;
  if (g.framing === 'chunked' && !noBody) {
    const parts: Buffer[] = [];
    let at = 0;
    for (const size of [...g.chunkSizes, body.length]) {
      const take = Math.min(size, body.length - at);
      if (take <= 0) break;
      parts.push(
        Buffer.from(`${take.toString(16)}${g.extensions ? ';x=1' : ''}\r\n`),
        body.subarray(at, at + take),
        Buffer.from('\r\n'),
      );
      at += take;
    }
    parts.push(Buffer.from(`0\r\n${lines(g.trailers)}\r\n`));
    payload = Buffer.concat(parts);
  }
  const bytes = Buffer.concat([
    Buffer.from(`${head}HTTP/1.1 ${g.status} Final\r\n${lines(g.fields)}${framing}\r\n`, 'latin1'),
    payload,
  ]);
  return { bytes, body };
}

function cut(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.filter((at) => at < bytes.length))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const point of points) {
    pieces.push(bytes.subarray(from, point));
    from = point;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

interface Seen {
  readonly status: number;
  readonly headers: Fields;
  readonly body: string;
  readonly trailers: Fields;
}

const errorText = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message}` : 'refused';

/** What undici makes of the same bytes from the server; undefined when it refuses them. */
async function undiciOf(agent: Agent, pieces: Buffer[]): Promise<{ seen?: Seen; error?: unknown }> {
  scripts = [{ pieces, close: true }];
  try {
    const response = await request(`${origin}/v2/x/blobs/sha256:0`, { dispatcher: agent });
    const body = (await readAll(response.body)).toString('hex');
    const headers = response.headers as Fields;
    return {
      seen: { status: response.statusCode, headers, body, trailers: { ...response.trailers } },
    };
  } catch (error) {
    return { error };
  } finally {
    scripts = [];
  }
}

/** What the parser makes of `pieces` fed one by one (then the close). */
function ours(pieces: readonly Buffer[]): Seen {
  let status = 0;
  let headers: Fields = {};
  let trailers: Fields = {};
  const body: Buffer[] = [];
  const parser = new ResponseParser('GET', {
    head: (head) => ({ statusCode: status, headers } = head),
    body: (view) => body.push(Buffer.from(view)),
    done: (fields) => (trailers = fields),
  });
  for (const piece of pieces) parser.execute(piece);
  // The test server closes every connection after its response.
  parser.end();
  return { status, headers, body: Buffer.concat(body).toString('hex'), trailers };
}

const ok = (body: string, extra = '') =>
  Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`);

describe('the response parser against undici', () => {
  const agent = new Agent({ pipelining: 0 });
  afterAll(() => agent.close());

  it('agrees on status, fields, body and trailers for random framings split anywhere', async () => {
    await fc.assert(
      fc.asyncProperty(generated, async (g) => {
        const { bytes } = serialize(g);
        const pieces = cut(bytes, g.cuts);
        const mine = ours(pieces);
        const theirs = await undiciOf(agent, pieces);
        // The one known difference: undici refuses a 100 Continue it did not ask for; RFC 9110
        // §15.2 says a client must parse 1xx responses it did not expect, as this parser does.
        if (theirs.error)
          expect(
            g.interim.some((interim) => interim.status === 100),
            errorText(theirs.error),
          ).toBe(true);
        else expect(mine).toEqual(theirs.seen);
      }),
      { numRuns: Number(process.env['FUZZ_RUNS'] ?? 150) },
    );
  });

  it('never accepts damaged bytes that undici reads otherwise or refuses', async () => {
    const damage = fc.array(fc.tuple(fc.nat(), fc.constantFrom(...'\r\n :0aF;-\0\tx'.split(''))), {
      minLength: 1,
      maxLength: 3,
    });
    await fc.assert(
      fc.asyncProperty(generated, damage, async (g, hits) => {
        const { bytes } = serialize(g);
        for (const [at, char] of hits) bytes[at % bytes.length] = char.charCodeAt(0);
        const pieces = cut(bytes, g.cuts);
        let mine: Seen;
        try {
          mine = ours(pieces);
        } catch {
          return; // refused here: the fill fails (or undici is asked), nothing is misread
        }
        const theirs = await undiciOf(agent, pieces);
        if (theirs.error)
          expect(bytes.toString('latin1'), errorText(theirs.error)).toMatch(/(^|\r\n\r\n)HTTP\/1\.[01] 100 /);
        else expect(mine).toEqual(theirs.seen);
      }),
      { numRuns: Number(process.env['FUZZ_RUNS'] ?? 150) },
    );
  });
});

describe('BlobReader', () => {
  it('sends a GET with its host and the given fields, and reuses the connection', async () => {
    const blobs = reader();
    const before = connections;
    scripts = [
      { pieces: [ok('first')], close: false },
      { pieces: [ok('second')], close: false },
    ];
    const first = await blobs.request({
      origin,
      method: 'GET',
      path: '/a',
      headers: { accept: '*/*' },
      bulk: true,
    });
    expect((await readAll(first.body)).toString()).toBe('first');
    const second = await blobs.request({ origin, method: 'GET', path: '/b', headers: {}, bulk: true });
    expect((await readAll(second.body)).toString()).toBe('second');
    expect(connections - before).toBe(1);
    expect(requests.at(-2)).toBe(`GET /a HTTP/1.1\r\nhost: ${new URL(origin).host}\r\naccept: */*`);
    blobs.close();
  });

  it('dump() reads a small body to its end and keeps the connection (a 307 before every blob); a large one closes it', async () => {
    const blobs = reader();
    const before = connections;
    const redirect = Buffer.from(
      'HTTP/1.1 307 Temporary Redirect\r\nlocation: /cdn\r\ncontent-length: 5\r\n\r\nmoved',
    );
    scripts = [
      { pieces: [redirect], close: false },
      { pieces: [ok('x'.repeat(300_000))], close: false },
      { pieces: [ok('after')], close: false },
    ];
    const moved = await blobs.request({ origin, method: 'GET', path: '/r', headers: {}, bulk: true });
    expect(moved.statusCode).toBe(307);
    await moved.body.dump();
    const large = await blobs.request({ origin, method: 'GET', path: '/large', headers: {}, bulk: true });
    expect(connections - before).toBe(1);
    await large.body.dump();
    const after = await blobs.request({ origin, method: 'GET', path: '/after', headers: {}, bulk: true });
    expect((await readAll(after.body)).toString()).toBe('after');
    expect(connections - before).toBe(2);
    blobs.close();
  });

  it('fails the body when the connection closes early, and does not reuse it', async () => {
    const blobs = reader();
    scripts = [
      { pieces: [Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this')], close: true },
    ];
    const response = await blobs.request({ origin, method: 'GET', path: '/cut', headers: {}, bulk: true });
    await expect(readAll(response.body)).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
    const before = connections;
    scripts = [{ pieces: [ok('fresh')], close: false }];
    const next = await blobs.request({ origin, method: 'GET', path: '/next', headers: {}, bulk: true });
    expect((await readAll(next.body)).toString()).toBe('fresh');
    expect(connections - before).toBe(1);
    blobs.close();
  });

  it('times out a silent server for the head, as undici does', async () => {
    const blobs = new BlobReader({
      secureContext: tls.createSecureContext(),
      rejectUnauthorized: true,
      connectTimeoutMs: 2000,
      headersTimeoutMs: 100,
      bodyTimeoutMs: 100,
    });
    scripts = [{ pieces: [], close: false }];
    await expect(
      blobs.request({ origin, method: 'GET', path: '/silent', headers: {}, bulk: true }),
    ).rejects.toMatchObject({
      code: 'UND_ERR_HEADERS_TIMEOUT',
    });
    scripts = [{ pieces: [Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc')], close: false }];
    const response = await blobs.request({ origin, method: 'GET', path: '/stall', headers: {}, bulk: true });
    await expect(readAll(response.body)).rejects.toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });
    blobs.close();
  });

  it('pushes views to a sink that pauses it, without losing or repeating a byte', async () => {
    const blobs = reader();
    const size = 3 * 1024 * 1024;
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 7919) % 251;
    const pieces = cut(
      Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`), payload]),
      [100, 70_000, 1_000_000],
    );
    scripts = [{ pieces, close: false }];
    const response = await blobs.request({ origin, method: 'GET', path: '/big', headers: {}, bulk: true });
    const got: Buffer[] = [];
    let pauses = 0;
    const body = response.body as unknown as {
      pushTo: (sink: { write(v: Buffer): void; room(): Promise<void> | undefined }) => Promise<void>;
    };
    await body.pushTo({
      write: (view) => got.push(Buffer.from(view)),
      room: () => (got.length % 10 === 0 ? (pauses++, turn().then(() => undefined)) : undefined),
    });
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    expect(pauses).toBeGreaterThan(0);
    blobs.close();
  });
  it('reads into memory a sink lends, and copies what lands elsewhere, for both framings', async () => {
    const blobs = reader();
    const size = 1024 * 1024;
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 7919) % 251;
    const chunked = [0, 100_000, 300_000, 700_000, size]
      .slice(1)
      .map((end, i, ends) => payload.subarray(i === 0 ? 0 : ends[i - 1], end))
      .map((part) =>
        Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]),
      );
    const framings = [
      Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`), payload]),
      Buffer.concat([
        Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n'),
        ...chunked,
        Buffer.from('0\r\n\r\n'),
      ]),
    ];
    for (const framing of framings) {
      scripts = [{ pieces: cut(framing, [60, 5_000, 70_000, 400_000, 900_000]), close: false }];
      const response = await blobs.request({ origin, method: 'GET', path: '/lent', headers: {}, bulk: true });
      // The sink keeps the body in `store`, lending its free end in pieces of varied sizes.
      const store = Buffer.alloc(size);
      let kept = 0;
      let lends = 0;
      let inPlace = 0;
      const body = response.body as unknown as {
        pushTo: (sink: { write(v: Buffer): void; room(): undefined; space(): Buffer }) => Promise<void>;
      };
      await body.pushTo({
        write: (view) => {
          if (view.buffer === store.buffer && view.byteOffset === store.byteOffset + kept) inPlace++;
          // Overlapping moves are fine: Buffer#copy copies as if through a temporary buffer.
          else view.copy(store, kept);
          kept += view.length;
        },
        room: () => undefined,
        space: () => store.subarray(kept, Math.min(size, kept + 4096 + (lends++ % 5) * 30_000)),
      });
      expect(kept).toBe(size);
      expect(store.equals(payload)).toBe(true);
      expect(inPlace).toBeGreaterThan(0);
    }
    blobs.close();
  });
});

describe('Upstream with the own reader', () => {
  const upstream = new Upstream({
    verifyTls: true,
    extraCas: [],
    connectTimeoutMs: 2000,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
  });
  afterAll(() => upstream.destroy());

  it('asks undici again for a transfer coding the reader does not frame', async () => {
    const gzipped = Buffer.from(
      'HTTP/1.1 200 OK\r\ntransfer-encoding: identity, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    );
    scripts = [
      { pieces: [gzipped], close: true },
      { pieces: [gzipped], close: true },
    ];
    const response = await upstream.request({
      origin,
      method: 'GET',
      path: '/coded',
      headers: {},
      bulk: true,
    });
    expect((await readAll(response.body)).toString()).toBe('abc');
    expect(scripts).toEqual([]);
  });

  it('leaves requests that are not marked bulk to undici', async () => {
    const before = requests.length;
    scripts = [{ pieces: [ok('manifest')], close: true }];
    const response = await upstream.request({ origin, method: 'GET', path: '/m', headers: {} });
    expect((await readAll(response.body)).toString()).toBe('manifest');
    // undici's request head carries its own `host` first and `connection: keep-alive`.
    expect(requests.slice(before).join('\n')).toMatch(/connection: keep-alive/i);
  });
});
