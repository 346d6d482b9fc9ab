// Relays one request to the upstream registry and streams the answer back with backpressure,
// exactly as upstream gave it (status, headers, body; 401 challenges included).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { originOf, type Destination } from '../http/destination.ts';
import { withoutHopByHop } from '../http/headers.ts';
import type { Upstream } from '../upstream/client.ts';

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
  // A client that goes away cancels its upstream request (caching changes this for blobs).
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  const hasBody =
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  const response = await upstream.request({
    origin: originOf(destination),
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers: withoutHopByHop(req.headers),
    body: hasBody ? req : null,
    signal: controller.signal,
  });
  const headers = withoutHopByHop(response.headers);
  res.writeHead(response.statusCode, headers);
  let bytes = 0;
  response.body.on('data', (chunk: Buffer) => (bytes += chunk.length));
  await pipeline(response.body, res);
  return { status: response.statusCode, bytes };
}
