// The cluster section of the config: off by default, the Redis URL from the environment, and a
// secret required once a Redis is named (the internal endpoint serves every cached blob).
import { describe, expect, it } from 'vitest';
import type { ConfigError } from '../../../src/config/errors.ts';
import { parseConfig } from '../../../src/config/load.ts';

describe('cluster config', () => {
  it('is off without a cluster section', () => {
    const config = parseConfig({}, {}, 't', '/');
    expect(config.cluster.redis).toBeNull();
  });

  it('takes the Redis URL, advertise URL and secret from the environment', () => {
    const config = parseConfig(
      {},
      {
        PULLTHROUGH_REDIS_URL: 'redis://redis.example:6379/2',
        PULLTHROUGH_CLUSTER_SECRET: 'a-secret-of-16-chars',
        PULLTHROUGH_CLUSTER_ADVERTISE: 'http://10.1.2.3:9129/',
      },
      't',
      '/',
    );
    expect(config.cluster).toMatchObject({
      redis: 'redis://redis.example:6379/2',
      advertise: 'http://10.1.2.3:9129',
      listen: { host: '0.0.0.0', port: 9129 },
      leaseTtl: 10_000,
    });
  });

  it('refuses a Redis without a secret, and a URL that is not redis://', () => {
    const issues = (raw: unknown) => {
      try {
        parseConfig(raw, {}, 't', '/');
        return [];
      } catch (error) {
        return (error as ConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
      }
    };
    expect(issues({ cluster: { redis: 'redis://r:6379' } })).toEqual([
      'cluster.secret: missing: required when cluster.redis is set',
    ]);
    expect(issues({ cluster: { redis: 'http://r:6379', secret: 'x'.repeat(16) } })[0]).toMatch(
      /^cluster\.redis: .* is not a redis:\/\/ or rediss:\/\/ URL$/,
    );
  });
});
