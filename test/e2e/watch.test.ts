// The watch of the tags in use (issue 25) against the real registry: skopeo pulls three tags
// through a watching proxy (interval 1s, at most 1 HEAD/s per registry). The tag re-pushed
// upstream with another image (skopeo copy without the proxy) turns `changed`: one webhook
// POST with both digests, the metric counts it. The tag deleted upstream (skopeo delete) turns
// `vanished`, is pinned, and skopeo still pulls it through the proxy, from the cache (serveStaleOn
// has 404). The registry's own log shows the watch's HEADs under the rate. A proxy with
// watch.interval 0 watches nothing.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { NODE_FLAGS } from '../../src/node-flags.ts';
import { skopeo, skopeoCopy } from './env/clients/skopeo.ts';
import { nodeBinary, REPO_ROOT, type Pullthrough } from './env/proxy.ts';
import { run } from './env/processes.ts';
import type { Registry } from './env/registry.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { poll } from './env/wait.ts';
import { REGISTRY } from './env/world.ts';

const TOKEN = 'e2e-admin-token-0123456789';
const RATE = 1;
const world = useWorld({
  images: {
    watched: { repository: 'e2e/watched', tag: 'v1', file: 'watched.bin', size: 64 << 10 },
    replacement: { repository: 'e2e/replacement', tag: 'v1', file: 'replacement.bin', size: 64 << 10 },
    gone: { repository: 'e2e/gone', tag: 'v1', file: 'gone.bin', size: 64 << 10 },
  },
});

interface Posted {
  readonly reference: string;
  readonly state: string;
  readonly oldDigest: string;
  readonly newDigest: string | null;
  readonly pinned: string | null;
  readonly text: string;
}

/** The webhook receiver: every POST body, in order. */
const posts: Posted[] = [];
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    posts.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Posted);
    res.writeHead(204).end();
  });
});
afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

function nextPost(state: string): Promise<Posted> {
  return poll(() => Promise.resolve(posts.find((post) => post.state === state)), {
    what: `a webhook POST with state ${state}`,
    timeoutMs: 20_000,
  });
}

async function admin<T>(proxy: Pullthrough, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${proxy.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: (await res.json()) as T };
}

interface WatchedTag {
  readonly repository: string;
  readonly state: string;
}

async function untilState(proxy: Pullthrough, repository: string, state: string): Promise<void> {
  await poll(
    async () => {
      const { body } = await admin<{ tags: WatchedTag[] }>(proxy, '/admin/watch');
      return body.tags.find((t) => t.repository === repository)?.state === state ? true : undefined;
    },
    { what: `${repository} to be ${state}`, timeoutMs: 20_000, intervalMs: 100 },
  );
}

/**
 * Manifest HEADs in the registry's own log, answered or not: distribution logs a 404 as
 * "response completed with error", which servedRequests() leaves out. Call after mark().
 */
