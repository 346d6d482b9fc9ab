// `pullthrough cache …` spawned as an operator runs it, against a real proxy with the admin API
// on: ls --json and the table, purge of a tag (the next pull goes upstream again), the index of
// a stopped server read with --cache-dir, and the one-line failures with their exit codes.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RegistryListing } from '../../src/cache/catalog.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';
import { runCli } from '../helpers/cli.ts';

const TOKEN = 'cli-admin-token-0123456789';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, env).exited;

/** `name:v1` of a config and one layer on the fake upstream, pulled through the proxy. */
async function pulledImage(proxy: TestProxy, upstream: FakeRegistry, name: string) {
  const config = upstream.addBlob(Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', name })));
  const layerBytes = randomBytes(3000);
  const layer = upstream.addBlob(layerBytes);
  const manifest = upstream.addManifest(name, 'v1', {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 10 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 3000 }],
  });
  const pull = async () => {
    const res = await proxy.fetch(upstream.authority, `/v2/${name}/manifests/v1`, {
      headers: { accept: OCI_MANIFEST },
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    for (const digest of [config, layer]) {
      const blob = await proxy.fetch(upstream.authority, `/v2/${name}/blobs/${digest}`);
      expect(blob.statusCode).toBe(200);
      await blob.body.dump();
    }
    await proxy.app.fills.idle();
  };
  await pull();
  return { manifest, layer, pull };
}

describe('pullthrough cache', () => {
  it('lists as JSON and as a table, purges a tag, and reads a stopped server with --cache-dir', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy({ registries: [upstream.authority], admin: { token: TOKEN } });
    const a = await pulledImage(proxy, upstream, 'lib/a');
    await pulledImage(proxy, upstream, 'lib/b');
    const server = ['--server', proxy.url];

    const json = await cli(['cache', 'ls', '--json', ...server], { PULLTHROUGH_ADMIN_TOKEN: TOKEN });
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const listing = (JSON.parse(json.stdout) as { registries: RegistryListing[] }).registries;
    expect(listing.map((r) => r.registry)).toEqual([upstream.authority]);
    expect(listing[0]?.repositories.map((r) => [r.repository, r.tags.map((t) => t.tag)])).toEqual([
      ['lib/a', ['v1']],
      ['lib/b', ['v1']],
    ]);
    expect(listing[0]?.repositories[0]?.tags[0]?.digest).toBe(a.manifest);

    const text = await cli(['cache', 'ls', `${upstream.authority}/lib/a`, '--token', TOKEN, ...server]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^IMAGE\s+DIGEST\s+SIZE\s+PLATFORMS\s+LAST USED$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(
      new RegExp(
        `^${upstream.authority}/lib/a:v1\\s+${a.manifest.slice(7, 19)}\\s+3\\.\\d KiB\\s+\\d+s ago$`,
      ),
    );

    const layerGets = upstream.hits('GET', `/v2/lib/a/blobs/${a.layer}`);
    const purged = await cli([
      'cache',
      'purge',
      `${upstream.authority}/lib/a:v1`,
      '--token',
      TOKEN,
      ...server,
    ]);
    expect(purged.stderr).toBe('');
    expect(purged.code).toBe(0);
    expect(purged.stdout).toMatch(/^purged .*lib\/a:v1: 1 tag, 1 image, 3 files, 3\.\d KiB\n$/);
    await a.pull();
    expect(upstream.hits('GET', `/v2/lib/a/blobs/${a.layer}`)).toBe(layerGets + 1);

    // Pins set at run time: pin, list (as JSON), unpin.
    const pin = `${upstream.authority}/lib/*`;
    const pinned = await cli(['cache', 'pin', pin, '--token', TOKEN, ...server]);
    expect([pinned.code, pinned.stdout, pinned.stderr]).toEqual([0, `pinned ${pin}\n`, '']);
    const listed = await cli(['cache', 'pins', '--json', '--token', TOKEN, ...server]);
    expect(JSON.parse(listed.stdout)).toEqual({ config: [], runtime: [pin] });
    const unpinned = await cli(['cache', 'unpin', pin, '--token', TOKEN, ...server]);
    expect([unpinned.code, unpinned.stdout]).toEqual([0, `unpinned ${pin}\n`]);

    await proxy.close();
    const offline = await cli([
      'cache',
      'ls',
      '--json',
      ...server,
      '--cache-dir',
      path.join(proxy.dir, 'cache'),
    ]);
    expect(offline.stderr).toBe('');
    expect(offline.code).toBe(0);
    const stored = (JSON.parse(offline.stdout) as { registries: RegistryListing[] }).registries;
    expect(stored[0]?.repositories.map((r) => r.repository)).toEqual(['lib/a', 'lib/b']);
    const du = await cli(['cache', 'du', ...server, '--cache-dir', path.join(proxy.dir, 'cache')]);
    expect(du.code).toBe(0);
    expect(du.stdout).toMatch(/ in 6 files: 2 images, 2 tags\n/);
  });

  it('fails in one line: a wrong token, no server, the API off, bad usage', async () => {
    const proxy = await startProxy({ admin: { token: TOKEN } });
    const wrong = await cli(['cache', 'du', '--server', proxy.url, '--token', 'nope']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^pullthrough: .*refused the admin token.*\n$/);

    const off = await startProxy();
    const disabled = await cli(['cache', 'gc', '--server', off.url, '--token', TOKEN]);
    expect(disabled.code).toBe(1);
    expect(disabled.stderr).toMatch(/^pullthrough: the admin API is off .*\n$/);

    await off.close();
    const gone = await cli(['cache', 'ls', '--server', off.url, '--token', TOKEN]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^pullthrough: no server answers at .*--cache-dir.*\n$/);

    const usage = await cli(['cache', 'purge', '--server', proxy.url, '--token', TOKEN]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^pullthrough: purge needs a REF, REPO, REGISTRY or --all\n$/);
    const digest = await cli(['cache', 'purge', `alpine@sha256:${'a'.repeat(64)}`, '--server', proxy.url]);
    expect(digest.code).toBe(2);
  });
});
