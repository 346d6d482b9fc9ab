// `pullthrough cache ls` on storage.type s3 says what it says on local disk: the same images
// pulled through a proxy on disk and one on an S3 emulator (s3rver) list the same tags,
// digests, media types, sizes and platforms, and a last use within the test, and `cache du`
// the same totals; so does a replica whose index was rebuilt from the bucket (a new pod with an
// empty cache.dir).
import { describe, expect, it } from 'vitest';
import type { RegistryListing } from '../../src/cache/catalog.ts';
import { runCli } from '../helpers/cli.ts';
import { addImage, OCI_MANIFEST } from '../helpers/images.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startS3 } from '../helpers/s3.ts';
import { startFakeRegistry, type FakeRegistry } from '../helpers/upstream.ts';

const TOKEN = 's3-ls-admin-token-0123456789';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** A config and one layer under an OCI manifest tagged `name:tag`; returns the three digests. */
function addManifest(upstream: FakeRegistry, name: string, tag: string, architecture: string) {
  const { manifest, config, layer } = addImage(upstream, name, 3000, { tag, architecture });
  return { manifest, blobs: [config, layer] };
}

/** `lib/app:v1` (one manifest) and `lib/multi:v1` (an index of linux/amd64 and linux/arm64). */
function addImages(upstream: FakeRegistry) {
  const app = addManifest(upstream, 'lib/app', 'v1', 'amd64');
  const amd64 = addManifest(upstream, 'lib/multi', 'amd64', 'amd64');
  const arm64 = addManifest(upstream, 'lib/multi', 'arm64', 'arm64');
  const platform = (digest: string, architecture: string) => ({
    mediaType: OCI_MANIFEST,
    digest,
    size: 400,
    platform: { os: 'linux', architecture },
  });
  const index = upstream.addManifest(
    'lib/multi',
    'v1',
    {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [platform(amd64.manifest, 'amd64'), platform(arm64.manifest, 'arm64')],
    },
    OCI_INDEX,
  );
  return { app, index, amd64, arm64 };
}

/** Pulls as a client does: each tag, the platform manifests by digest, then their blobs. */
async function pullAll(proxy: TestProxy, upstream: FakeRegistry, images: ReturnType<typeof addImages>) {
  const get = async (name: string, what: string, accept?: string) => {
    const res = await proxy.fetch(upstream.authority, `/v2/${name}/${what}`, {
      ...(accept ? { headers: { accept } } : {}),
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  };
  await get('lib/app', 'manifests/v1', OCI_MANIFEST);
  for (const blob of images.app.blobs) await get('lib/app', `blobs/${blob}`);
  await get('lib/multi', 'manifests/v1', `${OCI_INDEX}, ${OCI_MANIFEST}`);
  for (const child of [images.amd64, images.arm64]) {
    await get('lib/multi', `manifests/${child.manifest}`, OCI_MANIFEST);
    for (const blob of child.blobs) await get('lib/multi', `blobs/${blob}`);
  }
  await proxy.app.fills.idle();
}

/** `cache ls --json` against the proxy's admin API. */
async function ls(proxy: TestProxy): Promise<RegistryListing[]> {
  const run = await runCli(['cache', 'ls', '--json', '--server', proxy.url, '--token', TOKEN]).exited;
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return (JSON.parse(run.stdout) as { registries: RegistryListing[] }).registries;
}

/** `cache du --json`'s totals, less the free space (of cache.dir's disk, not the bucket's). */
async function du(proxy: TestProxy): Promise<Record<string, unknown>> {
  const run = await runCli(['cache', 'du', '--json', '--server', proxy.url, '--token', TOKEN]).exited;
  expect(run.code).toBe(0);
  const {
    free: _free,
    filesystem: _filesystem,
    ...totals
  } = JSON.parse(run.stdout) as Record<string, unknown>;
  return totals;
}

/** The listing with each last use checked to lie in [from, to] and then left out. */
function withoutLastUse(listing: RegistryListing[], from: number, to: number) {
  return listing.map((registry) => ({
    ...registry,
    repositories: registry.repositories.map((repository) => ({
      ...repository,
      tags: repository.tags.map(({ lastUsed, ...tag }) => {
        expect(lastUsed).toBeGreaterThanOrEqual(from - 1000); // S3 LastModified has whole seconds
        expect(lastUsed).toBeLessThanOrEqual(to);
        return tag;
      }),
    })),
  }));
}

describe('cache ls on S3 storage', () => {
  it('lists the media types, sizes, platforms and last use that a disk cache lists', async () => {
    const upstream = await startFakeRegistry();
    const images = addImages(upstream);
    const s3 = await startS3();
    const admin = { token: TOKEN };
    const disk = await startProxy({ registries: [upstream.authority], admin });
    const bucket = await startProxy({ registries: [upstream.authority], admin, storage: s3.storage() });
    const from = Date.now();
    await pullAll(disk, upstream, images);
    await pullAll(bucket, upstream, images);
    const to = Date.now();

    const onDisk = withoutLastUse(await ls(disk), from, to);
    const repositories = onDisk[0]?.repositories ?? [];
    // The disk listing is the reference: check it says what the images are.
    expect(repositories.map((r) => r.tags.map((t) => [r.repository, t.tag, t.digest, t.mediaType]))).toEqual([
      [['lib/app', 'v1', images.app.manifest, OCI_MANIFEST]],
      [['lib/multi', 'v1', images.index, OCI_INDEX]],
    ]);
    expect(repositories[1]?.tags[0]?.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(withoutLastUse(await ls(bucket), from, to)).toEqual(onDisk);
    const totals = await du(disk);
    expect(totals).toMatchObject({ files: 10, manifests: 4, tags: 2, images: 2 });
    expect(await du(bucket)).toEqual(totals);

    // A new replica on the same bucket with an empty cache.dir rebuilds its index from the
    // bucket (last use: when each object was written) and lists the same.
    await bucket.close();
    const rebuilt = await startProxy({ registries: [upstream.authority], admin, storage: s3.storage() });
    expect(withoutLastUse(await ls(rebuilt), from, Date.now())).toEqual(onDisk);
    expect(await du(rebuilt)).toEqual(totals);
  });
});
