// The keys that bound the cache: minFree, inactive, pin and per-registry maxSize.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.ts';
import { parseConfig } from '../../../src/config/load.ts';

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('cache limits config', () => {
  it('defaults: 10 % free, 60 days of inactivity, no pins, no per-registry budget', () => {
    const config = parseConfig({}, {}, 'defaults', '/');
    expect(config.cache.minFree).toEqual({ percent: 10 });
    expect(config.cache.inactive).toBe(60 * 86_400_000);
    expect(config.cache.pin).toEqual([]);
    expect(config.registries.every((registry) => registry.maxSize === undefined)).toBe(true);
  });

  it('reads minFree as bytes or a percentage, pins, per-registry budgets and CACHE_INACTIVE', () => {
    const config = parseConfig(
      {
        cache: { minFree: '20GiB', pin: [' registry.k8s.io/pause:* ', 'ghcr.io/org/*'] },
        registries: [{ host: 'ghcr.io', maxSize: '8GiB' }, 'quay.io'],
      },
      { CACHE_INACTIVE: '7d' },
      't',
      '/',
    );
    expect(config.cache.minFree).toEqual({ bytes: 20 * 1024 ** 3 });
    expect(config.cache.inactive).toBe(7 * 86_400_000);
    expect(config.cache.pin).toEqual(['registry.k8s.io/pause:*', 'ghcr.io/org/*']);
    expect(config.registries).toEqual([{ host: 'ghcr.io', maxSize: 8 * 1024 ** 3 }, { host: 'quay.io' }]);
    expect(parseConfig({ cache: { minFree: '2.5%' } }, {}, 't', '/').cache.minFree).toEqual({ percent: 2.5 });
    expect(parseConfig({ cache: { minFree: 0 } }, {}, 't', '/').cache.minFree).toEqual({ bytes: 0 });
  });

  it('lists bad values by path', () => {
    const issues = issuesOf(() =>
      parseConfig(
        {
          cache: { minFree: '150%', pin: ['ok.example/app', 'https://nope/app'] },
          registries: [{ host: 'ghcr.io', maxSize: 'big' }],
        },
        { CACHE_INACTIVE: 'forever' },
        't',
        '/',
      ),
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        'cache.minFree: "150%" is not a size or a percentage (e.g. 10%, 20GiB)',
        'cache.pin.1: "https://nope/app" is not a pin (e.g. docker.io/library/postgres:16, registry.k8s.io/pause:*, ghcr.io/org/*)',
        'cache.inactive (from CACHE_INACTIVE): "forever" is not a duration (e.g. 250ms, 10s, 5m, 1h, 7d)',
        'registries.0.maxSize: "big" is not a size (e.g. 500MiB, 32GiB, 32g)',
      ]),
    );
    expect(issues).toHaveLength(4);
  });
});
