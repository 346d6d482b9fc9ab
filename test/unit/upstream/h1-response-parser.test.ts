// The own blob reader's HTTP/1.1 response framing, fed whole and split at every byte.
import { describe, expect, it } from 'vitest';
import { ResponseParser, type Fields, type ResponseHead } from '../../../src/upstream/h1/response-parser.ts';

interface Parsed {
  heads: ResponseHead[];
  body: string;
  trailers: Fields | undefined;
  extra: number;
  keepAlive: boolean;
}

/** Feeds `pieces` (then the connection's close when `close`) and collects what the parser said. */
function parse(pieces: readonly string[], options: { method?: string; close?: boolean } = {}): Parsed {
  const parsed: Parsed = { heads: [], body: '', trailers: undefined, extra: 0, keepAlive: false };
  const parser = new ResponseParser(options.method ?? 'GET', {
    head: (head) => parsed.heads.push(head),
    body: (view) => (parsed.body += view.toString('latin1')),
    done: (trailers) => (parsed.trailers = trailers),
  });
  for (const piece of pieces) parser.execute(Buffer.from(piece, 'latin1'));
  if (options.close) parser.end();
  parsed.extra = parser.extra;
  parsed.keepAlive = parser.keepAlive;
  return parsed;
}

/** Every way to cut `text` in two, and byte by byte. */
function splits(text: string): string[][] {
  const ways = [[text], [...text]];
  for (let at = 1; at < text.length; at++) ways.push([text.slice(0, at), text.slice(at)]);
  return ways;
}

const CHUNKED =
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n' +
  '5;ext=1\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-Checksum: abc\r\n\r\n';

describe('ResponseParser', () => {
  it('reads a Content-Length body and keeps the connection, however the bytes are split', () => {
    const text =
      'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: application/octet-stream\r\n\r\nhello world';
    for (const pieces of splits(text)) {
      const parsed = parse(pieces);
      expect(parsed.heads).toEqual([
        {
          statusCode: 200,
          headers: { 'content-length': '11', 'content-type': 'application/octet-stream' },
          keepAlive: true,
        },
      ]);
      expect(parsed.body).toBe('hello world');
      expect(parsed.trailers).toEqual({});
      expect(parsed.keepAlive).toBe(true);
    }
  });

  it('reads chunked bodies with extensions and trailers; repeated fields become arrays', () => {
    for (const pieces of splits(CHUNKED)) {
      const parsed = parse(pieces);
      expect(parsed.heads[0]!.headers['x-a']).toEqual(['1', '2']);
      expect(parsed.body).toBe('hello, chunked!');
      expect(parsed.trailers).toEqual({ 'x-checksum': 'abc' });
    }
  });

  it('skips 100 and 103 interim responses; refuses 101', () => {
    const text =
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n';
    for (const pieces of splits(text)) {
      const parsed = parse(pieces);
      expect(parsed.heads.map((head) => head.statusCode)).toEqual([204]);
      expect(parsed.trailers).toEqual({});
    }
    expect(() => parse(['HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n'])).toThrow(/101/);
  });

  it('reads to the close when nothing frames the body, and says the connection is spent', () => {
    const parsed = parse(['HTTP/1.1 200 OK\r\n\r\nall of ', 'this'], { close: true });
    expect(parsed.body).toBe('all of this');
    expect(parsed.keepAlive).toBe(false);
  });

  it('HEAD, 204 and 304 responses have no body whatever their headers say', () => {
    expect(parse(['HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n'], { method: 'HEAD' }).trailers).toEqual({});
    expect(parse(['HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n']).trailers).toEqual({});
  });

  it('honours Connection: close, and HTTP/1.0 keep-alive only when asked', () => {
    expect(parse(['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n']).keepAlive).toBe(
      false,
    );
    expect(parse(['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n']).keepAlive).toBe(false);
    expect(parse(['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n']).keepAlive).toBe(
      true,
    );
  });

  it('counts bytes past the end of the message, which makes the connection unusable', () => {
    const parsed = parse(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA']);
    expect(parsed.body).toBe('ok');
    expect(parsed.extra).toBe(5);
    expect(parsed.keepAlive).toBe(false);
  });

  it('refuses framings that could be read two ways, or not at all', () => {
    const bad = [
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n',
      'HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n',
      'HTTP/1.1 200 OK\nContent-Length: 0\n\n',
      'HTTP/2 200\r\n\r\n',
      'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
    ];
    for (const text of bad) expect(() => parse([text]), text).toThrow();
  });

  it('says which valid responses it leaves to undici', () => {
    let error: unknown;
    try {
      parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n']);
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ name: 'ResponseParseError', unsupported: true });
  });

  it('throws when the connection closes before a framed body ended', () => {
    expect(() => parse(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'], { close: true })).toThrow(
      /closed before/,
    );
    expect(() =>
      parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'], { close: true }),
    ).toThrow();
    expect(() => parse(['HTTP/1.1 200 O'], { close: true })).toThrow();
  });

  it('refuses a head larger than its limit instead of buffering it', () => {
    const huge = `HTTP/1.1 200 OK\r\n${'X-Filler: yes\r\n'.repeat(5000)}\r\n`;
    expect(() => parse([huge])).toThrow(/too large/);
  });
});
