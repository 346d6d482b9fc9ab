// A TLS origin that the proxy must not intercept (it is not in `registries`): an in-process Node
// https server presenting the throwaway server certificate. `GET /` greets; `POST /sha256` answers
// the sha256 of the body it received, so a test can check bytes went through a tunnel unchanged.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { Pki } from './pki.ts';

export const ORIGIN_GREETING = 'hello from origin.test\n';

export interface Origin {
  server: Server;
  close(): Promise<void>;
}

export async function startOrigin(ip: string, port: number, pki: Pki): Promise<Origin> {
  const server = createServer(
    { cert: readFileSync(pki.serverCrt), key: readFileSync(pki.serverKey) },
    (req, res) => {
      if (req.method === 'POST' && req.url === '/sha256') {
        const hash = createHash('sha256');
        req.on('data', (chunk: Buffer) => hash.update(chunk));
        req.once('end', () => res.end(hash.digest('hex')));
        return;
      }
      res.setHeader('content-type', 'text/plain');
      res.end(ORIGIN_GREETING);
    },
  );
  server.listen(port, ip);
  await once(server, 'listening');
  return {
    server,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
