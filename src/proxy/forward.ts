// Plain-HTTP forward proxying of an absolute-form request (`GET http://host/path`) to a
// destination that is not intercepted: streamed both ways, hop-by-hop headers dropped.
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../log.ts';
import { redactUrl } from '../log.ts';
import { formatAuthority, type Destination } from '../http/destination.ts';
import { withoutHopByHop } from '../http/headers.ts';

const agent = new http.Agent({ keepAlive: true });

export async function forwardPlain(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  destination: Destination,
  path: string,
  log: Logger,
): Promise<void> {
  const started = performance.now();
  const headers = withoutHopByHop(req.headers);
  headers['host'] = req.headers.host ?? formatAuthority(destination);
  const upstream = http.request({
    host: destination.host,
    port: destination.port,
    method: req.method,
    path,
    headers,
    agent,
  });
  res.once('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  try {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      upstream.once('response', resolve).once('error', reject);
      req.pipe(upstream);
    });
    res.writeHead(response.statusCode ?? 502, withoutHopByHop(response.headers));
    await pipeline(response, res);
  } catch (error) {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(
        `cannot reach ${formatAuthority(destination)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}\n`,
      );
    } else {
      res.destroy();
    }
  } finally {
    log.info(
      {
        destination: formatAuthority(destination),
        method: req.method,
        path: redactUrl(path),
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
      },
      'forward',
    );
  }
}
