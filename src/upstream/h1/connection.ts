// One upstream connection of the own blob reader: a socket (TLS or plain TCP) that reads into one
// reused buffer of its own (`onread`), or into memory its body's reader lends, carrying one
// request at a time, and the exchange of that request: the request written, the response parsed
// as it arrives (response-parser.ts), its head handed over, its body delivered as views
// (body.ts). Timeouts as undici's: for the head, and for a body that stops moving while the
// reader wants more.
import net from 'node:net';
import tls from 'node:tls';
import { UpstreamBody } from './body.ts';
import { ResponseParser, type ResponseHead } from './response-parser.ts';

/** A TLS record is 16 KiB; a plain socket read fills up to this much. */
const READ_BUFFER = 64 * 1024;

export interface DialOptions {
  readonly host: string;
  readonly port: number;
  /** TLS when set (the server name, or undefined for an IP literal); plain TCP otherwise. */
  readonly tls?: {
    readonly servername: string | undefined;
    readonly secureContext: tls.SecureContext;
    readonly rejectUnauthorized: boolean;
  };
  readonly connectTimeoutMs: number;
}

export interface ExchangeOptions {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

export interface Response {
  readonly head: ResponseHead;
  readonly body: UpstreamBody;
}

/** An error with the code undici would give, so that errors.ts maps it the same way. */
export function codedError(code: string, message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code });
}

interface Exchange {
  readonly parser: ResponseParser;
  readonly resolve: (response: Response) => void;
  readonly reject: (error: Error) => void;
  body: UpstreamBody | undefined;
  timer: NodeJS.Timeout | undefined;
  paused: boolean;
  /** The parser saw the end of the response; completed once the bytes at hand are parsed. */
  ended: boolean;
}

