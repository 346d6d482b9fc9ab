// Request headers for relaying: hop-by-hop removal (RFC 9110 §7.6.1), shared by every path that
// relays HTTP, and the headers of upstream requests whose answer the cache needs whole.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  // undici refuses `expect` (curl sends 100-continue for large bodies); the client already got
  // its 100 Continue from our server, so the body is on its way.
  'expect',
]);

/** A copy of `headers` without hop-by-hop fields, nor those the Connection header names. */
export function withoutHopByHop(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Request headers that would make upstream answer with less than the whole object. */
const PARTIAL_REQUEST_HEADERS = [
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
];

/**
 * The client's end-to-end headers (credentials and Accept included) for an upstream request
 * whose answer the cache needs whole: no Range, no conditionals.
 */
export function wholeObjectHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const headers = withoutHopByHop(req.headers);
  for (const name of PARTIAL_REQUEST_HEADERS) delete headers[name];
  return headers;
}
