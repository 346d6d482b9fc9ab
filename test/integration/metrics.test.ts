// GET /metrics on the proxy port: the counters move with what the proxy does (a blob missed then
// hit, a tag served stale while upstream is down, a tunnel, Docker Hub's rate-limit headers),
// bytes are told apart by where they came from, and the exposition passes `promtool check metrics`.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { rawConnection, readHead, startProxy, type TestProxy } from '../helpers/proxy.ts';
import { mountTmpfs, remountReadOnly } from '../helpers/tmpfs.ts';
import { sha256, startFakeRegistry } from '../helpers/upstream.ts';

/** The exposition text the proxy serves. */
async function scrape(proxy: TestProxy): Promise<string> {
  const res = await request(`${proxy.url}/metrics`);
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.body.text();
}

/** The value of the sample `name` whose labels are exactly `labels`; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const m of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[m[1]!] = m[2]!;
    if (JSON.stringify(Object.entries(found).sort()) === JSON.stringify(Object.entries(labels).sort())) {
      return Number(match[3]);
    }
  }
  return undefined;
}

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

describe('metrics', () => {
  it('counts a blob missed then hit, its bytes by source, and the upstream request made once', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(40_000);
    const digest = upstream.addBlob(content);
    const proxy = await startProxy({ registries: [upstream.authority] });
    const registry = upstream.authority;
    const path = `/v2/lib/app/blobs/${digest}`;
    const before = await scrape(proxy);
    expect(
      sample(before, 'pullthrough_requests_total', { registry, mode: 'proxy', kind: 'blob', cache: 'miss' }),
    ).toBe(undefined);

    for (const expected of ['MISS', 'HIT']) {
      const res = await proxy.fetch(registry, path);
      expect(res.headers['x-cache']).toBe(expected);
      expect((await res.body.bytes()).length).toBe(content.length);
      await proxy.app.fills.idle();
      await proxy.waitForLog((l) => l.msg === 'request' && l['cache'] === expected.toLowerCase());
    }

    // The index opens in the background; until then the cache gauges read 0.
    await proxy.waitForLog((l) => l.msg === 'cache index open');
    const text = await scrape(proxy);
    for (const cache of ['miss', 'hit']) {
      expect(
        sample(text, 'pullthrough_requests_total', { registry, mode: 'proxy', kind: 'blob', cache }),
      ).toBe(1);
      expect(sample(text, 'pullthrough_request_duration_seconds_count', { kind: 'blob', cache })).toBe(1);
    }
    expect(sample(text, 'pullthrough_bytes_total', { registry, source: 'upstream' })).toBe(content.length);
    expect(sample(text, 'pullthrough_bytes_total', { registry, source: 'cache' })).toBe(content.length);
    expect(upstream.hits('GET', path)).toBe(1);
    expect(
      sample(text, 'pullthrough_upstream_requests_total', { registry, method: 'GET', status: '200' }),
    ).toBe(1);
    expect(sample(text, 'pullthrough_fills_in_flight')).toBe(0);
    expect(sample(text, 'pullthrough_cache_files')).toBe(1);
    expect(sample(text, 'pullthrough_cache_size_bytes')).toBe(content.length);
    expect(sample(text, 'pullthrough_certificates_issued_total')).toBe(1);
    // The default process metrics are there, on the proxy's own registry.
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('counts a tag served stale while upstream is down, and the upstream error', async () => {
    const upstream = await startFakeRegistry();
    const layer = upstream.addBlob(randomBytes(1000));
    upstream.addManifest('lib/app', 'v1', { schemaVersion: 2, layers: [{ digest: layer }] });
    const proxy = await startProxy({ registries: [upstream.authority] });
    const registry = upstream.authority;
    await (await proxy.fetch(registry, '/v2/lib/app/manifests/v1')).body.dump();
    await upstream.close();

    const stale = await proxy.fetch(registry, '/v2/lib/app/manifests/v1');
    expect(stale.headers['x-cache']).toBe('STALE');
    const body = await stale.body.bytes();
    await proxy.waitForLog((l) => l.msg === 'request' && l['cache'] === 'stale');

    const text = await scrape(proxy);
    expect(
      sample(text, 'pullthrough_requests_total', {
        registry,
        mode: 'proxy',
        kind: 'manifest',
        cache: 'miss',
      }),
    ).toBe(1);
    expect(
      sample(text, 'pullthrough_requests_total', {
        registry,
        mode: 'proxy',
        kind: 'manifest',
        cache: 'stale',
      }),
    ).toBe(1);
    expect(sample(text, 'pullthrough_bytes_total', { registry, source: 'cache' })).toBe(body.length);
    expect(sample(text, 'pullthrough_upstream_errors_total', { registry, reason: 'unreachable' })).toBe(1);
  });

  it('counts a tunnel while it is open, and its bytes each way once closed', async () => {
    const origin = await startFakeRegistry();
    const proxy = await startProxy({ registries: [], proxy: { connectPorts: [origin.port] } });
    const socket = await rawConnection(proxy.port, `CONNECT ${origin.authority} HTTP/1.1\r\n\r\n`);
    const { head } = await readHead(socket);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(sample(await scrape(proxy), 'pullthrough_tunnels_open')).toBe(1);

    socket.write('not even TLS');
    socket.end();
    const line = await proxy.waitForLog((l) => l.msg === 'tunnel');
    const text = await scrape(proxy);
    expect(sample(text, 'pullthrough_tunnels_open')).toBe(0);
    expect(sample(text, 'pullthrough_tunnel_bytes_total', { direction: 'up' })).toBe(line['bytesUp']);
    expect(sample(text, 'pullthrough_tunnel_bytes_total', { direction: 'down' })).toBe(line['bytesDown']);
    expect(line['bytesUp']).toBe('not even TLS'.length);
  });

  it('counts evictions by reason and the bytes they freed, and the cache size after', async () => {
    const upstream = await startFakeRegistry();
    const size = Math.round(3.2 * 1024 * 1024);
    const digests = [1, 2, 3].map(() => upstream.addBlob(randomBytes(size)));
    const proxy = await startProxy({
      registries: [upstream.authority],
      cache: { maxSize: '10MiB', minFree: '0%' },
    });
    for (const digest of digests) {
      await (await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${digest}`)).body.dump();
      await proxy.app.fills.idle();
    }
    // 9.6 MiB is past 95 % of 10 MiB: the least recently used goes.
    const evicted = await proxy.waitForLog((l) => l.msg === 'evicted');
    await proxy.waitForLog((l) => l.msg === 'eviction pass');

    const text = await scrape(proxy);
    expect(sample(text, 'pullthrough_evictions_total', { reason: 'cap' })).toBe(1);
    expect(sample(text, 'pullthrough_evicted_bytes_total')).toBe(evicted['bytes']);
    expect(evicted['bytes']).toBe(size);
    expect(sample(text, 'pullthrough_cache_files')).toBe(2);
    expect(sample(text, 'pullthrough_cache_size_bytes')).toBe(2 * size);
  });

  it('counts a cache write that failed by its code (a cache on a read-only disk)', async (ctx) => {
    const dir = await mountTmpfs('4m');
    if (!dir) return ctx.skip();
    const upstream = await startFakeRegistry();
    const content = randomBytes(10_000);
    const digest = upstream.addBlob(content);
    // A first run lays the cache out; the disk is then made read-only (root ignores chmod).
    await (await startProxy({ cache: { dir } })).close();
    await remountReadOnly(dir);
    const proxy = await startProxy({ registries: [upstream.authority], cache: { dir } });

    const res = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${digest}`);
    expect((await res.body.bytes()).length).toBe(content.length);
    await proxy.app.fills.idle();
    await proxy.waitForLog((l) => l.msg === 'cache not writable: serving without caching');
    // Each write that failed counts: the fill's temp file, and the records written beside it.
    const failures = sample(await scrape(proxy), 'pullthrough_cache_write_failures_total', { code: 'EROFS' });
    expect(failures).toBeGreaterThanOrEqual(1);
  });

  it("reads Docker Hub's rate-limit headers into gauges", async () => {
    const upstream = await startFakeRegistry();
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [] }));
    const mediaType = 'application/vnd.oci.image.manifest.v1+json';
    upstream.route('/v2/library/alpine/manifests/latest', (req, res) => {
      res.writeHead(200, {
        'content-type': mediaType,
        'content-length': manifest.length,
        'docker-content-digest': sha256(manifest),
        'ratelimit-limit': '100;w=21600',
        'ratelimit-remaining': '76;w=21600',
      });
      res.end(req.method === 'HEAD' ? undefined : manifest);
    });
    const proxy = await startProxy({ registries: [upstream.authority] });
    const registry = upstream.authority;
    const before = await scrape(proxy);
    expect(sample(before, 'pullthrough_upstream_ratelimit_remaining', { registry })).toBe(undefined);

    const res = await proxy.fetch(registry, '/v2/library/alpine/manifests/latest');
    expect(res.statusCode).toBe(200);
    await res.body.dump();

    const text = await scrape(proxy);
    expect(sample(text, 'pullthrough_upstream_ratelimit_remaining', { registry })).toBe(76);
    expect(sample(text, 'pullthrough_upstream_ratelimit_limit', { registry })).toBe(100);
  });

  it.skipIf(!hasPromtool)('passes promtool check metrics', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(randomBytes(1000));
    const proxy = await startProxy({ registries: [upstream.authority] });
    await (await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${digest}`)).body.dump();
    await proxy.waitForLog((l) => l.msg === 'request');
    const check = spawnSync('promtool', ['check', 'metrics'], {
      input: await scrape(proxy),
      encoding: 'utf8',
    });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it.skipIf(hasPromtool)('passes promtool check metrics: SKIPPED, promtool is not installed', () => {});
});
