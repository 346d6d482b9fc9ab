// Private content never leaks: what a client could not pull upstream, it cannot pull from the
// cache. The fake upstream does token auth the way Docker Hub does (every request needs a
// token; the token server gives anonymous ones to anyone and a user's own for Basic
// credentials), with some repositories private. Then the registry policies: share (the proxy
// logs in with configured credentials, everything goes to everyone) and no-cache.
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const ACCOUNTS = { alice: 'alice-secret', bob: 'bob-secret' };

/** Asks the token server through the proxy, as a client does: a user's token, or an anonymous one. */
async function tokenFor(
  proxy: TestProxy,
  upstream: FakeRegistry,
  name: string,
  user?: keyof typeof ACCOUNTS,
): Promise<string> {
  const res = await proxy.fetch(
    upstream.authority,
    `/token?service=fake&scope=${encodeURIComponent(`repository:${name}:pull`)}`,
    user ? { headers: { authorization: basic(user, ACCOUNTS[user]) } } : {},
  );
  expect(res.statusCode).toBe(200);
  return `Bearer ${((await res.body.json()) as { token: string }).token}`;
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

async function getBlob(
  proxy: TestProxy,
  upstream: FakeRegistry,
  name: string,
  digest: string,
  authorization?: string,
) {
  const res = await proxy.fetch(upstream.authority, `/v2/${name}/blobs/${digest}`, {
    headers: authorization ? { authorization } : {},
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  await proxy.app.fills.idle();
  return { status: res.statusCode, cache: res.headers['x-cache'], headers: res.headers, body };
}

function errorMessage(body: Buffer): string | undefined {
  return (JSON.parse(body.toString()) as { errors: Array<{ message: string }> }).errors[0]?.message;
}

const blobGets = (upstream: FakeRegistry) =>
  upstream.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;

async function storedBlobs(proxy: TestProxy): Promise<number> {
  const root = path.join(proxy.dir, 'cache', 'blobs', 'sha256');
  let count = 0;
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    count += (await readdir(path.join(root, prefix))).length;
  }
  return count;
}

describe('policy verify (the default)', () => {
  it('serves a cached private blob only to clients upstream authorizes', async () => {
    const upstream = await startFakeRegistry();
    upstream.useTokenAuth(ACCOUNTS);
    upstream.makePrivate('private/');
    const secret = Buffer.from('private layer bytes');
    const digest = upstream.addBlob(secret);
    const proxy = await startProxy({ registries: [upstream.authority] });

    const aliceToken = await tokenFor(proxy, upstream, 'private/app', 'alice');
    const alice = await getBlob(proxy, upstream, 'private/app', digest, aliceToken);
    expect(alice).toMatchObject({ status: 200, cache: 'MISS' });
    expect(alice.body.equals(secret)).toBe(true);
    expect(await storedBlobs(proxy)).toBe(1);

    // Anonymous (no credential, and an anonymous token) and a made-up token: upstream's 401.
    for (const authorization of [
      undefined,
      await tokenFor(proxy, upstream, 'private/app'),
      'Bearer forged',
    ]) {
      const denied = await getBlob(proxy, upstream, 'private/app', digest, authorization);
      expect(denied.status, String(authorization)).toBe(401);
      expect(denied.headers['www-authenticate']).toMatch(
        /^Bearer realm=".*\/token",service="fake",scope="repository:private\/app:pull"/,
      );
      expect(denied.body.includes(secret)).toBe(false);
      expect(JSON.parse(denied.body.toString())).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] });
    }
    // A wrong password gets no token at all.
    const wrong = await proxy.fetch(
      upstream.authority,
      '/token?service=fake&scope=repository:private/app:pull',
      {
        headers: { authorization: basic('alice', 'guess') },
      },
    );
    expect(wrong.statusCode).toBe(401);
    await wrong.body.dump();

    // Bob may read it upstream: served from the cache after one HEAD with his token.
    const bob = await getBlob(
      proxy,
      upstream,
      'private/app',
      digest,
      await tokenFor(proxy, upstream, 'private/app', 'bob'),
    );
    expect(bob).toMatchObject({ status: 200, cache: 'HIT' });
    expect(bob.body.equals(secret)).toBe(true);
    expect(blobGets(upstream)).toBe(1);
    const heads = upstream.requests.filter((r) => r.method === 'HEAD');
    expect(heads.map((r) => r.headers.authorization?.split('-')[0])).toEqual(
      expect.arrayContaining(['Bearer anonymous', 'Bearer forged', 'Bearer bob']),
    );
    // Her grant is remembered: Alice's second pull with the same token asks upstream nothing.
    const before = upstream.requests.length;
    expect(await getBlob(proxy, upstream, 'private/app', digest, aliceToken)).toMatchObject({
      status: 200,
      cache: 'HIT',
    });
    expect(upstream.requests.slice(before)).toEqual([]);
  });

  it('serves a public blob to everyone, fetched once, and notices when its repository turns private', async () => {
    const upstream = await startFakeRegistry();
    upstream.useTokenAuth(ACCOUNTS);
    const layer = Buffer.from('public layer bytes');
    const digest = upstream.addBlob(layer);
    // publicTtl 0s: every anonymous hit asks upstream again, so the change shows at once.
    const proxy = await startProxy({ registries: [upstream.authority], access: { publicTtl: '0s' } });

    for (const user of [undefined, undefined, 'alice'] as const) {
      const res = await getBlob(
        proxy,
        upstream,
        'lib/app',
        digest,
        await tokenFor(proxy, upstream, 'lib/app', user),
      );
      expect(res.status).toBe(200);
      expect(res.body.equals(layer)).toBe(true);
    }
    expect(blobGets(upstream)).toBe(1);

    upstream.makePrivate('lib/');
    const anonymous = await getBlob(
      proxy,
      upstream,
      'lib/app',
      digest,
      await tokenFor(proxy, upstream, 'lib/app'),
    );
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.includes(layer)).toBe(false);
    const alice = await getBlob(
      proxy,
      upstream,
      'lib/app',
      digest,
      await tokenFor(proxy, upstream, 'lib/app', 'alice'),
    );
    expect(alice).toMatchObject({ status: 200, cache: 'HIT' });
  });

  it.each([
    { offlineGrace: '1h', alice: 200 },
    { offlineGrace: '0s', alice: 401 },
  ])(
    'while upstream is down, keeps a grant for access.offlineGrace ($offlineGrace) and refuses everyone else',
    async ({ offlineGrace, alice: aliceStatus }) => {
      const upstream = await startFakeRegistry();
      upstream.useTokenAuth(ACCOUNTS);
      upstream.makePrivate('private/');
      const digest = upstream.addBlob(Buffer.from('offline private'));
      // grantTtl 0s: online, every request is checked upstream; offline, the grace period decides.
      const proxy = await startProxy({
        registries: [upstream.authority],
        access: { grantTtl: '0s', offlineGrace },
      });
      const alice = await tokenFor(proxy, upstream, 'private/app', 'alice');
      const anonymous = await tokenFor(proxy, upstream, 'private/app');
      expect((await getBlob(proxy, upstream, 'private/app', digest, alice)).status).toBe(200);
      await upstream.close();

      expect((await getBlob(proxy, upstream, 'private/app', digest, alice)).status).toBe(aliceStatus);
      const refused = await getBlob(proxy, upstream, 'private/app', digest, anonymous);
      expect(refused.status).toBe(401);
      expect(errorMessage(refused.body)).toContain('upstream registry unreachable');
    },
  );
});

