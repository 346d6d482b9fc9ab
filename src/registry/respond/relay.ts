// Relays requests to the upstream registry and streams answers back with backpressure, exactly
// as upstream gave them (status, headers, body; 401 challenges included). Every path that passes
// an upstream response on to a client goes through sendResponse.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { originOf, type Destination } from '../../http/destination.ts';
import { withoutHopByHop } from '../../http/headers.ts';
import type { Upstream, UpstreamResponse } from '../../upstream/client.ts';
import type { Outcome } from '../outcome.ts';

export async function relay(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  upstream: Upstream,
  outcome: Outcome,
): Promise<number> {
  // A client that goes away cancels its upstream request.
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  const response = await upstream.request({
    origin: originOf(destination),
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers: withoutHopByHop(req.headers),
    body: hasBody(req) ? req : null,
    signal: controller.signal,
  });
  await sendResponse(res, response, outcome);
  return response.statusCode;
}

/** Writes an upstream response (status, end-to-end headers, body) to the client. */
export async function sendResponse(
  res: ServerResponse,
  response: UpstreamResponse,
  outcome: Outcome,
): Promise<void> {
  const headers = withoutHopByHop(response.headers);
  // Set, not only written, so that the handler can read upstream's challenge back (challenges.ts).
  const challenge = headers['www-authenticate'];
  if (challenge !== undefined) res.setHeader('www-authenticate', challenge);
  res.writeHead(response.statusCode, headers);
  await streamBody(response.body, res, outcome);
}

/** Pipes a body to the client with backpressure, counting bytes into `outcome` as they go. */
export async function streamBody(source: Readable, res: ServerResponse, outcome: Outcome): Promise<void> {
  source.on('data', (chunk: Buffer) => (outcome.bytes += chunk.length));
  await pipeline(source, res);
}

/** Sends a whole body held in memory (manifests, tokens, offline answers). */
export function sendBuffer(
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer | string,
  outcome: Outcome,
): void {
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  outcome.bytes += Buffer.byteLength(body);
  res.end(body);
}

export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}
