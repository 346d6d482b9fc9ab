import { describe, expect, it } from 'vitest';
import type { TagRecord } from '../../../src/cache/manifests.ts';
import {
  acceptableVariants,
  preferredVariant,
  withVariant,
} from '../../../src/registry/manifests/tag-variants.ts';

const INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_V2 = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI = 'application/vnd.oci.image.manifest.v1+json';

const v = (digest: string, mediaType: string, checkedAt: number) => ({
  digest,
  mediaType,
  size: 1,
  checkedAt,
});

describe('tag variants', () => {
  it('keeps one resolution per media type, the latest leading', () => {
    let record: TagRecord | undefined;
    record = withVariant(record, v('d1', INDEX, 1));
    expect(record).toEqual(v('d1', INDEX, 1));
    record = withVariant(record, v('d2', DOCKER_V2, 2));
    expect(record).toEqual({ ...v('d2', DOCKER_V2, 2), alternates: [v('d1', INDEX, 1)] });
    record = withVariant(record, v('d3', INDEX, 3));
    expect(record).toEqual({ ...v('d3', INDEX, 3), alternates: [v('d2', DOCKER_V2, 2)] });
    record = withVariant(record, v('d3', INDEX, 4));
    expect(record.alternates).toEqual([v('d2', DOCKER_V2, 2)]);
  });

  it('offers a client only what it accepts, an index first when it takes one', () => {
    const record: TagRecord = { ...v('d2', DOCKER_V2, 2), alternates: [v('d1', INDEX, 1), v('d0', OCI, 3)] };
    expect(acceptableVariants(record, DOCKER_V2).map((x) => x.digest)).toEqual(['d2']);
    expect(acceptableVariants(record, `${INDEX}, ${DOCKER_V2}`).map((x) => x.digest)).toEqual(['d2', 'd1']);
    expect(preferredVariant(acceptableVariants(record, `${INDEX}, ${DOCKER_V2}`))?.digest).toBe('d1');
    expect(preferredVariant(acceptableVariants(record, `${OCI}, ${DOCKER_V2}`))?.digest).toBe('d0');
    expect(preferredVariant(acceptableVariants(record, 'text/plain'))).toBeUndefined();
    expect(acceptableVariants(undefined, DOCKER_V2)).toEqual([]);
  });
});
