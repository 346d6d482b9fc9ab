// Absolute-form requests (`GET https://registry/v2/...` or `GET http://registry:5000/v2/...` sent
// to the proxy in plain HTTP, no CONNECT) for an intercepted registry go through the cache like
// requests inside a CONNECT: the second one is a hit and upstream sees one fetch.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { sha256, startFakeRegistry } from '../helpers/upstream.ts';

/** A plain-HTTP request to the proxy with an absolute-form target. */
async function absolute(
  proxy: TestProxy,
  url: string,
): Promise<{ status: number; cache: string | undefined; body: Buffer }> {
  const req = http.request({ host: '127.0.0.1', port: proxy.port, method: 'GET', path: url });
  req.end();
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const cache = res.headers['x-cache'];
  return {
    status: res.statusCode ?? 0,
    cache: typeof cache === 'string' ? cache : undefined,
    body: Buffer.concat(chunks),
  };
}

/** A registry that speaks plain HTTP (an `insecure-registries` one), serving one blob. */
async function plainRegistry(blob: Buffer): Promise<{ port: number; gets: () => number }> {
  let gets = 0;
  const digest = sha256(blob);
  const server = http.createServer((req, res) => {
    if (req.url !== `/v2/lib/app/blobs/${digest}`) return res.writeHead(404).end();
    gets += 1;
    res.writeHead(200, { 'content-length': blob.length, 'docker-content-digest': digest }).end(blob);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, gets: () => gets };
}

describe('absolute-form requests to intercepted registries', () => {
  it('go through the cache: https:// targets, blob and tag', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(30_000);
    const layer = upstream.addBlob(content);
    upstream.addManifest('lib/app', 'v1', { schemaVersion: 2, layers: [{ digest: layer }] });
    const proxy = await startProxy({ registries: [upstream.authority] });
    const blobUrl = `https://${upstream.authority}/v2/lib/app/blobs/${layer}`;

    const first = await absolute(proxy, blobUrl);
    expect(first).toMatchObject({ status: 200, cache: 'MISS' });
    expect(first.body.equals(content)).toBe(true);
    await proxy.app.fills.idle();
    const second = await absolute(proxy, blobUrl);
    expect(second).toMatchObject({ status: 200, cache: 'HIT' });
    expect(second.body.equals(content)).toBe(true);
    expect(upstream.hits('GET', `/v2/lib/app/blobs/${layer}`)).toBe(1);

    const tagUrl = `https://${upstream.authority}/v2/lib/app/manifests/v1`;
    expect(await absolute(proxy, tagUrl)).toMatchObject({ status: 200, cache: 'MISS' });
    expect(await absolute(proxy, tagUrl)).toMatchObject({ status: 200, cache: 'REVALIDATED' });
    const line = await proxy.waitForLog((l) => l.msg === 'request' && l['cache'] === 'revalidated');
    expect(line).toMatchObject({ route: 'manifest', repo: 'lib/app', path: '/v2/lib/app/manifests/v1' });
  });

  it('go through the cache: http:// targets of a registry listed with its plain-HTTP port', async () => {
    const content = randomBytes(20_000);
    const registry = await plainRegistry(content);
    const proxy = await startProxy({ registries: [`127.0.0.1:${registry.port}`] });
    const url = `http://127.0.0.1:${registry.port}/v2/lib/app/blobs/${sha256(content)}`;
    expect(await absolute(proxy, url)).toMatchObject({ status: 200, cache: 'MISS' });
    await proxy.app.fills.idle();
    expect(await absolute(proxy, url)).toMatchObject({ status: 200, cache: 'HIT' });
    expect(registry.gets()).toBe(1);
  });

  it('refuses an https:// target that is not intercepted: it cannot be forwarded in plain HTTP', async () => {
    const proxy = await startProxy({ registries: [] });
    const answer = await absolute(proxy, 'https://origin.test/');
    expect(answer.status).toBe(400);
    expect(answer.body.toString()).toMatch(/not intercepted: use CONNECT/);
  });
});
