// Requests addressed to the proxy itself: health texts, readiness and the CA certificate.
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

describe('local endpoints', () => {
  it('serves a health text at / and /healthz, the CA at /ca.crt, 404 and 405 otherwise', async () => {
    const proxy = await startProxy();
    const root = await request(`${proxy.url}/`);
    expect(root.statusCode).toBe(200);
    expect(await root.body.text()).toContain('working');

    const healthz = await request(`${proxy.url}/healthz`);
    expect(await healthz.body.text()).toBe('ok\n');

    const ca = await request(`${proxy.url}/ca.crt`);
    expect(ca.statusCode).toBe(200);
    expect(ca.headers['content-type']).toBe('application/x-pem-file');
    expect(await ca.body.text()).toBe(proxy.app.ca.certPem);

    const missing = await request(`${proxy.url}/nope`);
    expect(missing.statusCode).toBe(404);
    await missing.body.dump();

    const post = await request(`${proxy.url}/`, { method: 'POST', body: 'x' });
    expect(post.statusCode).toBe(405);
    await post.body.dump();
  });

  it('is ready at /readyz, degraded while cache writes fail, and not ready once shutting down', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(Buffer.from('some layer'));
    const proxy = await startProxy({ registries: [upstream.authority] });
    const readyz = async () => {
      const res = await request(`${proxy.url}/readyz`);
      return [res.statusCode, await res.body.text()];
    };
    expect(await readyz()).toEqual([200, 'ready\n']);

    // The cache's temp directory becomes a file: the next fill cannot be stored.
    const tmp = path.join(proxy.dir, 'cache', 'tmp');
    await rm(tmp, { recursive: true });
    await writeFile(tmp, 'not a directory');
    const blob = await proxy.fetch(upstream.authority, `/v2/x/blobs/${digest}`);
    expect(await blob.body.text()).toBe('some layer');
    const [status, text] = await readyz();
    expect(status).toBe(200);
    expect(text).toMatch(/^ready \(degraded: cache writes failing \(ENOTDIR\)/);

    const closing = proxy.app.close();
    // The listener is closed: a new connection is refused, so the probe fails either way.
    await expect(readyz()).rejects.toThrow();
    await closing;
  });
});
