// registries[].allow / deny: a refused repository is answered 403 DENIED by the proxy, naming
// the rule, for every route that names it; nothing reaches upstream, and the refusal is logged.
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { size: 1 }, layers: [] };

describe('repository filters', () => {
  it('refuses denied and unlisted repositories without asking upstream, and serves allowed ones', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('library/app', 'v1', manifest);
    upstream.addManifest('library/crypto-miner', 'v1', manifest);
    const blob = upstream.addBlob(Buffer.from('layer'));
    const proxy = await startProxy({
      registries: [{ host: upstream.authority, allow: ['library/*'], deny: ['*/crypto-miner*'] }],
    });

    const paths = [
      '/v2/library/crypto-miner/manifests/v1',
      `/v2/library/crypto-miner/blobs/${blob}`,
      '/v2/library/crypto-miner/tags/list',
      '/v2/other/app/manifests/v1',
      `/v2/other/app/blobs/${blob}`,
    ];
    for (const path of paths) {
      const res = await proxy.fetch(upstream.authority, path);
      expect(res.statusCode, path).toBe(403);
      const body = (await res.body.json()) as { errors: Array<{ code: string; message: string }> };
      expect(body.errors[0]?.code).toBe('DENIED');
      expect(body.errors[0]?.message).toBe(
        path.includes('crypto-miner')
          ? `repository library/crypto-miner is denied by this proxy (registries[${upstream.authority}].deny: "*/crypto-miner*")`
          : `repository other/app is not allowed by this proxy (registries[${upstream.authority}].allow: "library/*")`,
      );
    }
    const push = await proxy.fetch(upstream.authority, '/v2/other/app/blobs/uploads/', { method: 'POST' });
    expect(push.statusCode).toBe(403);
    await push.body.dump();
    expect(upstream.requests).toEqual([]);

    const allowed = await proxy.fetch(upstream.authority, '/v2/library/app/manifests/v1', {
      headers: { accept: OCI_MANIFEST },
    });
    expect(allowed.statusCode).toBe(200);
    await allowed.body.dump();
    expect(upstream.requests.map((r) => r.path)).toEqual([
      '/v2/library/app/manifests/v1',
      '/v2/library/app/manifests/v1',
    ]);
    const line = await proxy.waitForLog(
      (l) => l.msg === 'request' && l['repo'] === 'other/app' && l['method'] === 'POST',
    );
    expect(line).toMatchObject({ status: 403, code: 'DENIED', route: 'upload' });
    expect(String(line['err'])).toContain('registries[');
  });

  it('a registry without filters serves every repository', async () => {
    const upstream = await startFakeRegistry();
    upstream.addManifest('evil/crypto-miner', 'v1', manifest);
    const proxy = await startProxy({ registries: [upstream.authority] });
    const res = await proxy.fetch(upstream.authority, '/v2/evil/crypto-miner/manifests/v1', {
      headers: { accept: OCI_MANIFEST },
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });
});
