import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { manifestReferences } from '../../../src/oci/manifest.ts';

const d = (c: string) => `sha256:${c.repeat(64)}`;

describe('manifest references', () => {
  it('lists config, layers and subject of an OCI image manifest', () => {
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('a'), size: 10 },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('b'), size: 1 },
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('c'), size: 2 },
      ],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('d'), size: 3 },
    };
    expect(manifestReferences(Buffer.from(JSON.stringify(manifest)))).toEqual([
      d('a'),
      d('b'),
      d('c'),
      d('d'),
    ]);
  });

  it('lists the manifests of an OCI index and of a Docker manifest list', () => {
    for (const mediaType of [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
    ]) {
      const index = {
        schemaVersion: 2,
        mediaType,
        manifests: [
          { digest: d('1'), size: 5, platform: { architecture: 'amd64', os: 'linux' } },
          { digest: d('2'), size: 5, platform: { architecture: 'arm64', os: 'linux' } },
        ],
      };
      expect(manifestReferences(JSON.stringify(index))).toEqual([d('1'), d('2')]);
    }
  });

  it('lists a Docker v2 schema 2 manifest, and the layers of a schema 1 manifest', () => {
    const v2 = {
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: d('e'), size: 1 },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: d('f'), size: 1 }],
    };
    expect(manifestReferences(JSON.stringify(v2))).toEqual([d('e'), d('f')]);
    const v1 = {
      schemaVersion: 1,
      fsLayers: [{ blobSum: d('1') }, { blobSum: d('2') }, { blobSum: d('1') }],
    };
    expect(manifestReferences(JSON.stringify(v1))).toEqual([d('1'), d('2')]);
  });

  it('keeps each digest once and drops malformed descriptors', () => {
    const manifest = {
      config: { digest: d('a') },
      layers: [{ digest: d('a') }, { digest: 'sha256:short' }, { digest: 42 }, null, 'x', { digest: d('b') }],
      manifests: 'not a list',
      subject: [d('c')],
    };
    expect(manifestReferences(JSON.stringify(manifest))).toEqual([d('a'), d('b')]);
  });

  it('gives an empty list for anything that is not a manifest object', () => {
    for (const garbage of ['', 'null', '[]', '"x"', '42', '{', '\u0000\u00ff', '{"layers":{}}']) {
      expect(manifestReferences(garbage)).toEqual([]);
    }
    expect(manifestReferences(new Uint8Array([0xff, 0xfe, 0x00]))).toEqual([]);
  });

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array(),
          fc.json().map((text) => Buffer.from(text)),
        ),
        (bytes) => {
          const references = manifestReferences(bytes);
          expect(Array.isArray(references)).toBe(true);
        },
      ),
    );
  });
});
