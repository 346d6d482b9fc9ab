// The framing of one HTTP/1.1 response, parsed as its bytes arrive in pieces split anywhere:
// status line, header fields, 1xx interim responses (skipped), and a body delimited by
// Content-Length, chunked coding (extensions ignored, trailers kept) or the connection's close
// (RFC 9112 §6.3). Body bytes are handed over as views of the caller's buffer, never copied: the
// caller must use them before its next execute(). Pure: no sockets, no timers.

/** Response header fields as undici gives them: lower-case names, repeated fields as arrays. */
export type Fields = Record<string, string | string[]>;

export interface ResponseHead {
  readonly statusCode: number;
  readonly headers: Fields;
  /** The connection may carry another request once this response ends. */
  readonly keepAlive: boolean;
}

export interface ParserHandlers {
  /** The final (non-1xx) response's head, before any of its body. */
  head(head: ResponseHead): void;
  /** Body bytes: a view valid only until execute() returns. */
  body(view: Buffer): void;
  /** The message ended; `trailers` from a chunked body (empty otherwise). */
  done(trailers: Fields): void;
}

/** The bytes are not an HTTP/1.1 response this parser reads. `unsupported`: valid, but not handled here. */
export class ResponseParseError extends Error {
  readonly unsupported: boolean;
  constructor(message: string, unsupported = false) {
    super(message);
    this.name = 'ResponseParseError';
    this.unsupported = unsupported;
  }
}

/** Bytes of a head (status line and fields) or of a trailer section beyond which it is refused. */
export const MAX_HEAD = 64 * 1024;
const MAX_LINE = 8 * 1024;
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const CHUNK_SIZE =
  /^([0-9a-fA-F]{1,12})(?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"[^"\\]*"))?)*$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?$/;

type State = 'head' | 'length' | 'close' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'done';

export class ResponseParser {
  readonly #noBody: boolean;
  readonly #handlers: ParserHandlers;
  #state: State = 'head';
  /** The line being assembled across pieces (head and trailer fields, chunk sizes). */
  #line = '';
  /** The lines of the head or trailer section so far. */
  #lines: string[] = [];
  #sectionBytes = 0;
  /** Body bytes left in the message (`length`) or in the current chunk (`chunk-data`). */
  #left = 0;
  #keepAlive = false;
  /** Bytes that came after the end of the message (a connection that cannot be reused). */
  extra = 0;

  /** `method`: the request's (a HEAD response has no body). */
  constructor(method: string, handlers: ParserHandlers) {
    this.#noBody = method === 'HEAD';
    this.#handlers = handlers;
  }

  get done(): boolean {
    return this.#state === 'done';
  }

  /** Whether the response so far has started its body (a retry elsewhere would repeat bytes). */
  get inBody(): boolean {
    return this.#state !== 'head';
  }

