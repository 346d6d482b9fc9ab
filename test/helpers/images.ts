// Images pushed to the fake upstream (helpers/upstream.ts) for the tests that pull whole images:
// one random layer and a small config under an OCI manifest, tagged `<name>:v1`.
import { randomBytes } from 'node:crypto';
import type { FakeRegistry } from './upstream.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface Image {
  readonly name: string;
  readonly manifest: string;
  readonly config: string;
  readonly layer: string;
}

/** An image of one layer of `size` random bytes, pushed to the fake upstream as `name:v1`. */
export function addImage(upstream: FakeRegistry, name: string, size: number): Image {
  const layerBytes = randomBytes(size);
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', name }));
  const layer = upstream.addBlob(layerBytes);
  const config = upstream.addBlob(configBytes);
  const manifest = upstream.addManifest(name, 'v1', {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: config,
      size: configBytes.length,
    },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size }],
  });
  return { name, manifest, config, layer };
}
