import { describe, expect, it } from 'vitest';
import { acceptedTypes, accepts } from '../../../src/oci/media-types.ts';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

describe('media types', () => {
  it('lists the types of one or several Accept headers, without parameters', () => {
    expect(acceptedTypes([`${OCI}; q=0.9, ${LIST}`, 'application/JSON'])).toEqual([
      OCI,
      LIST,
      'application/json',
    ]);
    expect(acceptedTypes(undefined)).toEqual([]);
  });

  it('accepts a listed type, a wildcard, or anything when no Accept is sent', () => {
    expect(accepts(`${LIST}, ${OCI}`, OCI)).toBe(true);
    expect(accepts(LIST, OCI)).toBe(false);
    expect(accepts('*/*', OCI)).toBe(true);
    expect(accepts(undefined, OCI)).toBe(true);
  });
});
