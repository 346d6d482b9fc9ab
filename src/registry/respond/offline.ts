// The answers the proxy makes up while an upstream cannot be reached (the /v2/ ping, a
// placeholder token): small JSON, marked STALE like every answer not confirmed by upstream now.
import type { Exchange } from '../context.ts';
import { sendBuffer } from './relay.ts';

export function sendOffline(x: Exchange, body: string): void {
  x.res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'docker-distribution-api-version': 'registry/2.0',
    'x-cache': 'STALE',
  });
  x.outcome.cache = 'stale';
  sendBuffer(x.req, x.res, body, x.outcome);
}
