// References as people type them, read as docker reads them; and the terminal formats.
import { describe, expect, it } from 'vitest';
import { age, humanSize, table } from '../../../src/cli/format.ts';
import { parseImageRef, parseScope } from '../../../src/cli/image-ref.ts';
import { UsageError } from '../../../src/cli/errors.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('image references', () => {
  it.each([
    ['alpine', { registry: 'registry-1.docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['docker.io/org/app:1', { registry: 'registry-1.docker.io', repository: 'org/app', tag: '1' }],
    ['ghcr.io/org/app:1.2', { registry: 'ghcr.io', repository: 'org/app', tag: '1.2' }],
    ['localhost:5000/a/b', { registry: 'localhost:5000', repository: 'a/b', tag: 'latest' }],
    [`quay.io/a@${DIGEST}`, { registry: 'quay.io', repository: 'a', digest: DIGEST }],
  ])('%s', (text, expected) => {
    expect(parseImageRef(text)).toEqual(expected);
  });

  it('tells registries, repositories and tags apart in a scope', () => {
    expect(parseScope('quay.io')).toEqual({ registry: 'quay.io' });
    expect(parseScope('localhost:5000')).toEqual({ registry: 'localhost:5000' });
    expect(parseScope('127.0.0.1:5000')).toEqual({ registry: '127.0.0.1:5000' });
    expect(parseScope('docker.io')).toEqual({ registry: 'registry-1.docker.io' });
    expect(parseScope('alpine:3')).toEqual({
      registry: 'registry-1.docker.io',
      repository: 'library/alpine',
      tag: '3',
    });
    expect(parseScope('ghcr.io/org/app')).toEqual({ registry: 'ghcr.io', repository: 'org/app' });
    expect(() => parseScope('ghcr.io/Org/app')).toThrow(UsageError);
    expect(() => parseScope('a@sha256:zz')).toThrow(UsageError);
  });
});

describe('terminal formats', () => {
  it('writes sizes, ages and aligned tables', () => {
    expect([0, 1023, 1024, 3.2 * 1024 * 1024, 5 * 1024 ** 3].map(humanSize)).toEqual([
      '0 B',
      '1023 B',
      '1.0 KiB',
      '3.2 MiB',
      '5.0 GiB',
    ]);
    const now = 1_000_000_000;
    expect(
      [now - 5000, now - 5 * 60_000, now - 3 * 3600_000, now - 3 * 86_400_000].map((t) => age(t, now)),
    ).toEqual(['5s ago', '5m ago', '3h ago', '3d ago']);
    expect(
      table(
        ['A', 'SIZE'],
        [
          ['long name', '1 B'],
          ['x', '10.0 KiB'],
        ],
        [1],
      ),
    ).toBe('A              SIZE\nlong name       1 B\nx          10.0 KiB\n');
  });
});
