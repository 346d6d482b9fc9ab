// With the upstream registry unreachable, a pull of cached content completes: the /v2/ ping and
// the token request are answered by the proxy, the tag is served stale and blobs from the cache.
// Content served under a token that a token server gave to an anonymous request is public.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

describe('offline', () => {
  it('answers the ping and token requests itself and serves cached public content', async () => {
    const upstream = await startFakeRegistry();
    const layer = upstream.addBlob(randomBytes(50_000));
    upstream.addManifest('lib/app', 'v1', { schemaVersion: 2, layers: [{ digest: layer }] });
    const proxy = await startProxy({ registries: [upstream.authority] });
    await (await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/v1')).body.dump();
    await (await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${layer}`)).body.dump();
    await proxy.app.fills.idle();
    await upstream.close();

    const ping = await proxy.fetch(upstream.authority, '/v2/');
    expect(ping.statusCode).toBe(200);
    expect(ping.headers['x-cache']).toBe('STALE');
    expect(await ping.body.json()).toEqual({});
    const token = await proxy.fetch(upstream.authority, '/token?service=fake&scope=repository:lib/app:pull');
    expect(token.statusCode).toBe(200);
    const { token: placeholder } = (await token.body.json()) as { token: string };
    expect(placeholder).toBe('pullthrough-offline');

    const headers = { authorization: `Bearer ${placeholder}` };
    const tag = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/v1', { headers });
    expect(tag.headers['x-cache']).toBe('STALE');
    await tag.body.dump();
    const blob = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${layer}`, { headers });
    expect(blob.headers['x-cache']).toBe('HIT');
    await blob.body.dump();
    await proxy.waitForLog((l) => l.msg === 'upstream unreachable: answering offline');

    // Other registry endpoints are not made up: tag lists need upstream.
    const list = await proxy.fetch(upstream.authority, '/v2/lib/app/tags/list');
    expect(list.statusCode).toBe(502);
    await list.body.dump();
  });

  it('still serves public content, and only that, after a restart during the outage', async () => {
    const upstream = await startFakeRegistry();
    const open = upstream.addBlob(randomBytes(20_000));
    upstream.addManifest('lib/open', 'v1', { schemaVersion: 2, layers: [{ digest: open }] });
    const closed = upstream.addBlob(randomBytes(20_000));
    const first = await startProxy({ registries: [upstream.authority] });
    await (await first.fetch(upstream.authority, '/v2/lib/open/manifests/v1')).body.dump();
    await (await first.fetch(upstream.authority, `/v2/lib/open/blobs/${open}`)).body.dump();
    await (
      await first.fetch(upstream.authority, `/v2/lib/closed/blobs/${closed}`, {
        headers: { authorization: 'Bearer x' },
      })
    ).body.dump();
    await first.app.fills.idle();
    await first.close();
    await upstream.close();

    const second = await startProxy({
      registries: [upstream.authority],
      ca: { dir: path.join(first.dir, 'ca') },
      cache: { dir: path.join(first.dir, 'cache') },
    });
    const tag = await second.fetch(upstream.authority, '/v2/lib/open/manifests/v1');
    expect(tag.headers['x-cache']).toBe('STALE');
    await tag.body.dump();
    const blob = await second.fetch(upstream.authority, `/v2/lib/open/blobs/${open}`);
    expect(blob.headers['x-cache']).toBe('HIT');
    await blob.body.dump();
    const refused = await second.fetch(upstream.authority, `/v2/lib/closed/blobs/${closed}`);
    expect(refused.statusCode).toBe(401);
    await refused.body.dump();
  });

  it('treats content served under an anonymous token as public', async () => {
    const upstream = await startFakeRegistry();
    const layer = upstream.addBlob(randomBytes(10_000));
    upstream.requireToken('anon-123');
    upstream.route('/token', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'anon-123' }));
    });
    const proxy = await startProxy({ registries: [upstream.authority] });
    const token = await proxy.fetch(upstream.authority, '/token?service=fake&scope=repository:lib/app:pull');
    expect(await token.body.json()).toEqual({ token: 'anon-123' });
    const first = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${layer}`, {
      headers: { authorization: 'Bearer anon-123' },
    });
    expect(first.statusCode).toBe(200);
    await first.body.dump();
    await proxy.app.fills.idle();

    const before = upstream.requests.length;
    const other = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${layer}`);
    expect(other.headers['x-cache']).toBe('HIT');
    await other.body.dump();
    expect(upstream.requests.length).toBe(before);
  });

  it('does not treat a token obtained with credentials (docker login POST) as anonymous', async () => {
    const upstream = await startFakeRegistry();
    const layer = upstream.addBlob(randomBytes(10_000));
    upstream.requireToken('alice-xyz');
    upstream.route('/token', (_req, res) => {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: 'alice-xyz' }));
    });
    const proxy = await startProxy({ registries: [upstream.authority] });
    const login = await proxy.fetch(upstream.authority, '/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=password&username=alice&password=secret&service=fake',
    });
    expect(login.statusCode).toBe(200);
    await login.body.dump();
    await (
      await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${layer}`, {
        headers: { authorization: 'Bearer alice-xyz' },
      })
    ).body.dump();
    await proxy.app.fills.idle();
    const anonymous = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${layer}`);
    expect(anonymous.statusCode).toBe(401);
    await anonymous.body.dump();
  });
});
