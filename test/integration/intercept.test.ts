// Intercepted registry traffic: TLS terminated with our leaf, requests relayed to the CONNECT
// destination with the client's own headers, answers streamed back unchanged.
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { startFakeRegistry, sha256 } from '../helpers/upstream.ts';
import { rawConnection, readHead, startProxy } from '../helpers/proxy.ts';

describe('intercepted registry', () => {
  it('terminates TLS with a leaf from the proxy CA for the CONNECT host and relays /v2/', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });

    const socket = await rawConnection(
      proxy.port,
      `CONNECT ${upstream.authority} HTTP/1.1\r\nHost: ${upstream.authority}\r\n\r\n`,
    );
    const { head } = await readHead(socket);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const secure = tls.connect({
      socket,
      ca: proxy.app.ca.certPem,
      servername: 'ignored.invalid',
      checkServerIdentity: () => undefined,
    });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    const peer = new X509Certificate(secure.getPeerX509Certificate()?.raw ?? Buffer.alloc(0));
    expect(secure.authorized).toBe(true);
    expect(peer.checkIssued(new X509Certificate(proxy.app.ca.certPem))).toBe(true);
    // The leaf is for the CONNECT target, whatever SNI said.
    expect(peer.checkIP(upstream.host)).toBe(upstream.host);
    expect(secure.alpnProtocol).toBe(false);
    secure.destroy();

    const res = await proxy.fetch(upstream.authority, '/v2/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
    await res.body.dump();
    expect(upstream.hits('GET', '/v2/')).toBe(1);
    const line = await proxy.waitForLog((l) => l.msg === 'request');
    expect(line).toMatchObject({
      host: upstream.authority,
      method: 'GET',
      path: '/v2/',
      status: 200,
      route: 'ping',
      cache: 'bypass',
    });
    expect(line['aborted']).toBeUndefined();
    expect(line['bytes']).toBe(2);
  });

  it('forwards Authorization and relays a 401 challenge unchanged', async () => {
    const upstream = await startFakeRegistry();
    upstream.requireToken('sesame');
    const proxy = await startProxy({ registries: [upstream.authority] });

    const denied = await proxy.fetch(upstream.authority, '/v2/library/alpine/manifests/latest');
    expect(denied.statusCode).toBe(401);
    expect(denied.headers['www-authenticate']).toBe(
      `Bearer realm="https://${upstream.authority}/token",service="fake",scope="repository:x:pull"`,
    );
    expect(await denied.body.json()).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: 'unauthorized' }] });

    upstream.addManifest('library/alpine', 'latest', { schemaVersion: 2 });
    const allowed = await proxy.fetch(upstream.authority, '/v2/library/alpine/manifests/latest', {
      headers: { authorization: 'Bearer sesame', accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(allowed.statusCode).toBe(200);
    expect(await allowed.body.json()).toEqual({ schemaVersion: 2 });
    const seen = upstream.requests.at(-1);
    expect(seen?.headers.authorization).toBe('Bearer sesame');
    expect(seen?.headers.accept).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(seen?.headers['proxy-authorization']).toBeUndefined();
  });

  it('never logs credentials or signatures', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const res = await proxy.fetch(
      upstream.authority,
      '/token?scope=x&X-Amz-Signature=topsecret&sig=alsosecret',
      {
        headers: { authorization: 'Basic c2VjcmV0OnNlY3JldA==' },
      },
    );
    await res.body.dump();
    await proxy.waitForLog((l) => l.msg === 'request');
    const text = JSON.stringify(proxy.logs);
    expect(text).not.toContain('topsecret');
    expect(text).not.toContain('alsosecret');
    expect(text).not.toContain('c2VjcmV0OnNlY3JldA==');
  });

  it('streams a large blob byte for byte, HEAD included', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(24 * 1024 * 1024);
    const digest = upstream.addBlob(content);
    const proxy = await startProxy({ registries: [upstream.authority] });

    const head = await proxy.fetch(upstream.authority, `/v2/big/blobs/${digest}`, { method: 'HEAD' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe(String(content.length));
    await head.body.dump();

    const res = await proxy.fetch(upstream.authority, `/v2/big/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    const hash = createHash('sha256');
    for await (const chunk of res.body) hash.update(chunk as Buffer);
    expect(`sha256:${hash.digest('hex')}`).toBe(digest);
    const line = await proxy.waitForLog((l) => l.msg === 'request' && l.method === 'GET');
    expect(line).toMatchObject({ route: 'blob', repo: 'big', bytes: content.length, status: 200 });
  });

  it('takes the destination from CONNECT, never from the Host header', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const res = await proxy.fetch(upstream.authority, '/v2/', { headers: { host: 'evil.invalid' } });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(upstream.requests.at(-1)?.headers.host).toBe(upstream.authority);
  });

  it('relays pushes with their bodies streamed upstream', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const start = await proxy.fetch(upstream.authority, '/v2/pushed/blobs/uploads/', { method: 'POST' });
    expect(start.statusCode).toBe(202);
    await start.body.dump();
    const content = randomBytes(3 * 1024 * 1024);
    const digest = sha256(content);
    const put = await proxy.fetch(upstream.authority, `/v2/pushed/blobs/uploads/u1?digest=${digest}`, {
      method: 'PUT',
      body: content,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(put.statusCode).toBe(201);
    await put.body.dump();
    expect(upstream.requests.at(-1)?.body.equals(content)).toBe(true);
  });

  it('answers pushes with 405 UNSUPPORTED when allowPush is false (ALLOW_PUSH=false)', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] }, { ALLOW_PUSH: 'false' });
    const res = await proxy.fetch(upstream.authority, '/v2/pushed/blobs/uploads/', { method: 'POST' });
    expect(res.statusCode).toBe(405);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = (await res.body.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]?.code).toBe('UNSUPPORTED');
    expect(upstream.requests).toHaveLength(0);
  });

  it('answers 502 UNAVAILABLE in OCI error JSON when the upstream cannot be reached', async () => {
    const upstream = await startFakeRegistry();
    const authority = upstream.authority;
    await upstream.close();
    const proxy = await startProxy({ registries: [authority] });
    const res = await proxy.fetch(authority, '/v2/library/alpine/manifests/latest');
    expect(res.statusCode).toBe(502);
    const body = (await res.body.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]?.code).toBe('UNAVAILABLE');
    expect(body.errors[0]?.message).toContain('ECONNREFUSED');
  });

  it('refuses an upstream whose certificate it cannot verify, unless verifyTls is false', async () => {
    const upstream = await startFakeRegistry();
    const strict = await startProxy({ registries: [upstream.authority], upstream: { caFiles: [] } });
    const refused = await strict.fetch(upstream.authority, '/v2/');
    expect(refused.statusCode).toBe(502);
    await refused.body.dump();

    const lax = await startProxy(
      { registries: [upstream.authority], upstream: { caFiles: [] } },
      { VERIFY_SSL: 'false' },
    );
    const accepted = await lax.fetch(upstream.authority, '/v2/');
    expect(accepted.statusCode).toBe(200);
    await accepted.body.dump();
    expect(lax.logs.some((l) => l.level === 40 && String(l.msg).includes('verification is OFF'))).toBe(true);
  });

  it('relays 429 with Retry-After unchanged', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    upstream.failNext(429);
    const res = await proxy.fetch(upstream.authority, '/v2/library/alpine/manifests/latest');
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    await res.body.dump();
  });

  it('issues one leaf for concurrent first CONNECTs to one host', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => proxy.fetch(upstream.authority, '/v2/')),
    );
    for (const res of responses) {
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    expect(proxy.app.certificates.issued).toBe(1);
  });
});
