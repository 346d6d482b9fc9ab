// With the upstream registry unreachable, a pull of cached content completes: the /v2/ ping and
// the token request are answered by the proxy, the tag is served stale and blobs from the cache.
// Content served under a token that a token server gave to an anonymous request is public. A
// client whose token expires during the outage gets a placeholder that keeps its own grants.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

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

describe('offline with an expired token', () => {
  /** An upstream with a private `private/app:v1` of one layer, readable by alice:pw, and its token server. */
  async function privateApp() {
    const upstream = await startFakeRegistry();
    upstream.useTokenAuth({ alice: 'pw' });
    upstream.makePrivate('private/');
    upstream.route('/token', tokenServer(upstream));
    const layer = upstream.addBlob(randomBytes(10_000));
    upstream.addManifest('private/app', 'v1', { schemaVersion: 2, layers: [{ digest: layer }] });
    return { upstream, layer };
  }

  /** Docker Hub's token server: GET with Basic (docker, podman) or the OAuth2 POST form (containerd). */
  function tokenServer(upstream: FakeRegistry) {
    // The fake registry has read the body already: it is in the request it recorded.
    return (req: IncomingMessage, res: ServerResponse) => {
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const form = new URLSearchParams(upstream.requests.at(-1)?.body.toString() ?? '');
      const [user, password] = basic
        ? Buffer.from(basic, 'base64').toString().split(':')
        : [form.get('username') ?? undefined, form.get('password') ?? undefined];
      if (user !== undefined && !(user === 'alice' && password === 'pw')) {
        res.writeHead(401).end();
        return;
      }
      const token = `${user ?? 'anonymous'}-${upstream.issued.length}`;
      upstream.issued.push({ token, user, scope: null });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token }));
    };
  }

  it.each([
    ['GET with Basic', { method: 'GET', headers: { authorization: `Basic ${btoa('alice:pw')}` } }],
    [
      'POST of the OAuth2 form',
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=password&username=alice&password=pw&service=fake&scope=repository:private/app:pull',
      },
    ],
  ] as const)(
    'serves private content to the credential upstream authorized, token by %s',
    async (_how, login) => {
      const { upstream, layer } = await privateApp();
      const proxy = await startProxy({ registries: [upstream.authority] });
      const tokenPath = '/token?service=fake&scope=repository:private/app:pull';
      const pull = async (token: string) => {
        const headers = { authorization: `Bearer ${token}` };
        const tag = await proxy.fetch(upstream.authority, '/v2/private/app/manifests/v1', { headers });
        await tag.body.dump();
        const blob = await proxy.fetch(upstream.authority, `/v2/private/app/blobs/${layer}`, { headers });
        await blob.body.dump();
        return [tag.statusCode, tag.headers['x-cache'], blob.statusCode, blob.headers['x-cache']];
      };
      const tokenFor = async (
        request: typeof login | { method: 'GET'; headers?: Record<string, string> },
      ) => {
        const res = await proxy.fetch(upstream.authority, tokenPath, request);
        expect(res.statusCode).toBe(200);
        return ((await res.body.json()) as { access_token: string }).access_token;
      };

      expect(await pull(await tokenFor(login))).toEqual([200, 'MISS', 200, 'MISS']);
      await proxy.app.fills.idle();
      await upstream.close();

      // The token expired meanwhile: the client asks the token server for a new one, and gets
      // the proxy's placeholder, which carries alice's earlier grant.
      const renewed = await tokenFor(login);
      expect(renewed).toMatch(/^pullthrough-offline\./);
      expect(await pull(renewed)).toEqual([200, 'STALE', 200, 'HIT']);
      // Nobody else gets it: not an anonymous client, not a wrong password.
      const anonymous = await pull(await tokenFor({ method: 'GET' }));
      expect([anonymous[0], anonymous[2]]).toEqual([401, 401]);
      const wrong = { method: 'GET', headers: { authorization: `Basic ${btoa('alice:guess')}` } } as const;
      const guessed = await pull(await tokenFor(wrong));
      expect([guessed[0], guessed[2]]).toEqual([401, 401]);
    },
  );

  it('asks a fresh client for credentials as upstream did, so that it fetches a token and keeps its grants', async () => {
    const { upstream, layer } = await privateApp();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const basic = { authorization: `Basic ${btoa('alice:pw')}` };
    const tokenPath = '/token?service=fake&scope=repository:private/app:pull';
    // What podman and docker do on every pull: ping, then a token if the ping asks for one.
    const pull = async () => {
      const ping = await proxy.fetch(upstream.authority, '/v2/');
      await ping.body.dump();
      const challenge = ping.headers['www-authenticate'];
      expect(ping.statusCode).toBe(401);
      const token = await proxy.fetch(upstream.authority, tokenPath, { headers: basic });
      const { access_token: bearer } = (await token.body.json()) as { access_token: string };
      const headers = { authorization: `Bearer ${bearer}` };
      const tag = await proxy.fetch(upstream.authority, '/v2/private/app/manifests/v1', { headers });
      await tag.body.dump();
      const blob = await proxy.fetch(upstream.authority, `/v2/private/app/blobs/${layer}`, { headers });
      await blob.body.dump();
      return { challenge, ping: ping.headers['x-cache'], statuses: [tag.statusCode, blob.statusCode] };
    };

    const online = await pull();
    expect(online.statuses).toEqual([200, 200]);
    await proxy.app.fills.idle();
    await upstream.close();
    const offline = await pull();
    expect(offline).toEqual({ challenge: online.challenge, ping: 'STALE', statuses: [200, 200] });
    // An anonymous request is asked for credentials too, for its repository.
    const anonymous = await proxy.fetch(upstream.authority, '/v2/private/app/manifests/v1');
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe(
      `Bearer realm="https://${upstream.authority}/token",service="fake",scope="repository:private/app:pull"`,
    );
  });

  it('answers the ping 200 offline when the token realm is not a host it intercepts', async () => {
    const upstream = await startFakeRegistry();
    upstream.route('/v2/', (_req, res) => {
      res.writeHead(401, {
        'www-authenticate': 'Bearer realm="https://auth.elsewhere.test/token",service="x"',
      });
      res.end();
    });
    const proxy = await startProxy({ registries: [upstream.authority] });
    const online = await proxy.fetch(upstream.authority, '/v2/');
    await online.body.dump();
    expect(online.statusCode).toBe(401);
    await upstream.close();
    const ping = await proxy.fetch(upstream.authority, '/v2/');
    expect(ping.statusCode).toBe(200);
    expect(ping.headers['www-authenticate']).toBeUndefined();
    await ping.body.dump();
  });
});
