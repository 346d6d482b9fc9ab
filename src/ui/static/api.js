// @ts-check
// The admin API as the page calls it: the token kept for this tab (sessionStorage, gone when
// the tab closes), sent as a Bearer token; a refusal (401) signs the page out.

const KEY = 'pullthrough-admin-token';

/** An answer other than 2xx, with the server's own message. */
export class ApiError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(KEY);
}

/** @param {string} value */
export function keepToken(value) {
  sessionStorage.setItem(KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

/** @type {() => void} */
let onRefused = () => undefined;

/** What to do when the server refuses the token (it changed, or the tab kept an old one). */
/** @param {() => void} listener */
export function whenRefused(listener) {
  onRefused = listener;
}

/**
 * A JSON call to /admin/…, with `given` as the token when set (signing in), else the kept one.
 * @param {string} path e.g. `/admin/cache`
 * @param {{ method?: string, given?: string }} [options]
 * @returns {Promise<any>}
 */
export async function call(path, options = {}) {
  const bearer = options.given ?? token() ?? '';
  const response = await fetch(path, {
    method: options.method ?? 'GET',
    headers: { authorization: `Bearer ${bearer}`, accept: 'application/json' },
    cache: 'no-store',
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message =
      typeof body?.error === 'string' ? body.error : `${response.status} ${response.statusText}`;
    if (response.status === 401 && options.given === undefined) onRefused();
    throw new ApiError(response.status, message);
  }
  return body;
}

/**
 * A query string from the parts that are set.
 * @param {Record<string, string | undefined>} params
 */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) search.set(name, value);
  return search.toString();
}