describe('policy share', () => {
  it('logs in with the configured credentials for clients that send none, and serves everyone', async () => {
    const upstream = await startFakeRegistry();
    upstream.useTokenAuth(ACCOUNTS);
    upstream.makePrivate('private/');
    const cdn = await startFakeRegistry();
    const secret = Buffer.from('shared private layer');
    const digest = upstream.addBlob(secret);
    cdn.addBlob(secret);
    upstream.redirectBlobsTo(`https://${cdn.authority}`);
    const dir = await tempDir();
    const passwordFile = path.join(dir, 'alice.password');
    await writeFile(passwordFile, `${ACCOUNTS.alice}\n`);
    const proxy = await startProxy({
      registries: [{ host: upstream.authority, policy: 'share' }, cdn.authority],
      upstream: { credentials: [{ host: upstream.authority, username: 'alice', passwordFile }] },
    });

    const ping = await proxy.fetch(upstream.authority, '/v2/');
    expect(ping.statusCode).toBe(200);
    await ping.body.dump();
    for (const expected of ['MISS', 'HIT']) {
      const res = await getBlob(proxy, upstream, 'private/app', digest);
      expect(res).toMatchObject({ status: 200, cache: expected });
      expect(res.body.equals(secret)).toBe(true);
    }
    expect(upstream.issued.map((t) => t.user)).toEqual(['alice', 'alice']);
    expect(upstream.issued.map((t) => t.scope)).toEqual([null, 'repository:private/app:pull']);
    // The CDN got the redirect's signed URL and nothing of Alice's.
    expect(cdn.requests).toHaveLength(1);
    expect(cdn.requests[0]?.headers.authorization).toBeUndefined();
    // Her password never reaches the log.
    expect(JSON.stringify(proxy.logs)).not.toContain(ACCOUNTS.alice);
    expect(proxy.logs.find((l) => l.msg === 'registry policy')).toMatchObject({ policy: 'share' });
  });

  it('answers 502 with the reason when the configured credentials cannot be read', async () => {
    const upstream = await startFakeRegistry();
    upstream.useTokenAuth(ACCOUNTS);
    const digest = upstream.addBlob(Buffer.from('x'));
    const proxy = await startProxy({
      registries: [{ host: upstream.authority, policy: 'share' }],
      upstream: {
        credentials: [{ host: upstream.authority, username: 'alice', passwordFile: '/nonexistent/pw' }],
      },
    });
    const res = await getBlob(proxy, upstream, 'lib/app', digest);
    expect(res.status).toBe(502);
    expect(errorMessage(res.body)).toMatch(/cannot log in to .* with the configured credentials: ENOENT/);
  });
});

describe('policy no-cache', () => {
  it('relays blobs and manifests and writes nothing to disk', async () => {
    const upstream = await startFakeRegistry();
    const digest = upstream.addBlob(Buffer.from('never on disk'));
    upstream.addManifest('lib/app', 'v1', { schemaVersion: 2, layers: [] });
    const proxy = await startProxy({ registries: [{ host: upstream.authority, policy: 'no-cache' }] });
    for (let i = 0; i < 2; i += 1) {
      expect((await getBlob(proxy, upstream, 'lib/app', digest)).status).toBe(200);
      const manifest = await proxy.fetch(upstream.authority, '/v2/lib/app/manifests/v1', {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(manifest.statusCode).toBe(200);
      await manifest.body.dump();
    }
    expect(blobGets(upstream)).toBe(2);
    expect(
      upstream.requests.filter((r) => r.path.includes('/manifests/') && r.method === 'GET'),
    ).toHaveLength(2);
    const written = await readdir(path.join(proxy.dir, 'cache'), { recursive: true });
    expect(
      written.filter((f) => /^(blobs|manifests|tags|public)\/.+/.test(f) && !f.endsWith('sha256')),
    ).toEqual([]);
    const lines = proxy.logs.filter((l) => l.msg === 'request');
    expect(lines.every((l) => l['cache'] === 'bypass')).toBe(true);
  });
});
