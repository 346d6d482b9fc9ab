// The dashboard's memory (metrics/history.ts, upstream-state.ts, activity.ts): points between
// samples as rates and ratios, each registry's upstream condition over the window, recent
// events newest first, and pulls counted per tag for successful GETs of a manifest by tag only.
import { describe, expect, it } from 'vitest';
import { Activity } from '../../../src/metrics/activity.ts';
import { History } from '../../../src/metrics/history.ts';
import { recordRequest, recordUpstream, type RequestSummary } from '../../../src/metrics/record.ts';
import { createMetrics } from '../../../src/metrics/registry.ts';

const HUB = 'registry-1.docker.io:443';

function request(over: Partial<RequestSummary>): RequestSummary {
  return {
    registry: HUB,
    mode: 'proxy',
    kind: 'blob',
    cache: 'hit',
    bytes: 0,
    seconds: 0.01,
    shared: false,
    ...over,
  };
}

function setup() {
  const metrics = createMetrics();
  let now = 1_000_000;
  const history = new History({ metrics, intervalMs: 5000, keep: 3, windowMs: 10_000, now: () => now });
  const advance = (ms: number) => (now += ms);
  return { metrics, history, advance };
}

describe('history', () => {
  it('turns samples into rates and hit ratios by requests and by bytes', async () => {
    const { metrics, history, advance } = setup();
    await history.sample();
    recordRequest(metrics, request({ cache: 'hit', bytes: 3000 }));
    recordRequest(metrics, request({ cache: 'stale', kind: 'manifest', bytes: 1000 }));
    recordRequest(metrics, request({ cache: 'miss', bytes: 4000 }));
    recordRequest(metrics, request({ cache: 'bypass', kind: 'other' })); // a ping: not answerable
    advance(2000);
    await history.sample();
    advance(2000);
    await history.sample(); // nothing happened: ratios unknown, not 0
    expect(history.points()).toEqual([
      {
        t: 1_002_000,
        requestsPerSecond: 2,
        hitRatio: 2 / 3,
        byteHitRatio: 0.5,
        cacheBytesPerSecond: 2000,
        upstreamBytesPerSecond: 2000,
      },
      {
        t: 1_004_000,
        requestsPerSecond: 0,
        hitRatio: null,
        byteHitRatio: null,
        cacheBytesPerSecond: 0,
        upstreamBytesPerSecond: 0,
      },
    ]);
    expect(history.points(1_002_000).map((p) => p.t)).toEqual([1_004_000]);
    advance(2000);
    await history.sample();
    advance(2000);
    await history.sample(); // keep: 3 samples, so 2 points
    expect(history.points().map((p) => p.t)).toEqual([1_006_000, 1_008_000]);
    const { totals } = await history.current();
    expect(totals).toMatchObject({
      requests: 4,
      answerable: 3,
      hits: 2,
      stale: 1,
      bytesCache: 4000,
      bytesUpstream: 4000,
    });
  });

  it('judges each upstream over the window: reachable, degraded, unreachable, idle', async () => {
    const { metrics, history, advance } = setup();
    const ok = (registry: string) =>
      recordUpstream(metrics, { registry, method: 'GET', status: 200, headers: {} });
    recordUpstream(metrics, { registry: 'old.test:443', method: 'GET', status: 503, headers: {} });
    ok('old.test:443');
    await history.sample();
    advance(20_000); // the failure above is now out of the window
    await history.sample();
    ok('good.test:443');
    ok('mixed.test:443');
    recordUpstream(metrics, { registry: 'mixed.test:443', method: 'GET', status: 429, headers: {} });
    recordUpstream(metrics, { registry: 'down.test:443', method: 'GET', failure: 'unreachable' });
    recordUpstream(metrics, { registry: 'down.test:443', method: 'GET', failure: 'unreachable' });
    recordUpstream(metrics, {
      registry: HUB,
      method: 'GET',
      status: 200,
      headers: { 'ratelimit-remaining': '76;w=21600', 'ratelimit-limit': '100;w=21600' },
    });
    recordRequest(metrics, request({ registry: 'down.test:443', cache: 'stale', kind: 'manifest' }));
    recordUpstream(metrics, { registry: 'other', method: 'GET', status: 500, headers: {} });
    advance(1000);
    const { registries } = await history.current();
    const by = Object.fromEntries(registries.map((r) => [r.registry, r]));
    expect(Object.keys(by)).toEqual([
      'down.test:443',
      'good.test:443',
      'mixed.test:443',
      'old.test:443',
      HUB,
    ]);
    expect(by['good.test:443']).toMatchObject({
      condition: 'reachable',
      servingStale: false,
      recentFailures: {},
      lastFailure: null,
    });
    expect(by['mixed.test:443']).toMatchObject({ condition: 'degraded', recentFailures: { '429': 1 } });
    expect(by['down.test:443']).toMatchObject({
      condition: 'unreachable',
      servingStale: true,
      recentFailures: { unreachable: 2 },
      lastFailure: 1_021_000,
    });
    expect(by['old.test:443']).toMatchObject({
      condition: 'idle',
      recentFailures: {},
      lastFailure: 1_000_000,
    });
    expect(by[HUB]).toMatchObject({ rateLimitRemaining: 76, rateLimitLimit: 100, condition: 'reachable' });
  });
});

describe('activity', () => {
  it('keeps the newest events, newest first', () => {
    let now = 0;
    const activity = new Activity({ keepEvents: 2, now: () => ++now });
    activity.event('evicted', { digest: 'sha256:a' });
    activity.event('admin purge', { registry: 'r' });
    activity.event('admin pin', { ref: 'x' });
    expect(activity.events()).toEqual([
      { t: 3, event: 'admin pin', fields: { ref: 'x' } },
      { t: 2, event: 'admin purge', fields: { registry: 'r' } },
    ]);
  });

  it('counts successful GETs of a manifest by tag, per tag, dropping the least recently pulled', () => {
    let now = 0;
    const activity = new Activity({ keepTags: 2, now: () => ++now });
    activity.request(HUB, 'GET', '/v2/library/alpine/manifests/3.20', 200);
    activity.request(HUB, 'GET', '/v2/library/alpine/manifests/3.20?x', 200);
    activity.request(HUB, 'HEAD', '/v2/library/alpine/manifests/3.20', 200);
    activity.request(HUB, 'GET', '/v2/library/alpine/manifests/3.21', 404);
    activity.request(HUB, 'GET', `/v2/library/alpine/manifests/sha256:${'a'.repeat(64)}`, 200);
    activity.request(HUB, 'GET', '/v2/library/alpine/blobs/sha256:00', 200);
    expect(activity.pulls()).toEqual([
      { registry: HUB, repository: 'library/alpine', tag: '3.20', pulls: 2, lastPulled: 2 },
    ]);
    activity.request(HUB, 'GET', '/v2/org/app/manifests/v1', 200);
    activity.request(HUB, 'GET', '/v2/library/alpine/manifests/3.20', 200);
    activity.request(HUB, 'GET', '/v2/org/b/manifests/v2', 200); // org/app:v1 goes
    expect(activity.pulls().map((p) => `${p.repository}:${p.tag}=${p.pulls}`)).toEqual([
      'library/alpine:3.20=3',
      'org/b:v2=1',
    ]);
  });
});