function manifestHeads(registry: Registry): number {
  return readFileSync(registry.daemon.logFile, 'utf8')
    .split('\n')
    .filter((line) => /msg="response completed/.test(line) && line.includes('http.request.method=HEAD'))
    .filter((line) => /http\.request\.uri="?\/v2\/\S+\/manifests\//.test(line)).length;
}

test('a re-pushed tag turns changed (one POST, both digests), a deleted one vanished, pinned and still served', async () => {
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const registry = world().registries.find((r) => r.name === REGISTRY);
  if (registry === undefined) throw new Error(`no ${REGISTRY} in the world`);
  const proxy = await world().startProxy('proxy-watch', {
    admin: { token: TOKEN },
    watch: { interval: '1s', ratePerSecond: RATE, webhook },
    registrySettings: { serveStaleOn: ['unreachable', '5xx', '429', '404'] },
  });
  const [small, watched, gone] = [world().images.small, world().image('watched'), world().image('gone')];
  for (const image of [small, watched, gone]) {
    const ref = `docker://${REGISTRY}/${image.repository}:${image.tag}`;
    const dest = world().mkdir(`pulled-${image.repository.replace('/', '-')}`);
    expectSuccess(
      `skopeo copy ${image.repository}`,
      await skopeoCopy(world(), ref, dest, { certDir: proxy.caCertDir, proxy: proxy.url }),
    );
  }
  for (const image of [small, watched, gone]) await untilState(proxy, image.repository, 'ok');

  // Re-tag upstream, past the proxy: the replacement image under e2e/watched:v1.
  const started = Date.now();
  await registry.mark();
  const before = manifestHeads(registry);
  const replacement = world().image('replacement');
  expectSuccess(
    'skopeo copy (re-push, no proxy)',
    await skopeo(
      world(),
      [
        'copy',
        '--quiet',
        '--dest-cert-dir',
        world().pki.caCertDir,
        `oci:${join(world().dir, 'oci')}:${replacement.layoutName}`,
        `docker://${REGISTRY}/${watched.repository}:${watched.tag}`,
      ],
      { proxy: false },
    ),
  );
  const changed = await nextPost('changed');
  expect(changed).toMatchObject({
    reference: `${REGISTRY}/${watched.repository}:${watched.tag}`,
    oldDigest: watched.manifest.digest,
    newDigest: replacement.manifest.digest,
    pinned: null,
  });
  expect(changed.text).toContain('changed upstream');
  const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
  expect(metrics).toContain(`pullthrough_watch_events_total{registry="${REGISTRY}:443",kind="changed"} 1`);
  expect(metrics).toContain(`pullthrough_watched_tags{registry="${REGISTRY}:443",state="changed"} 1`);

  // The tag deleted upstream: vanished, pinned, and still pulled by tag from the cache.
  expectSuccess(
    'skopeo delete (no proxy)',
    await skopeo(
      world(),
      ['delete', '--cert-dir', world().pki.caCertDir, `docker://${REGISTRY}/${gone.repository}:${gone.tag}`],
      { proxy: false },
    ),
  );
  const vanished = await nextPost('vanished');
  const goneRef = `${REGISTRY}/${gone.repository}:${gone.tag}`;
  expect(vanished).toMatchObject({
    reference: goneRef,
    oldDigest: gone.manifest.digest,
    newDigest: null,
    pinned: goneRef,
  });
  expect((await admin<{ runtime: string[] }>(proxy, '/admin/pins')).body.runtime).toEqual([goneRef]);
  const from = proxy.log.mark();
  expectSuccess(
    'skopeo copy (vanished tag, through the proxy)',
    await skopeoCopy(world(), `docker://${goneRef}`, world().mkdir('after-vanish'), {
      certDir: proxy.caCertDir,
      proxy: proxy.url,
    }),
  );
  const tagLine = await proxy.log.waitForRequest(
    REGISTRY,
    'GET',
    `/v2/${gone.repository}/manifests/${gone.tag}`,
    { from },
  );
  expect(tagLine['cache']).toBe('stale');

  // The watch's HEADs stayed under its rate: three tags each second would be 3/s without it.
  // (One more HEAD is the proxy's own revalidation of the vanished tag for skopeo's pull.)
  await registry.mark();
  const seconds = (Date.now() - started) / 1000;
  const heads = manifestHeads(registry) - before;
  console.log(`[e2e] watch | ${heads} manifest HEADs in ${seconds.toFixed(1)} s at ratePerSecond ${RATE}`);
  expect(heads).toBeGreaterThan(0);
  expect(heads).toBeLessThanOrEqual(Math.ceil(seconds * RATE) + 2);
  // One POST per change, no repeats while the states hold.
  expect(posts.filter((p) => p.reference.endsWith(`${watched.repository}:${watched.tag}`))).toHaveLength(1);

  // The CLI lists the same states.
  const cli = expectSuccess(
    'pullthrough watch',
    await run(
      nodeBinary(),
      [...NODE_FLAGS, join(REPO_ROOT, 'src', 'main.ts'), 'watch', '--server', proxy.url],
      {
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          HOME: world().home,
          PULLTHROUGH_ADMIN_TOKEN: TOKEN,
        },
        timeoutMs: 30_000,
      },
    ),
  );
  expect(cli.stdout).toMatch(/e2e\/watched:v1\s+changed/);
  expect(cli.stdout).toMatch(/e2e\/gone:v1\s+vanished.*pinned/);
});

test('with watch.interval 0 nothing is watched', async () => {
  const proxy = await world().startProxy('proxy-nowatch', {
    admin: { token: TOKEN },
    watch: { interval: 0 },
  });
  const image = world().images.small;
  expectSuccess(
    'skopeo copy (no watch)',
    await skopeoCopy(
      world(),
      `docker://${REGISTRY}/${image.repository}:${image.tag}`,
      world().mkdir('nowatch'),
      {
        certDir: proxy.caCertDir,
        proxy: proxy.url,
      },
    ),
  );
  expect((await admin<{ error: string }>(proxy, '/admin/watch')).status).toBe(404);
  expect(proxy.log.lines.some((line) => line.msg === 'watching tags')).toBe(false);
  expect(await (await fetch(`${proxy.url}/metrics`)).text()).not.toMatch(/pullthrough_watched_tags\{/);
});
