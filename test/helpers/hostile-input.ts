// fast-check generators of hostile client input for fuzzing the proxy (test/integration/
// fuzz.test.ts): raw request lines, headers and framing; registry requests with adversarial
// names, references and digests; TLS garbage. Hostile target strings are generated freely, but
// every message that reaches the proxy passes `onlyLoopback`, so that whatever the proxy makes
// of it, it connects nowhere but loopback.
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import fc from 'fast-check';
import { parseAuthority } from '../../src/http/destination.ts';
import { isLoopbackLiteral } from './loopback-guard.ts';

/**
 * Whether no token of `message` could make the proxy connect beyond loopback: every one that
 * parses as `host:port` (a CONNECT target) or as a URL (an absolute-form target) names a loopback
 * IP literal. Tokens are cut both where HTTP parsers cut them and at any whitespace or NUL.
 */
export function onlyLoopback(message: Buffer): boolean {
  const text = message.toString('latin1');
  for (const token of [...text.split(/[ \r\n]+/), ...text.split(/[\s\0]+/)]) {
    const authority = parseAuthority(token);
    if (authority && !isLoopbackLiteral(authority.host)) return false;
    const url = URL.parse(token);
    if (url && url.hostname !== '' && !isLoopbackLiteral(url.hostname)) return false;
  }
  return true;
}

/** The first TLS record a real client sends (its ClientHello), captured without any network. */
export async function clientHello(): Promise<Buffer> {
  let capture: (chunk: Buffer) => void = () => undefined;
  const captured = new Promise<Buffer>((resolve) => (capture = resolve));
  const carrier = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      capture(chunk);
      callback();
    },
  });
  const client = tls.connect({ socket: carrier, servername: 'registry.test' });
  client.on('error', () => undefined);
  const hello = await captured;
  client.destroy();
  return hello;
}

const hex = (length: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });

/** Anything at all, weighted towards text that parsers find interesting. */
const junk = (maxLength: number) =>
  fc.oneof(
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    fc.string({ unit: fc.constantFrom(...'/.%2eE\\:@?#&=;,[]{}"\'*~ \t\r\n\0'), maxLength }),
  );

// ---------------------------------------------------------------------------------------------
// Registry requests, sent inside a TLS connection intercepted by the proxy. Mostly text that
// HTTP parsers accept, so that most requests reach the registry handler; some raw junk still.

/** Junk with everything but visible ASCII percent-encoded (as UTF-8), as a client would send it. */
const pathText = (maxLength: number) =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: junk(maxLength).map((text) =>
        text.replace(/[^\x21-\x7e]/gu, (char) =>
          [...Buffer.from(char)]
            .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)
            .join(''),
        ),
      ),
    },
    junk(maxLength),
  );

/** Printable ASCII mostly; raw junk (CR, LF, NUL, non-ASCII) sometimes. */
const headerText = (maxLength: number) =>
  fc.oneof({ weight: 8, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength }) }, junk(maxLength));

export interface Vocabulary {
  readonly names: readonly string[];
  readonly tags: readonly string[];
  readonly digests: readonly string[];
  /** Paths of content upstream has (blobs, manifests by tag and by digest). */
  readonly known: readonly string[];
}

function names(vocabulary: Vocabulary) {
  const component = fc.stringMatching(/^[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4})?$/);
  return fc.oneof(
    { arbitrary: fc.constantFrom(...vocabulary.names), weight: 4 },
    fc.array(component, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')),
    fc.constantFrom(
      '..',
      '.',
      '../..',
      'a/../../..',
      '%2e%2e',
      '%2E%2E/%2e%2e/x',
      'a/./b',
      'a//b',
      '/a',
      'a/',
      'Library/App',
      'a\\b',
      '..\\..\\x',
      'a%2fb',
      'a%00b',
      'ä',
      'é/ü',
      '\u202etxt.exe',
      '-a',
      'a-',
      'a..b',
      'a___b',
      'a'.repeat(256),
      `${'a/'.repeat(127)}a`,
      `${'ab/'.repeat(86)}a`,
    ),
    pathText(40),
  );
}

