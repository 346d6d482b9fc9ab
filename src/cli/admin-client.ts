// The admin API of a running server as the `cache` commands reach it: Bearer token, JSON
// answers, failures as one line that says what to do (no server there, the API off, a refused
// token), and a wait while a cluster's cache bookkeeper changes hands (503 with Retry-After).
import { request } from 'undici';

export class ServerUnreachableError extends Error {
  override readonly name = 'ServerUnreachableError';
}

export type AdminMethod = 'GET' | 'DELETE' | 'POST';

export interface AdminClientOptions {
  /** Waits `ms` between attempts (tests give one that does not sleep). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Told once, before the first wait: one line for the operator (stderr). */
  readonly notice?: (line: string) => void;
  readonly now?: () => number;
}

export interface CallOptions {
  /**
   * Whether the request may be sent again after a 503 with Retry-After: a GET always may; a
   * request that changes something only when sending it twice leaves the same state as once.
   */
  readonly repeatable?: boolean;
}

/** Retry-After is at most this long for us: a server saying "come back in an hour" is not waited for. */
const MAX_RETRY_AFTER_S = 60;
/** And at least this long: `Retry-After: 0` is not a busy loop. */
const MIN_RETRY_AFTER_MS = 250;

interface Answer {
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly text: string;
}

export class AdminClient {
  readonly #server: string;
  readonly #token: string | undefined;
  readonly #options: AdminClientOptions;

  constructor(server: string, token: string | undefined, options: AdminClientOptions = {}) {
    this.#server = server.replace(/\/+$/, '');
    this.#token = token;
    this.#options = options;
  }

  /**
   * The JSON answer of `method path`. A 503 with Retry-After (no cache bookkeeper can answer
   * now: a survivor takes the books within cluster.leaseTtl) is waited out for a repeatable
   * request, as long as the server says each time, up to twice its first Retry-After in all.
   */
  async call<T>(method: AdminMethod, path: string, options: CallOptions = {}): Promise<T> {
    const repeatable = method === 'GET' || options.repeatable === true;
    const now = this.#options.now ?? Date.now;
    let deadline: number | undefined;
    for (;;) {
      const answer = await this.#send(method, path);
      const wait = answer.status === 503 && repeatable ? retryAfterMs(answer.retryAfter, now()) : undefined;
      if (wait === undefined) return this.#read<T>(answer, path);
      if (deadline === undefined) {
        deadline = now() + 2 * wait;
        this.#options.notice?.(
          `the cache bookkeeper is changing hands; retrying for up to ${Math.ceil((2 * wait) / 1000)} s`,
        );
      }
      const left = deadline - now();
      if (left <= 0) return this.#read<T>(answer, path);
      await (this.#options.sleep ?? sleep)(Math.min(wait, left));
    }
  }

  async #send(method: AdminMethod, path: string): Promise<Answer> {
    try {
      const res = await request(`${this.#server}${path}`, {
        method,
        headers: this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` },
        headersTimeout: 600_000,
      });
      const retryAfter = res.headers['retry-after'];
      return {
        status: res.statusCode,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        text: await res.body.text(),
      };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH') {
        throw new ServerUnreachableError(`no server answers at ${this.#server} (${code})`, { cause: error });
      }
      throw new Error(`${this.#server}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** The body of a 200; anything else as the one line that says what went wrong. */
  #read<T>({ status, text }: Answer, path: string): T {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(
        `${this.#server}${path} answered ${status} without JSON: is this a pullthrough server?`,
      );
    }
    if (status === 200) return body as T;
    const message = (body as { error?: unknown } | null)?.error;
    if (status === 401) {
      throw new Error(
        `${this.#server} refused the admin token: give --token or PULLTHROUGH_ADMIN_TOKEN (the server's admin.token)`,
      );
    }
    if (status === 404 && message === 'not found') {
      throw new Error(
        `the admin API is off at ${this.#server}: set admin.token (PULLTHROUGH_ADMIN_TOKEN) on the server`,
      );
    }
    throw new Error(
      `${this.#server}${path}: ${status} ${typeof message === 'string' ? message : text.trim()}`,
    );
  }
}

/** The client of a command: its notice goes to stderr as `pullthrough: …`, like its errors. */
export function adminClient(server: string, token: string | undefined): AdminClient {
  return new AdminClient(server, token, { notice: (line) => process.stderr.write(`pullthrough: ${line}\n`) });
}

/** Retry-After (seconds, or an HTTP date) in ms, capped; undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  // delay-seconds, or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`: RFC 9110 §10.2.3).
  const ms = /^\d+$/.test(text)
    ? Number(text) * 1000
    : /^[A-Za-z]{3}, /.test(text)
      ? Date.parse(text) - now
      : Number.NaN;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, MIN_RETRY_AFTER_MS), MAX_RETRY_AFTER_S * 1000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
