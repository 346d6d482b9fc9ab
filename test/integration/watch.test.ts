// The watch of the tags in use, through the real proxy and an in-process upstream: a tag pulled
// anonymously, then re-pushed upstream, turns `changed` with one webhook POST holding both
// digests and the metric counted; deleted upstream it turns `vanished`, is pinned, and is still
// served from the cache (serveStaleOn 404). Public tags behind token auth are asked with an
// anonymous token, and one turned private becomes `unauthorized`. Interval 0: no watch at all.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { WebhookPayload } from '../../src/watch/webhook.ts';
import type { WatchListing } from '../../src/watch/watcher.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const TOKEN = 'admin-token-0123456789';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function manifestOf(label: string): object {
  return { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { size: 7, label }, layers: [] };
}

/** A webhook receiver on loopback: every POST body, and a promise for the next one. */
async function startReceiver(statuses: number[] = []) {
  const received: WebhookPayload[] = [];
  const arrived = new (await import('node:events')).EventEmitter();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const status = statuses.shift() ?? 200;
      res.writeHead(status).end();
      if (status !== 200) return;
      received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload);
      arrived.emit('post');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const next = async (count: number) => {
    while (received.length < count) await once(arrived, 'post');
    return received;
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, next };
}

async function adminGet<T>(proxy: TestProxy, path: string): Promise<{ status: number; body: T }> {
  const res = await request(`${proxy.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.statusCode, body: (await res.body.json()) as T };
}

async function pullTag(proxy: TestProxy, upstream: FakeRegistry, name: string, auth?: string) {
  const res = await proxy.fetch(upstream.authority, `/v2/${name}/manifests/v1`, {
    headers: { accept: OCI_MANIFEST, ...(auth === undefined ? {} : { authorization: auth }) },
  });
  return {
    status: res.statusCode,
    cache: res.headers['x-cache'],
    digest: res.headers['docker-content-digest'],
    body: await res.body.text(),
  };
}

function notFound(_req: unknown, res: ServerResponse): void {
  const body = JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
  res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Polls `check` until it holds, for at most 10 s: the watch runs on its own clock. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stateOf(proxy: TestProxy): Promise<string | undefined> {
  return (await adminGet<WatchListing>(proxy, '/admin/watch')).body.tags[0]?.state;
}

async function metricsText(proxy: TestProxy): Promise<string> {
  return (await request(`${proxy.url}/metrics`)).body.text();
}

describe('watch', () => {
  it('tells of a re-pushed tag once, with both digests; pins a deleted one and serves it from the cache', async () => {
    const upstream = await startFakeRegistry();
    const failFirst = [503];
    const receiver = await startReceiver(failFirst);
    const old = upstream.addManifest('lib/app', 'v1', manifestOf('old'));
    const proxy = await startProxy({
      registries: [{ host: upstream.authority, serveStaleOn: ['unreachable', '5xx', '429', '404'] }],
      admin: { token: TOKEN },
      watch: { interval: '300ms', ratePerSecond: 50, webhook: receiver.url },
    });
    expect(await pullTag(proxy, upstream, 'lib/app')).toMatchObject({ status: 200, digest: old });
    await until('the tag checked ok', async () => (await stateOf(proxy)) === 'ok');

    const updated = upstream.addManifest('lib/app', 'v1', manifestOf('new'));
    const [posted] = await receiver.next(1);
    expect(posted).toMatchObject({
      reference: `${upstream.authority}/lib/app:v1`,
      state: 'changed',
      previousState: 'ok',
      oldDigest: old,
      newDigest: updated,
      pinned: null,
    });
    expect(posted?.text).toContain('changed upstream');
    expect(failFirst).toEqual([]); // the receiver's 503 was retried
    expect(Date.parse(posted?.time ?? '')).toBeGreaterThan(Date.now() - 60_000);
    const listing = await adminGet<WatchListing>(proxy, '/admin/watch');
    expect(listing.body.tags).toEqual([
      expect.objectContaining({
        repository: 'lib/app',
        tag: 'v1',
        state: 'changed',
        cached: old,
        upstream: updated,
      }),
    ]);
    const metrics = await metricsText(proxy);
    expect(metrics).toContain(
      `pullthrough_watch_events_total{registry="${upstream.authority}",kind="changed"} 1`,
    );
    expect(metrics).toContain(`pullthrough_watched_tags{registry="${upstream.authority}",state="changed"} 1`);

    upstream.route('/v2/lib/app/manifests/v1', notFound);
    const [, vanished] = await receiver.next(2);
    const reference = `${upstream.authority}/lib/app:v1`;
    expect(vanished).toMatchObject({
      state: 'vanished',
      previousState: 'changed',
      oldDigest: old,
      newDigest: null,
      pinned: reference,
    });
    const pins = await adminGet<{ runtime: string[] }>(proxy, '/admin/pins');
    expect(pins.body.runtime).toEqual([reference]);
    // The cache's copy is what keeps clients running: served stale on upstream's 404.
    expect(await pullTag(proxy, upstream, 'lib/app')).toMatchObject({
      status: 200,
      cache: 'STALE',
      digest: old,
    });
    // No second POST for a state that did not change (a few more rounds go by).
    const heads = upstream.hits('HEAD', '/v2/lib/app/manifests/v1');
    await until('three more checks', () => upstream.hits('HEAD', '/v2/lib/app/manifests/v1') >= heads + 3);
    expect(receiver.received).toHaveLength(2);
  });

  it('asks public tags behind token auth with an anonymous token; a tag turned private is unauthorized', async () => {
    const upstream = await startFakeRegistry();
    upstream.useTokenAuth({ alice: 'secret' });
    upstream.addManifest('open/app', 'v1', manifestOf('open'));
    const proxy = await startProxy({
      registries: [upstream.authority],
      admin: { token: TOKEN },
      watch: { interval: '300ms', ratePerSecond: 50 },
    });
    const token = async () => {
      const res = await proxy.fetch(upstream.authority, '/token?service=fake&scope=repository:open/app:pull');
      return `Bearer ${((await res.body.json()) as { token: string }).token}`;
    };
    expect(await pullTag(proxy, upstream, 'open/app', await token())).toMatchObject({ status: 200 });
    const issuedToClient = upstream.issued.length;
    await until('the tag checked ok', async () => (await stateOf(proxy)) === 'ok');
    // The watch's own anonymous token: asked once, not with any credential.
    expect(upstream.issued.length).toBe(issuedToClient + 1);
    expect(upstream.issued.every((issued) => issued.user === undefined)).toBe(true);

    upstream.makePrivate('open/');
    const line = await proxy.waitForLog((l) => l.msg === 'watch: tag unauthorized');
    expect(line).toMatchObject({ repository: 'open/app', previous: 'ok', note: 'upstream answered 401' });
    expect((await adminGet<{ runtime: string[] }>(proxy, '/admin/pins')).body.runtime).toEqual([
      `${upstream.authority}/open/app:v1`,
    ]);
  });

  it('watches nothing when watch.interval is 0', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('lib/app', 'v1', manifestOf('x'));
    const proxy = await startProxy(
      { registries: [upstream.authority], admin: { token: TOKEN } },
      { PULLTHROUGH_WATCH_INTERVAL: '0' },
    );
    expect(await pullTag(proxy, upstream, 'lib/app')).toMatchObject({ status: 200 });
    expect((await adminGet<{ error: string }>(proxy, '/admin/watch')).status).toBe(404);
    expect(proxy.logs.some((line) => line.msg === 'watching tags')).toBe(false);
    expect(await metricsText(proxy)).not.toMatch(/pullthrough_watched_tags\{/);
  });
});