function digests(vocabulary: Vocabulary) {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...vocabulary.digests), weight: 4 },
    hex(64).map((h) => `sha256:${h}`),
    hex(128).map((h) => `sha512:${h}`),
    hex(64).chain((h) =>
      fc.constantFrom(
        `sha256:${h.toUpperCase()}`,
        `SHA256:${h}`,
        `sha256:${h.slice(1)}`,
        `sha256:${h}0`,
        `sha512:${h}`,
        `sha384:${h}`,
        `sha256+b64:${h}`,
        `sha256:${h.slice(0, 40)}/../../${h.slice(0, 20)}`,
        `sha256:${h}%2f..`,
      ),
    ),
    fc.constantFrom(
      'sha256:../../x',
      'sha256:..%2f..%2fx',
      `sha256:${'../'.repeat(30)}etc/passwd`,
      'sha256:',
      'sha256',
      ':',
      '',
      'md5:d41d8cd98f00b204e9800998ecf8427e',
    ),
    fc
      .tuple(fc.constantFrom('sha256', 'sha512', 'sha1', 'x'), pathText(140))
      .map(([algorithm, encoded]) => `${algorithm}:${encoded}`),
  );
}

function references(vocabulary: Vocabulary) {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...vocabulary.tags), weight: 4 },
    fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}$/),
    fc.constantFrom('.', '..', '-x', '.x', 'a'.repeat(128), 'a'.repeat(129), 'x:y', 'x/y', '%2e%2e', 'ä', ''),
    digests(vocabulary),
    pathText(30),
  );
}

function registryPaths(vocabulary: Vocabulary) {
  const name = names(vocabulary);
  const query = fc.option(
    fc.oneof(
      fc.constantFrom(
        'n=5&last=a',
        'scope=repository:a:pull&service=x',
        'digest=sha256:00',
        '%',
        '&&==',
        'x=%zz',
      ),
      pathText(30),
    ),
    { nil: undefined },
  );
  const route = fc.oneof(
    { arbitrary: fc.constantFrom(...vocabulary.known), weight: 3 },
    fc.tuple(name, digests(vocabulary)).map(([n, d]) => `/v2/${n}/blobs/${d}`),
    fc.tuple(name, references(vocabulary)).map(([n, r]) => `/v2/${n}/manifests/${r}`),
    name.map((n) => `/v2/${n}/tags/list`),
    fc.tuple(name, pathText(20)).map(([n, u]) => `/v2/${n}/blobs/uploads/${u}`),
    fc.tuple(name, digests(vocabulary)).map(([n, d]) => `/v2/${n}/referrers/${d}`),
    fc.constantFrom(
      '/v2/',
      '/v2',
      '/v2/_catalog',
      '/token',
      '/v2/token',
      '*',
      '//[',
      '//a:99999/token',
      '/v2/%',
      '/v2/..',
      '/v2/../../etc/passwd',
      '/v2/%2e%2e/%2e%2e/blobs/sha256:0',
      'http://127.0.0.1:1/v2/',
      'https://[::1]:1/v2/',
      'http://[',
      'v2/a/blobs/x',
    ),
    pathText(60).map((s) => `/v2/${s}`),
    junk(60),
  );
  return fc.tuple(route, query).map(([p, q]) => (q === undefined ? p : `${p}?${q}`));
}

const headerLines = fc.array(
  fc.oneof(
    fc
      .oneof(
        fc.constantFrom(
          'bytes=0-0',
          'bytes=-1',
          'bytes=0-',
          'bytes=5-1',
          'bytes=abc',
          'bytes=-',
          'bytes=',
          'bytes=-0',
          'bytes=0-1,2-3',
          'bytes=99999999999999999999-',
          'bytes=-99999999999999999999',
          'bytes=1e3-',
          'items=0-1',
          'bytes = 0-1',
        ),
        headerText(30),
      )
      .map((value) => `Range: ${value}`),
    fc
      .oneof(
        fc.constantFrom(
          '*/*',
          'application/vnd.oci.image.manifest.v1+json;q=0',
          'application/vnd.docker.distribution.manifest.v2+json, */*;q=x',
          'text/html',
          `${'a/b, '.repeat(500)}c/d`,
        ),
        headerText(60),
      )
      .map((value) => `Accept: ${value}`),
    fc
      .oneof(fc.constantFrom('Bearer ', 'Bearer x', 'Basic %%%', 'Basic Og==', 'Negotiate'), headerText(40))
      .map((value) => `Authorization: ${value}`),
    fc
      .tuple(
        fc.constantFrom(
          'If-None-Match',
          'If-Range',
          'If-Modified-Since',
          'Docker-Content-Digest',
          'X-Forwarded-For',
        ),
        headerText(40),
      )
      .map(([header, value]) => `${header}: ${value}`),
    fc
      .tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/), headerText(40))
      .map(([header, value]) => `${header}: ${value}`),
  ),
  { maxLength: 6 },
);

interface Framing {
  readonly lines: readonly string[];
  readonly body: Buffer;
  /** The request ends where it says: the proxy has all of it and must answer. */
  readonly complete: boolean;
}

