import { describe, expect, it } from 'vitest';
import { parseDuration, parseSize } from '../../../src/config/units.ts';

describe('units', () => {
  it.each([
    ['32GiB', 32 * 1024 ** 3],
    ['32g', 32 * 1024 ** 3],
    ['500MB', 500_000_000],
    ['1.5 KiB', 1536],
    ['0', 0],
    [1024, 1024],
  ])('size %j = %d bytes', (input, bytes) => expect(parseSize(input)).toBe(bytes));

  it.each(['', 'lots', '-1g', '1 parsec', -5, 1.5])('size %j is refused', (input) =>
    expect(parseSize(input)).toBeUndefined(),
  );

  it.each([
    ['250ms', 250],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['60d', 60 * 86_400_000],
  ])('duration %j = %d ms', (input, ms) => expect(parseDuration(input)).toBe(ms));

  it.each(['10', 'soon', '5 minutes', '-1s'])('duration %j is refused (a unit is required)', (input) =>
    expect(parseDuration(input)).toBeUndefined(),
  );
});
