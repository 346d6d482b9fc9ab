// A host not in `registries` is tunnelled byte for byte: a client that CONNECTs to origin.test
// through pullthrough sees the origin's own certificate (issued by the throwaway upstream CA, not
// the proxy's CA), its bytes arrive unchanged, and the proxy logs one `tunnel` line. For contrast,
// an allowlisted host on the same proxy presents a leaf from the proxy's CA.
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { expect, test } from 'vitest';
import { ORIGIN_GREETING } from './env/origin.ts';
import { run } from './env/processes.ts';
import { UPSTREAM_CA_CN } from './env/pki.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { ORIGIN, REGISTRY } from './env/world.ts';

const world = useWorld();

/** Opens a CONNECT tunnel through the proxy and a TLS session over it, trusting only `ca`. */
async function tlsThroughProxy(proxyPort: number, host: string, ca: string): Promise<TLSSocket> {
  const req = request({
    host: '127.0.0.1',
    port: proxyPort,
    method: 'CONNECT',
    path: `${host}:443`,
    agent: false,
  });
  req.end();
  const [res, socket] = (await once(req, 'connect')) as [IncomingMessage, Socket];
  expect(res.statusCode).toBe(200);
  const tls = connect({ socket, servername: host, ca, ALPNProtocols: ['http/1.1'] });
  await once(tls, 'secureConnect');
  return tls;
}

/** Sends one HTTP/1.1 request with `Connection: close`; returns the body once the server closes. */
async function exchange(tls: TLSSocket, head: string, body: Buffer = Buffer.alloc(0)): Promise<string> {
  // No half-close from our side: a Node server may drop a response to a client that sent FIN.
  tls.write(
    Buffer.concat([
      Buffer.from(`${head}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`),
      body,
    ]),
  );
  const chunks: Buffer[] = [];
  for await (const chunk of tls) chunks.push(chunk as Buffer);
  const response = Buffer.concat(chunks).toString('latin1');
  expect(response).toMatch(/^HTTP\/1\.1 200 /);
  return response.slice(response.indexOf('\r\n\r\n') + 4);
}

test('a non-intercepted host is tunnelled: the origin certificate and bytes come through unchanged', async () => {
  const { proxy, pki } = world();
  const from = proxy.log.mark();
  const tls = await tlsThroughProxy(proxy.port, ORIGIN, readFileSync(pki.caCrt, 'utf8'));
  const presented = new X509Certificate(tls.getPeerCertificate(true).raw);
  expect(presented.fingerprint256).toBe(new X509Certificate(readFileSync(pki.serverCrt)).fingerprint256);
  expect(presented.issuer).toBe(`CN=${UPSTREAM_CA_CN}`);
  expect(presented.checkIssued(new X509Certificate(readFileSync(proxy.caCrt)))).toBe(false);

  const payload = randomBytes(256 * 1024);
  const digest = await exchange(tls, `POST /sha256 HTTP/1.1\r\nHost: ${ORIGIN}`, payload);
  expect(digest).toBe(createHash('sha256').update(payload).digest('hex'));

  const tunnel = await proxy.log.waitForTunnel(`${ORIGIN}:443`, { from });
  // The proxy counts TLS records, so a little more than the payload went up.
  expect(tunnel.bytesUp).toBeGreaterThan(payload.length);
  expect(tunnel.bytesDown).toBeGreaterThan(0);
  expect(proxy.log.requests(ORIGIN, from)).toEqual([]);
});

test('curl through the proxy sees origin.test with its own certificate', async () => {
  const { proxy, pki } = world();
  const from = proxy.log.mark();
  const result = expectSuccess(
    'curl via tunnel',
    await run('curl', ['-sS', '-v', '--proxy', proxy.url, '--cacert', pki.caCrt, `https://${ORIGIN}/`], {
      env: world().clientEnv({ proxy: false }),
      timeoutMs: 30_000,
    }),
  );
  expect(result.stdout).toBe(ORIGIN_GREETING);
  expect(result.stderr).toContain(`issuer: CN=${UPSTREAM_CA_CN}`);
  const tunnel = await proxy.log.waitForTunnel(`${ORIGIN}:443`, { from });
  expect(tunnel.bytesDown).toBeGreaterThan(0);
});

test('an allowlisted host on the same proxy is intercepted with a leaf from the proxy CA', async () => {
  const { proxy } = world();
  const proxyCa = new X509Certificate(readFileSync(proxy.caCrt));
  const tls = await tlsThroughProxy(proxy.port, REGISTRY, proxyCa.toString());
  const presented = new X509Certificate(tls.getPeerCertificate(true).raw);
  expect(presented.checkIssued(proxyCa)).toBe(true);
  expect(presented.checkHost(REGISTRY)).toBe(REGISTRY);
  const body = await exchange(tls, `GET /v2/ HTTP/1.1\r\nHost: ${REGISTRY}`);
  expect(body.trim()).toBe('{}');
});