export class Connection {
  readonly socket: net.Socket;
  /** Told when the connection may take another request, or is gone (`reusable` false). */
  #released: ((reusable: boolean) => void) | undefined;
  #exchange: Exchange | undefined;
  #bodyTimeoutMs = 0;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#closed());
  }

  /** Connects (and completes the TLS handshake) within connectTimeoutMs. */
  static dial(options: DialOptions): Promise<Connection> {
    // Set once the socket exists; Node may ask for the first buffer before that.
    const made: { connection?: Connection } = {};
    const own = Buffer.allocUnsafe(READ_BUFFER);
    const onread = {
      // Asked before each read: where it lands. A body's reader may lend memory of its own
      // (UpstreamBody.space), so that the bytes land where they are kept instead of being copied.
      buffer: (): Buffer => made.connection?.readSpace() ?? own,
      // Reads start once connected, after `connection` below is set.
      callback: (count: number, buffer: Buffer): boolean =>
        made.connection!.onRead(buffer.subarray(0, count)),
    };
    const { host, port } = options;
    const socket: net.Socket = options.tls
      ? tls.connect({
          host,
          port,
          ...(options.tls.servername ? { servername: options.tls.servername } : {}),
          secureContext: options.tls.secureContext,
          rejectUnauthorized: options.tls.rejectUnauthorized,
          ALPNProtocols: ['http/1.1'],
          // Documented for tls.connect (ignored when given a `socket`), missing from @types/node.
          onread,
        } as tls.ConnectionOptions)
      : net.connect({ host, port, onread });
    const connection = new Connection(socket);
    made.connection = connection;
    socket.setNoDelay(true);
    return new Promise<Connection>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy(
          codedError('UND_ERR_CONNECT_TIMEOUT', `connect timeout after ${options.connectTimeoutMs} ms`),
        );
      }, options.connectTimeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      socket.once('error', fail);
      socket.once(options.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        resolve(connection);
      });
    });
  }

  get idle(): boolean {
    return this.#exchange === undefined && !this.socket.destroyed;
  }

  /** Sends one request; resolves with the response head and its body. */
  send(options: ExchangeOptions, released: (reusable: boolean) => void): Promise<Response> {
    if (!this.idle) return Promise.reject(new Error('the connection is busy or closed'));
    this.#released = released;
    this.#bodyTimeoutMs = options.bodyTimeoutMs;
    return new Promise<Response>((resolve, reject) => {
      const exchange: Exchange = {
        parser: new ResponseParser(options.method, {
          head: (head) => this.#onHead(exchange, head),
          // Once the exchange failed (its body destroyed by its reader, say), the rest is ignored.
          body: (view) => {
            if (this.#exchange === exchange) exchange.body!.deliver(view);
          },
          done: () => (exchange.ended = this.#exchange === exchange),
        }),
        resolve,
        reject,
        body: undefined,
        timer: undefined,
        paused: false,
        ended: false,
      };
      this.#exchange = exchange;
      this.#arm(exchange, options.headersTimeoutMs, 'UND_ERR_HEADERS_TIMEOUT', 'headers');
      this.socket.write(requestHead(options));
      this.socket.resume();
    });
  }

  /** Memory the body's reader lends for the next read, or undefined for the connection's own. */
  readSpace(): Buffer | undefined {
    const space = this.#exchange?.body?.space();
    // A read into no memory at all fails the socket (ENOBUFS).
    return space !== undefined && space.length > 0 ? space : undefined;
  }

  /** Bytes from the socket (a view of its buffer). False asks the socket to stop reading. */
  onRead(view: Buffer): boolean {
    const exchange = this.#exchange;
    if (!exchange) {
      // Nothing was asked: a server that talks out of turn cannot be trusted with the next request.
      this.socket.destroy();
      return false;
    }
    try {
      exchange.parser.execute(view);
    } catch (error) {
      this.#fail(error as Error);
      return false;
    }
    if (exchange.ended) {
      this.#complete(exchange);
      return true;
    }
    if (exchange.paused || this.#exchange !== exchange) return false;
    exchange.timer?.refresh();
    return true;
  }

  #onHead(exchange: Exchange, head: ResponseHead): void {
    exchange.body = new UpstreamBody({
      pause: () => {
        exchange.paused = true;
        // A reader that is slow is not an upstream that is: no body timeout while it waits.
        clearTimeout(exchange.timer);
      },
      resume: () => {
        if (!exchange.paused || this.#exchange !== exchange) return;
        exchange.paused = false;
        this.#arm(exchange, this.#bodyTimeoutMs, 'UND_ERR_BODY_TIMEOUT', 'body');
        this.socket.resume();
      },
      abort: (error) => {
        if (this.#exchange === exchange) this.#fail(error);
      },
    });
    this.#arm(exchange, this.#bodyTimeoutMs, 'UND_ERR_BODY_TIMEOUT', 'body');
    exchange.resolve({ head, body: exchange.body });
  }

  /** The response ended: the connection goes back for reuse (or closes), the body ends. */
  #complete(exchange: Exchange): void {
    clearTimeout(exchange.timer);
    this.#exchange = undefined;
    // Read after the whole view is parsed: bytes past the end make the connection unusable.
    const reusable = exchange.parser.keepAlive;
    if (!reusable) this.socket.destroy();
    this.#release(reusable);
    exchange.body?.finish();
  }

  #arm(exchange: Exchange, ms: number, code: string, what: string): void {
    clearTimeout(exchange.timer);
    if (ms <= 0) return;
    exchange.timer = setTimeout(() => this.#fail(codedError(code, `${what} timeout after ${ms} ms`)), ms);
    exchange.timer.unref();
  }

  #closed(): void {
    const exchange = this.#exchange;
    if (exchange) {
      try {
        exchange.parser.end();
        this.#complete(exchange);
      } catch (error) {
        this.#fail(codedError('UND_ERR_SOCKET', (error as Error).message, error));
      }
    }
    this.#release(false);
  }

  #fail(error: Error): void {
    const exchange = this.#exchange;
    this.#exchange = undefined;
    this.socket.destroy();
    if (exchange) {
      clearTimeout(exchange.timer);
      if (exchange.body) exchange.body.fail(error);
      else exchange.reject(error);
    }
    this.#release(false);
  }

  #release(reusable: boolean): void {
    const released = this.#released;
    this.#released = undefined;
    released?.(reusable);
  }
}

function requestHead(options: ExchangeOptions): string {
  let head = `${options.method} ${options.path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(options.headers))
    for (const item of Array.isArray(value) ? value : [value]) head += `${name}: ${item}\r\n`;
  return `${head}\r\n`;
}
