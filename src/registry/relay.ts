// Relays requests to the upstream registry and streams answers back with backpressure, exactly
// as upstream gave them (status, headers, body; 401 challenges included). Every path that passes
// an upstream response on to a client goes through sendResponse.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { originOf, type Destination } from '../http/destination.ts';
import { withoutHopByHop } from '../http/headers.ts';
import type { Upstream, UpstreamResponse } from '../upstream/client.ts';

export interface RelayResult {
  readonly status: number;
  readonly bytes: number;
}

export async function relay(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  upstream: Upstream,
): Promise<RelayResult> {
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
  return { status: response.statusCode, bytes: await sendResponse(res, response) };
}

/** Writes an upstream response (status, end-to-end headers, body) to the client; returns body bytes. */
export async function sendResponse(res: ServerResponse, response: UpstreamResponse): Promise<number> {
  res.writeHead(response.statusCode, withoutHopByHop(response.headers));
  return streamBody(response.body, res);
}

/** Pipes a body to the client with backpressure; resolves with the bytes sent. */
export async function streamBody(source: Readable, res: ServerResponse): Promise<number> {
  let bytes = 0;
  source.on('data', (chunk: Buffer) => (bytes += chunk.length));
  await pipeline(source, res);
  return bytes;
}

export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}
