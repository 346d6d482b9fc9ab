import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../src/upstream/mirror-backoff.ts';

describe('mirror back-off', () => {
  it('skips a failed mirror, doubling up to the cap, one try at a time, and forgets it on success', () => {
    let now = 0;
    const backoff = new Backoff({ now: () => now, firstMs: 10, maxMs: 35 });
    expect(backoff.available('a')).toBe(true);
    expect(backoff.failed('a')).toEqual({ backoffMs: 10, wasUp: true });
    expect(backoff.available('a')).toBe(false);
    expect(backoff.available('b')).toBe(true);
    now = 10;
    expect(backoff.available('a')).toBe(true); // the one try
    expect(backoff.available('a')).toBe(false); // the others keep skipping meanwhile
    expect(backoff.failed('a')).toEqual({ backoffMs: 20, wasUp: false });
    now = 30;
    expect(backoff.available('a')).toBe(true);
    expect(backoff.failed('a')).toEqual({ backoffMs: 35, wasUp: false });
    expect(backoff.succeeded('a')).toBe(true);
    expect(backoff.succeeded('a')).toBe(false);
    expect(backoff.available('a')).toBe(true);
  });
});
