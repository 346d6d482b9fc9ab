import { describe, expect, it } from 'vitest';
import { isWrite, parseRoute } from '../../../src/registry/routes.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('routes', () => {
  it.each([
    ['/v2/', { kind: 'ping' }],
    ['/v2', { kind: 'ping' }],
    ['/v2/_catalog?n=10', { kind: 'catalog' }],
    [
      '/v2/library/alpine/manifests/3.20',
      { kind: 'manifest', name: 'library/alpine', reference: '3.20', byDigest: false },
    ],
    [`/v2/a/b/c/manifests/${DIGEST}`, { kind: 'manifest', name: 'a/b/c', reference: DIGEST, byDigest: true }],
    [`/v2/library/alpine/blobs/${DIGEST}`, { kind: 'blob', name: 'library/alpine', digest: DIGEST }],
    [`/v2/my-org/blobs/blobs/${DIGEST}`, { kind: 'blob', name: 'my-org/blobs', digest: DIGEST }],
    ['/v2/library/alpine/blobs/uploads/', { kind: 'upload', name: 'library/alpine' }],
    ['/v2/library/alpine/blobs/uploads/abc-123?digest=x', { kind: 'upload', name: 'library/alpine' }],
    ['/v2/library/alpine/tags/list?n=5', { kind: 'tags', name: 'library/alpine' }],
    [`/v2/library/alpine/referrers/${DIGEST}`, { kind: 'referrers', name: 'library/alpine', digest: DIGEST }],
  ])('%s', (path, route) => expect(parseRoute(path)).toEqual(route));

  it.each([
    '/token?scope=repository:x:pull',
    '/v1/_ping',
    '/v2/Upper/manifests/latest',
    '/v2/../etc/passwd/blobs/' + DIGEST,
    '/v2/library/alpine/blobs/sha256:abc',
    '/v2/library/alpine/blobs/md5:' + 'a'.repeat(32),
    '/v2/library/alpine/manifests/-bad',
    '/v2/library//alpine/manifests/latest',
    `/v2/${'a'.repeat(256)}/manifests/latest`,
  ])('%s is relayed as other', (path) => expect(parseRoute(path)).toEqual({ kind: 'other' }));

  it('knows which methods write', () => {
    expect(['POST', 'PUT', 'PATCH', 'DELETE'].every(isWrite)).toBe(true);
    expect(['GET', 'HEAD', 'OPTIONS', undefined].some(isWrite)).toBe(false);
  });
});
