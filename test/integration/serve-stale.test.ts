// serveStaleOn: a cached tag is served stale when upstream refuses (401/403/404) or rate-limits
// (429) only when the registry opts in; with it off, upstream's answer reaches the client. A
// refusal never turns private content public: only public content and fresh grants are served.
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { size: 7 }, layers: [] };

function refuse(status: number) {
  return (_req: unknown, res: ServerResponse) => {
    const body = JSON.stringify({ errors: [{ code: `E${status}`, message: `refused ${status}` }] });
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...(status === 401 ? { 'www-authenticate': 'Bearer realm="https://x/token"' } : {}),
    });
    res.end(body);
  };
}

async function setup(
  name: string,
  registry: Record<string, unknown>,
  authorization?: string,
  access: Record<string, unknown> = {},
): Promise<{ upstream: FakeRegistry; proxy: TestProxy; get: (auth?: string) => Promise<Answer> }> {
  const upstream = await startFakeRegistry();
  upstream.addManifest(name, 'v1', manifest);
  const proxy = await startProxy({ registries: [{ host: upstream.authority, ...registry }], access });
  const get = async (auth?: string): Promise<Answer> => {
    const res = await proxy.fetch(upstream.authority, `/v2/${name}/manifests/v1`, {
      headers: { accept: OCI_MANIFEST, ...(auth ? { authorization: auth } : {}) },
    });
    return {
      status: res.statusCode,
      cache: res.headers['x-cache'],
      warning: res.headers['warning'],
      body: await res.body.text(),
    };
  };
  const first = await get(authorization);
  expect(first).toMatchObject({ status: 200, cache: 'MISS' });
  return { upstream, proxy, get };
}

interface Answer {
  status: number;
  cache: string | string[] | undefined;
  warning: string | string[] | undefined;
  body: string;
}

describe('serveStaleOn', () => {
  it.each([401, 404, 429])('serves a cached public tag stale on %i when the knob is on', async (status) => {
    const { upstream, proxy, get } = await setup('lib/app', { serveStaleOn: [401, 404, 429] });
    upstream.route('/v2/lib/app/manifests/v1', refuse(status));
    const answer = await get();
    expect(answer).toMatchObject({
      status: 200,
      cache: 'STALE',
      warning: '110 pullthrough "Response is Stale"',
    });
    expect(JSON.parse(answer.body)).toEqual(manifest);
    const line = await proxy.waitForLog((l) => l.msg === 'serving stale tag');
    expect(line).toMatchObject({ repo: 'lib/app', tag: 'v1', reason: `upstream answered ${status}` });
  });

  it.each([401, 404, 429])("passes upstream's %i on when the knob is off", async (status) => {
    // 429 is in the default list: off means a list without it.
    const { upstream, proxy, get } = await setup('lib/app', { serveStaleOn: ['unreachable', '5xx'] });
    upstream.route('/v2/lib/app/manifests/v1', refuse(status));
    const answer = await get();
    expect(answer.status).toBe(status);
    expect(answer.cache).not.toBe('STALE');
    expect(proxy.logs.some((l) => l.msg === 'serving stale tag')).toBe(false);
  });

  it('keeps the default: 429 served stale, 401 and 404 passed on', async () => {
    const { upstream, get } = await setup('lib/app', {});
    upstream.route('/v2/lib/app/manifests/v1', refuse(429));
    expect((await get()).cache).toBe('STALE');
    upstream.route('/v2/lib/app/manifests/v1', refuse(401));
    expect((await get()).status).toBe(401);
    upstream.route('/v2/lib/app/manifests/v1', refuse(404));
    expect((await get()).status).toBe(404);
  });

  it('never turns private content public: a refusal serves it only to a freshly granted credential', async () => {
    const alice = 'Basic YWxpY2U6c2VjcmV0';
    const { upstream, get } = await setup('private/app', { serveStaleOn: [401, 403, 404] }, alice);
    upstream.route('/v2/private/app/manifests/v1', refuse(403));
    const anonymous = await get();
    expect(anonymous.status).toBe(403);
    expect(anonymous.body).toContain('refused 403');
    expect((await get('Basic bWFsbG9yeTp4')).status).toBe(403);
    expect(await get(alice)).toMatchObject({ status: 200, cache: 'STALE' });
  });

  it('a grant older than grantTtl does not outweigh a refusal (it would while upstream is unreachable)', async () => {
    const alice = 'Basic YWxpY2U6c2VjcmV0';
    const { upstream, get } = await setup(
      'private/app',
      { serveStaleOn: [401, 403, 404, 'unreachable'] },
      alice,
      {
        grantTtl: '0s',
      },
    );
    upstream.route('/v2/private/app/manifests/v1', refuse(401));
    expect((await get(alice)).status).toBe(401);
    await upstream.close();
    expect(await get(alice)).toMatchObject({ status: 200, cache: 'STALE' });
  });
});
