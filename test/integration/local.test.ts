// Requests addressed to the proxy itself: health texts and the CA certificate.
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';

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
});