const framings: fc.Arbitrary<Framing> = fc.oneof(
  { arbitrary: fc.constant({ lines: [], body: Buffer.alloc(0), complete: true }), weight: 4 },
  fc.uint8Array({ maxLength: 2048 }).map((bytes) => ({
    lines: [`Content-Length: ${bytes.length}`],
    body: Buffer.from(bytes),
    complete: true,
  })),
  fc.uint8Array({ minLength: 1, maxLength: 512 }).map((bytes) => ({
    lines: ['Transfer-Encoding: chunked'],
    body: Buffer.concat([
      Buffer.from(`${bytes.length.toString(16)}\r\n`),
      bytes,
      Buffer.from('\r\n0\r\n\r\n'),
    ]),
    complete: true,
  })),
  fc.constantFrom<Framing>(
    { lines: ['Content-Length: 1', 'Content-Length: 2'], body: Buffer.from('ab'), complete: false },
    {
      lines: ['Content-Length: 3', 'Transfer-Encoding: chunked'],
      body: Buffer.from('0\r\n\r\n'),
      complete: false,
    },
    { lines: ['Transfer-Encoding: chunked, identity'], body: Buffer.from('0\r\n\r\n'), complete: false },
    { lines: ['Transfer-Encoding: chunked'], body: Buffer.from('zz\r\nab\r\n0\r\n\r\n'), complete: false },
    { lines: ['Content-Length: 100'], body: Buffer.from('short'), complete: false },
    { lines: ['Content-Length: -1'], body: Buffer.alloc(0), complete: false },
  ),
);

export interface RegistryRequest {
  readonly method: string;
  readonly target: string;
  readonly bytes: Buffer;
  /** Well framed, with no CR or LF smuggled into the request line or headers. */
  readonly framed: boolean;
}

export function registryRequests(vocabulary: Vocabulary): fc.Arbitrary<RegistryRequest> {
  return fc
    .tuple(
      fc.oneof(
        { arbitrary: fc.constantFrom('GET', 'HEAD'), weight: 4 },
        fc.constantFrom('PUT', 'DELETE', 'PATCH', 'POST', 'OPTIONS'),
      ),
      registryPaths(vocabulary),
      headerLines,
      framings,
    )
    .map(([method, target, lines, framing]) => {
      const head = [`${method} ${target} HTTP/1.1`, 'Host: registry.test', ...lines, ...framing.lines];
      const injected = head.some((line) => /[\r\n]/.test(line));
      return {
        method,
        target,
        bytes: Buffer.concat([
          Buffer.from(`${head.join('\r\n')}\r\nConnection: close\r\n\r\n`),
          framing.body,
        ]),
        framed: framing.complete && !injected,
      };
    });
}

// ---------------------------------------------------------------------------------------------
// Raw bytes and request lines, sent on a plain TCP connection to the proxy port.

export interface Targets {
  /** host:port targets that are refused or reach only loopback. */
  readonly authorities: readonly string[];
}

function connectTargets(targets: Targets) {
  return fc.oneof(
    fc.constantFrom(...targets.authorities),
    fc.constantFrom(
      '',
      ':443',
      '127.0.0.1',
      '127.0.0.1:',
      '127.0.0.1:0',
      '127.0.0.1:65536',
      '127.0.0.1:99999999999999999999',
      '127.0.0.1:-1',
      '127.0.0.1:+1',
      '127.0.0.1:1.5',
      '127.0.0.1:443:443',
      '[::1]',
      '::1:443',
      '[::1:443',
      '[127.0.0.1]:443',
      'ex$ample..invalid:0',
      '-bad-.invalid:0',
      'a..b:0',
      '%31%32%37.0.0.1:0',
      `${'a'.repeat(70)}.invalid:0`,
      '*',
      '/v2/',
    ),
    junk(80),
  );
}

function requestTargets(targets: Targets) {
  const suffix = fc.oneof(fc.constantFrom('/', '/healthz', '/v2/', '/ca.crt', '/%', '/..%2f..'), junk(30));
  return fc.oneof(
    fc.constantFrom('/', '/healthz', '/ca.crt', '/healthz?x=1', '//', '/%', '*'),
    fc.tuple(fc.constantFrom(...targets.authorities), suffix).map(([a, s]) => `http://${a}${s}`),
    fc.tuple(fc.constantFrom(...targets.authorities), suffix).map(([a, s]) => `http://user:pass@${a}${s}`),
    fc.constantFrom(
      'http://',
      'http:///x',
      'http://:80/',
      'http://[::1/',
      'http://a b/',
      'http://%zz/',
      'http://ex$ample.invalid/',
      'https://127.0.0.1:1/',
      'ftp://127.0.0.1:1/',
      'HTTP://127.0.0.1:1/',
      'http:127.0.0.1:1/',
    ),
    junk(60),
  );
}

