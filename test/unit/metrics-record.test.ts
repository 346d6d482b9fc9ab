// The metric recorders on their own: Docker Hub's rate-limit header form, bytes by source, and
// upstream methods kept to a bounded set.
import { describe, expect, it } from 'vitest';
import { rateLimitCount, recordRequest, recordUpstream } from '../../src/metrics/record.ts';
import { createMetrics } from '../../src/metrics/registry.ts';

describe('metrics recorders', () => {
  it("reads the count of Docker Hub's ratelimit headers and ignores anything else", () => {
    expect(rateLimitCount('100;w=21600')).toBe(100);
    expect(rateLimitCount('0;w=21600')).toBe(0);
    expect(rateLimitCount(' 76 ')).toBe(76);
    expect(rateLimitCount('w=21600;100')).toBe(undefined);
    expect(rateLimitCount('-1')).toBe(undefined);
    expect(rateLimitCount(['100;w=21600'])).toBe(undefined);
    expect(rateLimitCount(undefined)).toBe(undefined);
  });

  it('counts hit, revalidated and stale bytes as cache, miss and bypass bytes as upstream', async () => {
    const metrics = createMetrics();
    const base = { registry: 'r:443', mode: 'proxy', kind: 'blob', seconds: 0.1, shared: false } as const;
    for (const cache of ['hit', 'revalidated', 'stale', 'miss', 'bypass'] as const) {
      recordRequest(metrics, { ...base, cache, bytes: 10 });
    }
    recordRequest(metrics, { ...base, cache: 'miss', bytes: 5, shared: true });
    const values = (await metrics.bytes.get()).values.map((v) => [v.labels['source'], v.value]);
    expect(Object.fromEntries(values)).toEqual({ cache: 30, upstream: 25 });
    expect((await metrics.fillWaiters.get()).values[0]?.value).toBe(1);
  });

  it('labels an unknown upstream method as other, and leaves gauges alone without headers', async () => {
    const metrics = createMetrics();
    recordUpstream(metrics, { registry: 'r:443', method: 'PROPFIND', status: 405, headers: {} });
    const [sample] = (await metrics.upstreamRequests.get()).values;
    expect(sample?.labels).toEqual({ registry: 'r:443', method: 'other', status: '405' });
    expect((await metrics.rateLimitRemaining.get()).values).toEqual([]);
  });
});
