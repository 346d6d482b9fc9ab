import { describe, expect, it } from 'vitest';
import {
  DigestMismatchError,
  DigestVerifier,
  SizeMismatchError,
  digestOf,
  parseDigest,
} from '../../../src/oci/digest.ts';

describe('digest', () => {
  it('parses sha256 and sha512 digests only in their exact form', () => {
    expect(parseDigest(`sha256:${'a'.repeat(64)}`)).toEqual({ algorithm: 'sha256', hex: 'a'.repeat(64) });
    expect(parseDigest(`sha512:${'b'.repeat(128)}`)).toEqual({ algorithm: 'sha512', hex: 'b'.repeat(128) });
    for (const bad of [
      `sha256:${'A'.repeat(64)}`,
      `sha256:${'a'.repeat(63)}`,
      `md5:${'a'.repeat(32)}`,
      'sha256:../../etc',
      '',
    ]) {
      expect(parseDigest(bad)).toBeUndefined();
    }
  });

  it('verifies streamed content, its digest and its size', () => {
    const content = Buffer.from('hello, registry');
    const expected = parseDigest(digestOf(content))!;
    const ok = new DigestVerifier(expected);
    ok.update(content.subarray(0, 5));
    ok.update(content.subarray(5));
    expect(() => ok.verify(content.length)).not.toThrow();

    const wrong = new DigestVerifier(expected);
    wrong.update(Buffer.from('hello, attacker'));
    expect(() => wrong.verify()).toThrow(DigestMismatchError);

    const short = new DigestVerifier(expected);
    short.update(content);
    expect(() => short.verify(content.length + 1)).toThrow(SizeMismatchError);
  });
});
