// Records written while answering (tag records, manifest side files) are best effort: when they
// cannot be written the client still gets the whole, verified manifest, and the failure is
// logged once. The cache's own directories are replaced by files here, which makes every write
// under them fail (as root, permissions would not); test/e2e covers full and read-only disks.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MANIFEST = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { size: 1 }, layers: [] };

/** Makes `dir` (inside the cache) a file, so nothing can be written below it. */
async function block(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.dirname(dir), { recursive: true });
  await writeFile(dir, 'not a directory');
}

describe('unwritable records', () => {
  it('serves tags whose records cannot be written, every time, and logs the cause once', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addManifest('lib/app', 'v1', MANIFEST);
    const proxy = await startProxy({ registries: [upstream.authority] });
    await block(path.join(proxy.dir, 'cache', 'tags'));
    for (let i = 0; i < 3; i += 1) {
      const res = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/v1', {
        headers: { accept: OCI_MANIFEST },
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(digest);
      expect(await res.body.json()).toEqual(MANIFEST);
    }
    const warning = await proxy.waitForLog((l) => l.msg === 'cache not writable: serving without caching');
    expect(String(warning['path'])).toContain(path.join('cache', 'tags'));
    expect(proxy.logs.filter((l) => l.msg === 'cache not writable: serving without caching')).toHaveLength(1);
  });

  it('serves a manifest it cannot store as BYPASS, and fetches it again next time', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addManifest('lib/app', 'v1', MANIFEST);
    const proxy = await startProxy({ registries: [upstream.authority] });
    await block(path.join(proxy.dir, 'cache', 'manifests'));
    for (let i = 0; i < 2; i += 1) {
      const res = await proxy.fetch(upstream.authority, `/v2/lib/app/manifests/${digest}`, {
        headers: { accept: OCI_MANIFEST },
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-cache']).toBe('BYPASS');
      expect(await res.body.json()).toEqual(MANIFEST);
    }
    expect(upstream.hits('GET', `/v2/lib/app/manifests/${digest}`)).toBe(2);
  });
});
