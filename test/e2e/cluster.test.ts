// Three replicas of pullthrough on one Redis and one cache directory, in front of the real
// registry: eight skopeo clients pulling the same cold image at once, spread over the three,
// cost one upstream GET per blob in the registry's own log, and each replica serves the image
// afterwards from the cache.
import path from 'node:path';
import { expect, test } from 'vitest';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { servedRequests } from './env/registry.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import type { Pullthrough } from './env/proxy.ts';
import { REGISTRY } from './env/world.ts';

const world = useWorld({
  images: { cluster: { repository: 'e2e/cluster', tag: 'v1', file: 'cluster.bin', size: 16 * 1024 * 1024 } },
});

test.skipIf(!(await hasRedisServer()))(
  '8 skopeo clients over 3 replicas: 1 upstream GET per blob',
  async () => {
    const w = world();
    const redis = await startRedis();
    const shared = path.join(w.mkdir('cluster'), 'cache');
    const replicas: Pullthrough[] = [];
    for (const id of ['r1', 'r2', 'r3']) {
      replicas.push(
        await w.startProxy(id, {
          cache: { dir: shared },
          cluster: {
            redis: redis.url,
            secret: 'e2e-cluster-secret-0123456789',
            id,
            listen: '127.0.0.1:0',
            heartbeat: '200ms',
          },
        }),
      );
    }
    const image = w.image('cluster');
    const ref = `docker://${REGISTRY}/${image.repository}:${image.tag}`;
    const upstream = w.registries.find((registry) => registry.name === REGISTRY)!;
    const gets = (digest: string) =>
      servedRequests(upstream).filter(
        (r) => r.method === 'GET' && r.uri === `/v2/${image.repository}/blobs/${digest}`,
      ).length;

    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => {
        const replica = replicas[i % 3]!;
        return skopeoCopy(w, ref, w.mkdir(`pull-${i}`), { certDir: replica.caCertDir, proxy: replica.url });
      }),
    );
    results.forEach((result, i) => expectSuccess(`skopeo copy ${i} via r${(i % 3) + 1}`, result));
    console.log(`[e2e] cluster | 8 cold pulls over 3 replicas in ${Date.now() - started} ms`);
    await upstream.mark();
    expect(gets(image.layer.digest)).toBe(1);
    expect(gets(image.config.digest)).toBe(1);

    // How each replica served the layer: the holder's fill (miss), joined while it ran, or a hit.
    const layerPath = `/v2/${image.repository}/blobs/${image.layer.digest}`;
    const served = replicas.map((replica, i) => {
      const lines = replica.log.requests(REGISTRY).filter((line) => line.path === layerPath);
      return `r${i + 1}: ${lines.map((line) => `${String(line['cache'])}${line['shared'] ? '+shared' : ''}`).join(' ')}`;
    });
    console.log(`[e2e] cluster | layer served ${served.join(' | ')}`);
    for (const replica of replicas) {
      const line = await replica.log.waitForRequest(
        REGISTRY,
        'GET',
        `/v2/${image.repository}/blobs/${image.layer.digest}`,
      );
      expect(line['status']).toBe(200);
    }
    const again = await skopeoCopy(w, ref, w.mkdir('again'), {
      certDir: replicas[1]!.caCertDir,
      proxy: replicas[1]!.url,
    });
    expectSuccess('skopeo copy via r2 (warm)', again);
    await upstream.mark();
    expect(gets(image.layer.digest)).toBe(1);
  },
  120_000,
);
