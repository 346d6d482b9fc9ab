// Images pushed to the fake upstream (helpers/upstream.ts) for the tests that pull whole images:
// one random layer and a small config under an OCI manifest, tagged `<name>:v1`, and the pull
// of one through the proxy.
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { TestProxy } from './proxy.ts';
import type { FakeRegistry } from './upstream.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface Image {
  readonly name: string;
  readonly manifest: string;
  readonly config: string;
  readonly layer: string;
}

/** An image as pushed: its manifest's digest and size, its config's, and its layers' digests. */
export interface PushedImage {
  readonly manifest: string;
  readonly manifestSize: number;
  readonly config: string;
  readonly configSize: number;
  readonly layers: readonly string[];
}

/**
 * A config (linux/amd64 and `name`, with `fields` over them) and `layers` under an OCI manifest,
 * pushed to the fake upstream as `name:tag`.
 */
export function pushImage(
  upstream: FakeRegistry,
  name: string,
  tag: string,
  layers: readonly Buffer[],
  fields: Readonly<Record<string, unknown>> = {},
): PushedImage {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', name, ...fields }));
  const config = upstream.addBlob(configBytes);
  const digests = layers.map((layer) => upstream.addBlob(layer));
  const body = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: config,
      size: configBytes.length,
    },
    layers: layers.map((layer, i) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: digests[i]!,
      size: layer.length,
    })),
  };
  const manifest = upstream.addManifest(name, tag, body);
  return {
    manifest,
    manifestSize: Buffer.byteLength(JSON.stringify(body)),
    config,
    configSize: configBytes.length,
    layers: digests,
  };
}

/** An image of one layer of `size` random bytes, pushed to the fake upstream as `name:v1` (or `tag`). */
export function addImage(
  upstream: FakeRegistry,
  name: string,
  size: number,
  options: { tag?: string; architecture?: string } = {},
): Image {
  const fields = { architecture: options.architecture ?? 'amd64' };
  const pushed = pushImage(upstream, name, options.tag ?? 'v1', [randomBytes(size)], fields);
  return { name, manifest: pushed.manifest, config: pushed.config, layer: pushed.layers[0]! };
}

/** `sha256:<hex>` of a response body, read whole. */
export async function sha256Of(body: AsyncIterable<unknown>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Pulls as a client does (manifest by tag, then config and layer, each checked against its
 * digest), waits for the fills to end, and returns the layer's X-Cache.
 */
export async function pullImage(proxy: TestProxy, upstream: FakeRegistry, image: Image): Promise<string> {
  const manifest = await proxy.fetch(upstream.authority, `/v2/${image.name}/manifests/v1`, {
    headers: { accept: OCI_MANIFEST },
  });
  expect(manifest.statusCode).toBe(200);
  await manifest.body.dump();
  let layerCache = '';
  for (const digest of [image.config, image.layer]) {
    const res = await proxy.fetch(upstream.authority, `/v2/${image.name}/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    expect(await sha256Of(res.body)).toBe(digest);
    if (digest === image.layer) layerCache = String(res.headers['x-cache']);
  }
  await proxy.app.fills.idle();
  return layerCache;
}