const methods = fc.oneof(
  fc.constantFrom(
    'GET',
    'HEAD',
    'POST',
    'PUT',
    'DELETE',
    'OPTIONS',
    'TRACE',
    'PATCH',
    'CONNECT',
    'PRI',
    'get',
  ),
  fc.stringMatching(/^[A-Z]{1,12}$/),
  junk(10),
);

const versions = fc.oneof(
  fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1 x', 'http/1.1', 'HTTP/1.10', ''),
  junk(10),
);

const rawHeaders = fc.oneof(
  headerLines.map((lines) => lines.join('\r\n')),
  fc.constantFrom(
    'Content-Length: 5\r\nContent-Length: 6',
    'Content-Length: 5\r\nTransfer-Encoding: chunked',
    'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity',
    'Transfer-Encoding: xchunked',
    'Transfer-Encoding:\tchunked',
    'Transfer-Encoding : chunked',
    'X-Folded: a\r\n b',
    'X-Nul: a\0b',
    'X-Bare-Cr: a\rb',
    'X-Bare-Lf: a\nb',
    ': no-name',
    'No-Colon',
    'Host: a\r\nHost: b',
    'Expect: 100-continue',
    'Connection: upgrade\r\nUpgrade: websocket',
    'Connection: keep-alive, Content-Length',
    'Proxy-Connection: keep-alive',
  ),
  fc
    .integer({ min: 90, max: 3_000 })
    .map((count) => Array.from({ length: count }, (_, i) => `X-H${i}: v`).join('\r\n')),
  fc.integer({ min: 8_000, max: 80_000 }).map((size) => `X-Big: ${'a'.repeat(size)}`),
);

export function rawMessages(targets: Targets): fc.Arbitrary<Buffer> {
  const requestLike = fc
    .tuple(
      fc.oneof(
        fc.tuple(fc.constant('CONNECT'), connectTargets(targets)),
        fc.tuple(methods, requestTargets(targets)),
      ),
      versions,
      rawHeaders,
      fc.constantFrom('\r\n', '\n', ''),
      fc.oneof(fc.constant(''), fc.constant('0\r\n\r\n'), junk(200)),
    )
    .map(([[method, target], version, headers, blank, body]) => {
      const head = [`${method} ${target} ${version}`, ...(headers === '' ? [] : [headers])].join('\r\n');
      return Buffer.from(`${head}\r\n${blank}${body}`, 'utf8');
    });
  return fc
    .oneof(
      { arbitrary: requestLike, weight: 5 },
      fc.uint8Array({ maxLength: 4096 }).map((bytes) => Buffer.from(bytes)),
      fc
        .integer({ min: 1, max: 120_000 })
        .map((size) => Buffer.from(`GET /${'a'.repeat(size)} HTTP/1.1\r\n\r\n`)),
      fc
        .tuple(fc.constantFrom(...targets.authorities), fc.uint8Array({ maxLength: 1024 }))
        .map(([authority, bytes]) =>
          Buffer.concat([Buffer.from(`CONNECT ${authority} HTTP/1.1\r\n\r\n`), Buffer.from(bytes)]),
        ),
      // A valid request, then a second one smuggled behind it.
      fc
        .constantFrom(
          'POST /healthz HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /ca.crt HTTP/1.1\r\n\r\n',
          'GET /healthz HTTP/1.1\r\nContent-Length: 30\r\n\r\nGET /ca.crt HTTP/1.1\r\nX: y\r\n\r\n',
          'GET /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n',
        )
        .map((text) => Buffer.from(text)),
    )
    .filter(onlyLoopback);
}

/** What a client might send instead of a ClientHello: noise, a truncated or corrupted hello, a bogus record. */
export function tlsGarbage(hello: Buffer): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 4096 }).map((bytes) => Buffer.from(bytes)),
    fc.integer({ min: 0, max: hello.length - 1 }).map((n) => hello.subarray(0, n)),
    fc
      .tuple(fc.integer({ min: 0, max: hello.length - 1 }), fc.integer({ min: 1, max: 255 }))
      .map(([at, flip]) => {
        const copy = Buffer.from(hello);
        copy[at] = (copy[at] ?? 0) ^ flip;
        return copy;
      }),
    fc
      .uint8Array({ maxLength: 64 })
      .map((bytes) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), bytes])),
    fc
      .uint8Array({ maxLength: 64 })
      .map((bytes) => Buffer.concat([Buffer.from([0x80, 0xff, 0x01, 0x03, 0x01]), bytes])),
    fc.constant(Buffer.from('GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n')),
  );
}