  /** Parses `data`; throws ResponseParseError on bytes that break the framing. */
  execute(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      switch (this.#state) {
        case 'head':
        case 'chunk-size':
        case 'chunk-end':
        case 'trailers':
          at = this.#readLines(data, at);
          break;
        case 'length':
        case 'chunk-data': {
          const count = Math.min(this.#left, data.length - at);
          this.#left -= count;
          const view = data.subarray(at, at + count);
          at += count;
          if (this.#left === 0) this.#state = this.#state === 'length' ? 'done' : 'chunk-end';
          this.#handlers.body(view);
          if (this.#state === 'done') this.#finish({});
          break;
        }
        case 'close':
          this.#handlers.body(at === 0 ? data : data.subarray(at));
          at = data.length;
          break;
        case 'done':
          this.extra += data.length - at;
          return;
      }
    }
  }

  /** The connection closed: ends a close-delimited body, or throws when the message was cut short. */
  end(): void {
    if (this.#state === 'close') {
      this.#state = 'done';
      this.#handlers.done({});
    } else if (this.#state !== 'done') {
      throw new ResponseParseError(`the connection closed before the response ended (${this.#state})`);
    }
  }

  /** Reads CRLF-terminated lines from `at`; returns where it stopped. */
  #readLines(data: Buffer, at: number): number {
    while (at < data.length && this.#inLines()) {
      const newline = data.indexOf(10, at);
      const end = newline === -1 ? data.length : newline;
      this.#line += data.toString('latin1', at, end);
      this.#sectionBytes += end - at + (newline === -1 ? 0 : 1);
      if (this.#line.length > MAX_LINE || this.#sectionBytes > MAX_HEAD)
        throw new ResponseParseError('response head or trailers too large');
      at = end;
      if (newline === -1) break;
      at += 1;
      if (!this.#line.endsWith('\r')) throw new ResponseParseError('bare LF in the response framing');
      const line = this.#line.slice(0, -1);
      this.#line = '';
      // A bare CR or another control character (tabs aside) is where readers disagree: refused.
      if (CONTROL.test(line)) throw new ResponseParseError('control character in the response framing');
      this.#onLine(line);
    }
    return at;
  }

  #inLines(): boolean {
    const state = this.#state;
    return state === 'head' || state === 'chunk-size' || state === 'chunk-end' || state === 'trailers';
  }

  #onLine(line: string): void {
    switch (this.#state) {
      case 'head':
        if (line !== '') this.#lines.push(line);
        else if (this.#lines.length > 0) this.#onHead();
        else throw new ResponseParseError('empty line before the status line');
        return;
      case 'chunk-size':
        return this.#onChunkSize(line);
      case 'chunk-end':
        if (line !== '') throw new ResponseParseError('chunk data longer than its size');
        this.#state = 'chunk-size';
        return;
      case 'trailers':
        if (line !== '') this.#lines.push(line);
        else this.#finish(parseFields(this.#lines));
        return;
    }
  }

  #onHead(): void {
    const [statusLine, ...fieldLines] = this.#lines;
    this.#lines = [];
    this.#sectionBytes = 0;
    const match = STATUS_LINE.exec(statusLine!);
    if (!match)
      throw new ResponseParseError(
        `not an HTTP/1.x status line: ${JSON.stringify(statusLine!.slice(0, 40))}`,
      );
    const statusCode = Number(match[2]);
    const headers = parseFields(fieldLines);
    if (statusCode === 101) throw new ResponseParseError('101 Switching Protocols to a GET', true);
    if (statusCode < 100 || statusCode > 599) throw new ResponseParseError(`status ${statusCode}`);
    if (statusCode < 200) {
      // Interim (100, 103): the final response follows. HTTP/1.0 has none: a server that says so is confused.
      if (match[1] === '0') throw new ResponseParseError(`HTTP/1.0 ${statusCode}`);
      return;
    }
    const connection = commaList(headers['connection']);
    const http10 = match[1] === '0';
    this.#keepAlive = http10 ? connection.includes('keep-alive') : !connection.includes('close');
    this.#frame(statusCode, headers);
    this.#handlers.head({ statusCode, headers, keepAlive: this.#keepAlive });
    if (this.#state === 'done') this.#finish({});
  }

  /** RFC 9112 §6.3: which framing the body has. */
  #frame(statusCode: number, headers: Fields): void {
    const coding = headers['transfer-encoding'];
    // Checked even where no body follows, as undici does: bad framing fields mean a bad server.
    if (coding !== undefined && headers['content-length'] !== undefined)
      throw new ResponseParseError('both Transfer-Encoding and Content-Length');
    const length =
      headers['content-length'] === undefined ? undefined : contentLength(headers['content-length']);
    if (this.#noBody || statusCode === 204 || statusCode === 304) {
      this.#state = 'done';
    } else if (coding !== undefined) {
      const codings = commaList(coding);
      if (codings.length !== 1 || codings[0] !== 'chunked')
        throw new ResponseParseError(`transfer coding ${codings.join(', ')}`, true);
      this.#state = 'chunk-size';
    } else if (length !== undefined) {
      this.#left = length;
      this.#state = this.#left === 0 ? 'done' : 'length';
    } else {
      this.#keepAlive = false;
      this.#state = 'close';
    }
  }

  #onChunkSize(line: string): void {
    // Hex digits, then extensions (ignored): `;name` or `;name=value`, a token or a quoted string.
    const match = CHUNK_SIZE.exec(line);
    if (!match) throw new ResponseParseError('bad chunk size');
    this.#left = Number.parseInt(match[1]!, 16);
    this.#state = this.#left === 0 ? 'trailers' : 'chunk-data';
  }

  #finish(trailers: Fields): void {
    this.#state = 'done';
    this.#lines = [];
    this.#handlers.done(trailers);
  }

  get keepAlive(): boolean {
    return this.#keepAlive && this.extra === 0;
  }
}

function parseFields(lines: readonly string[]): Fields {
  const fields: Fields = {};
  for (const line of lines) {
    if (line.startsWith(' ') || line.startsWith('\t')) throw new ResponseParseError('obsolete line folding');
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name))
      throw new ResponseParseError(`bad header field name: ${JSON.stringify(name.slice(0, 40))}`);
    // Leading whitespace only, as undici (llhttp) does: the same bytes give the same fields.
    const value = line.slice(colon + 1).replace(/^[ \t]+/, '');
    const key = name.toLowerCase();
    const seen = fields[key];
    if (seen === undefined) fields[key] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else fields[key] = [seen, value];
  }
  return fields;
}

function commaList(value: string | string[] | undefined): string[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return values
    .flatMap((item) => item.split(','))
    .map((item) => item.trim().toLowerCase())
    .filter(Boolean);
}

/** One Content-Length: repeated fields (or a list) must all be the same number. */
function contentLength(value: string | string[]): number {
  const values = commaList(value);
  const first = values[0];
  if (first === undefined || !/^[0-9]{1,15}$/.test(first) || values.some((item) => item !== first))
    throw new ResponseParseError(`bad Content-Length: ${String(value)}`);
  return Number(first);
}
