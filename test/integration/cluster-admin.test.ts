// The admin API on any replica of a cluster: a replica that does not keep the books answers the
// cache-wide paths with the bookkeeper's answer (listing, purge), after checking the caller's
// token itself; its own paths (stats) stay its own; the internal hop wants the cluster secret;
// and with Redis gone it answers 503 saying why and that it passes, with Retry-After.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { tempDir } from '../helpers/tmp.ts';
import { addImage, pullImage } from '../helpers/images.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

const TOKEN = 'admin-token-0123456789';
const SECRET = 'cluster-test-secret-0123456789';
const KEEPS = 'cache bookkeeper: this replica keeps the books';

async function admin(proxy: TestProxy, method: string, urlPath: string, token = TOKEN) {
  const res = await request(`${proxy.url}${urlPath}`, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${token}` },
  });
  return {
    status: res.statusCode,
    headers: res.headers,
    body: (await res.body.json()) as Record<string, unknown>,
  };
}

describe.skipIf(!(await hasRedisServer()))('cluster admin API (needs redis-server)', () => {
  it('answers the cache-wide paths on every replica with the bookkeeper’s books', async () => {
    const upstream = await startFakeRegistry();
    const redis = await startRedis();
    const dir = path.join(await tempDir(), 'cache');
    const started: TestProxy[] = [];
    for (const id of ['r1', 'r2']) {
      started.push(
        await startProxy({
          registries: [upstream.authority],
          cache: { dir },
          admin: { token: TOKEN },
          cluster: {
            redis: redis.url,
            secret: SECRET,
            id,
            listen: '127.0.0.1:0',
            heartbeat: '100ms',
            leaseTtl: '3s',
          },
        }),
      );
    }
    const keeper = await Promise.race(started.map((p) => p.waitForLog((l) => l.msg === KEEPS).then(() => p)));
    const other = started.find((p) => p !== keeper)!;
    const keeperId = keeper === started[0] ? 'r1' : 'r2';
    const image = addImage(upstream, 'lib/a', 64 * 1024);
    await pullImage(other, upstream, image);
    const listing = async (proxy: TestProxy) => {
      // The bookkeeper applies the other replica's events every 250 ms: ask until it has them.
      for (const deadline = Date.now() + 10_000; ;) {
        const answer = await admin(proxy, 'GET', '/admin/images');
        if (JSON.stringify(answer.body).includes(image.manifest) || Date.now() > deadline) return answer;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const there = await listing(keeper);
    const here = await listing(other);
    expect([there.status, here.status]).toEqual([200, 200]);
    expect(here.body).toEqual(there.body);
    expect(JSON.stringify(here.body)).toContain(image.manifest);
    expect(here.headers['x-pullthrough-bookkeeper']).toBe(keeperId);
    expect(here.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(there.headers['x-pullthrough-bookkeeper']).toBeUndefined();

    // The caller's token is checked where it arrives: the forwarded hop would not check it.
    const refused = await admin(other, 'GET', '/admin/images', 'wrong-token-0123456789');
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="pullthrough admin"');
    // The internal endpoint wants the cluster secret, not the admin token.
    const port = keeper.app.cluster!.endpointPort;
    const internal = await request(`http://127.0.0.1:${port}/cluster/v1/admin/images`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(internal.statusCode).toBe(401);
    await internal.body.dump();
    // Per replica: its own stats, never the bookkeeper's.
    const stats = await admin(other, 'GET', '/admin/stats');
    expect(stats.status).toBe(200);
    expect(stats.headers['x-pullthrough-bookkeeper']).toBeUndefined();

    // A purge through the replica that does not keep the books takes effect in the shared cache.
    const purged = await admin(other, 'DELETE', `/admin/images?registry=${upstream.authority}`);
    expect(purged.status).toBe(200);
    expect(purged.body['images']).toBe(1);
    const hex = image.layer.slice('sha256:'.length);
    expect(existsSync(path.join(dir, 'blobs', 'sha256', hex.slice(0, 2), hex))).toBe(false);
    expect(JSON.stringify((await admin(keeper, 'GET', '/admin/images')).body)).not.toContain(image.manifest);

    // Redis gone: nobody can say who keeps the books; a 503 that says so, not a crash.
    await redis.stop();
    const down = await admin(other, 'GET', '/admin/images');
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBe('3');
    expect(String(down.body['error'])).toMatch(/no cache bookkeeper can answer: Redis cannot say.*retry/);
  });
});
