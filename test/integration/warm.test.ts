// `pullthrough warm` spawned against the real proxy and a fake upstream that wants anonymous
// Bearer tokens: the chosen platform of an index is pulled into the cache (and the other is
// not), after which a client's pull costs upstream no blob GET; a second warm finds everything
// cached already; a reference upstream does not have fails the run with exit 1.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { OCI_MANIFEST, pushImage } from '../helpers/images.ts';
import { startProxy } from '../helpers/proxy.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, env).exited;

/** A platform image of a config and one layer; returns its manifest digest and blobs. */
function platformImage(upstream: FakeRegistry, name: string, arch: string) {
  const pushed = pushImage(upstream, name, `${arch}-only`, [randomBytes(20_000)], { architecture: arch });
  return { manifest: pushed.manifest, blobs: [pushed.config, ...pushed.layers], size: pushed.manifestSize };
}

describe('pullthrough warm', () => {
  it('pulls the chosen platform through the proxy so that a later pull costs no upstream blob GET', async () => {
    const upstream = await startFakeRegistry();
    upstream.useTokenAuth({});
    const proxy = await startProxy({ registries: [upstream.authority] });
    const amd64 = platformImage(upstream, 'lib/app', 'amd64');
    const arm64 = platformImage(upstream, 'lib/app', 'arm64');
    const descriptor = (image: typeof amd64, architecture: string) => ({
      mediaType: OCI_MANIFEST,
      digest: image.manifest,
      size: image.size,
      platform: { os: 'linux', architecture },
    });
    upstream.addManifest(
      'lib/app',
      'v1',
      {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [descriptor(amd64, 'amd64'), descriptor(arm64, 'arm64')],
      },
      OCI_INDEX,
    );
    const ref = `${upstream.authority}/lib/app:v1`;

    const first = await cli(['warm', ref, '--platform', 'linux/amd64', '--proxy', proxy.url]);
    expect(first.stderr).toMatch(new RegExp(`^${ref}: fetched 2 blobs, .* \\(linux/amd64\\)\\n$`));
    expect(first.stdout).toMatch(/^1 image: 0 cached already, 1 fetched \(19\.\d KiB\), 0 failed\n$/);
    expect(first.code).toBe(0);
    expect(upstream.issued.length).toBeGreaterThan(0); // the anonymous token flow ran
    await proxy.app.fills.idle();
    for (const digest of amd64.blobs) expect(upstream.hits('GET', `/v2/lib/app/blobs/${digest}`)).toBe(1);
    for (const digest of arm64.blobs) expect(upstream.hits('GET', `/v2/lib/app/blobs/${digest}`)).toBe(0);

    // A client pulling linux/amd64 now: every blob from the cache, none from upstream.
    const blobGets = () =>
      upstream.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
    const before = blobGets();
    const token = upstream.issued.at(-1)?.token ?? '';
    for (const digest of amd64.blobs) {
      const res = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${digest}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-cache']).toBe('HIT');
      await res.body.dump();
    }
    expect(blobGets()).toBe(before);

    const again = await cli(['warm', ref, '--platform', 'linux/amd64', '--proxy', proxy.url]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^1 image: 1 cached already, 0 fetched \(0 B\), 0 failed\n$/);
    expect(blobGets()).toBe(before);
  });

  it('takes every platform with --all-platforms, reads --file, and exits 1 when a reference fails', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority] });
    const amd64 = platformImage(upstream, 'lib/app', 'amd64');
    const arm64 = platformImage(upstream, 'lib/app', 'arm64');
    upstream.addManifest(
      'lib/app',
      'v1',
      {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [amd64, arm64].map((image, i) => ({
          mediaType: OCI_MANIFEST,
          digest: image.manifest,
          size: image.size,
          platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' },
        })),
      },
      OCI_INDEX,
    );
    const list = path.join(proxy.dir, 'images.txt');
    await writeFile(
      list,
      `# warmed nightly\n${upstream.authority}/lib/app:v1\n\n${upstream.authority}/lib/missing:v1\n`,
    );
    const run = await cli(['warm', '--file', list, '--all-platforms', '--proxy', proxy.url]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /^2 images: 0 cached already, 1 fetched \(.*\), 1 failed\n  .*lib\/missing:v1: .*404/,
    );
    for (const digest of [...amd64.blobs, ...arm64.blobs]) {
      expect(upstream.hits('GET', `/v2/lib/app/blobs/${digest}`)).toBe(1);
    }
    const usage = await cli(['warm', '--proxy', proxy.url]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^pullthrough: warm needs at least one image reference/);
  });

  it('authenticates to a proxy with htpasswd from the proxy URL or PULLTHROUGH_PROXY, never echoing the password', async () => {
    const upstream = await startFakeRegistry();
    const htpasswd = path.join(await tempDir(), 'users');
    await writeFile(htpasswd, `alice:${await bcrypt.hash('wonder land', 4)}\n`);
    const proxy = await startProxy({ registries: [upstream.authority], proxy: { htpasswd } });
    const image = platformImage(upstream, 'lib/locked', 'amd64');
    const ref = `${upstream.authority}/lib/locked:amd64-only`;
    const { port } = proxy;

    const none = await cli(['warm', ref, '--proxy', proxy.url]);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain(
      `the proxy at ${proxy.url} wants credentials (407): give them in the proxy URL, http://USER:PASSWORD@HOST:PORT (--proxy or PULLTHROUGH_PROXY)`,
    );
    const wrong = await cli(['warm', ref, '--proxy', `http://alice:nope@127.0.0.1:${port}`]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain(
      `the proxy at http://alice:***@127.0.0.1:${port} refused these credentials (407)`,
    );
    expect(wrong.stdout + wrong.stderr).not.toContain('nope');
    for (const digest of image.blobs) expect(upstream.hits('GET', `/v2/lib/locked/blobs/${digest}`)).toBe(0);

    const byUrl = await cli(['warm', ref, '--proxy', `http://alice:wonder%20land@127.0.0.1:${port}`]);
    expect(byUrl.stdout).toMatch(/^1 image: 0 cached already, 1 fetched \(.*\), 0 failed\n$/);
    expect(byUrl.code).toBe(0);
    // Through the environment (out of `ps`): the same proxy, the image cached already.
    const byEnv = await cli(['warm', ref], {
      PULLTHROUGH_PROXY: `http://alice:wonder%20land@127.0.0.1:${port}`,
    });
    expect(byEnv.stdout).toMatch(/^1 image: 1 cached already, 0 fetched \(0 B\), 0 failed\n$/);
    expect(byEnv.code).toBe(0);
    for (const digest of image.blobs) expect(upstream.hits('GET', `/v2/lib/locked/blobs/${digest}`)).toBe(1);
  });
});
