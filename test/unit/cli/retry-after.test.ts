// Retry-After as the admin client reads it: seconds or an HTTP date, bounded both ways.
import { describe, expect, it } from 'vitest';
import { retryAfterMs } from '../../../src/cli/admin-client.ts';

describe('Retry-After', () => {
  const now = Date.parse('2026-12-06T08:00:00Z');
  it.each([
    ['3', 3000],
    [' 1 ', 1000],
    ['0', 250],
    ['86400', 60_000],
    ['Sun, 06 Dec 2026 08:00:05 GMT', 5000],
    ['Sun, 06 Dec 2026 07:00:00 GMT', 250],
  ])('%j waits %i ms', (value, ms) => {
    expect(retryAfterMs(value, now)).toBe(ms);
  });

  it.each([undefined, '', 'soon', '-1'])('%j is no Retry-After', (value) => {
    expect(retryAfterMs(value, now)).toBeUndefined();
  });
});
