// The admin API of a running server as the `cache` commands reach it: Bearer token, JSON
// answers, and failures as one line that says what to do (no server there, the API off, a
// refused token).
import { request } from 'undici';

export class ServerUnreachableError extends Error {
  override readonly name = 'ServerUnreachableError';
}

export class AdminClient {
  readonly #server: string;
  readonly #token: string | undefined;

  constructor(server: string, token: string | undefined) {
    this.#server = server.replace(/\/+$/, '');
    this.#token = token;
  }

  async call<T>(method: 'GET' | 'DELETE' | 'POST', path: string): Promise<T> {
    let res;
    try {
      res = await request(`${this.#server}${path}`, {
        method,
        headers: this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` },
        headersTimeout: 600_000,
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH') {
        throw new ServerUnreachableError(`no server answers at ${this.#server} (${code})`, { cause: error });
      }
      throw new Error(`${this.#server}: ${(error as Error).message}`, { cause: error });
    }
    const text = await res.body.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(
        `${this.#server}${path} answered ${res.statusCode} without JSON: is this a pullthrough server?`,
      );
    }
    if (res.statusCode === 200) return body as T;
    const message = (body as { error?: unknown } | null)?.error;
    if (res.statusCode === 401) {
      throw new Error(
        `${this.#server} refused the admin token: give --token or PULLTHROUGH_ADMIN_TOKEN (the server's admin.token)`,
      );
    }
    if (res.statusCode === 404 && message === 'not found') {
      throw new Error(
        `the admin API is off at ${this.#server}: set admin.token (PULLTHROUGH_ADMIN_TOKEN) on the server`,
      );
    }
    throw new Error(
      `${this.#server}${path}: ${res.statusCode} ${typeof message === 'string' ? message : text.trim()}`,
    );
  }
}
