// Spreading a round over the interval, interleaving registries, and the per-registry rate.
import { describe, expect, it } from 'vitest';
import { interleave, RateLimiter, spread } from '../../../src/watch/pace.ts';
import { FakeClock } from './fake-clock.ts';

describe('watch pace', () => {
  it('spreads a round evenly over the interval, the first at once', () => {
    expect(spread(4, 1000, 60_000)).toEqual([1000, 16_000, 31_000, 46_000]);
    expect(spread(0, 1000, 60_000)).toEqual([]);
    expect(spread(3, 0, 1000)).toEqual([0, 333, 667]);
  });

  it('interleaves registries so that one with many tags does not hold the others back', () => {
    const items = ['a1', 'a2', 'a3', 'b1', 'c1', 'c2'];
    expect(interleave(items, (item) => item[0]!)).toEqual(['a1', 'b1', 'c1', 'a2', 'c2', 'a3']);
  });

  it('spaces requests to one registry by 1/rate, and registries independently', async () => {
    const clock = new FakeClock(0);
    const limiter = new RateLimiter(2, clock);
    const times: Array<[string, number]> = [];
    const take = async (key: string) => {
      await limiter.take(key);
      times.push([key, clock.now()]);
    };
    const all = Promise.all([take('a'), take('a'), take('b'), take('a'), take('b')]);
    await clock.advanceTo(5000);
    await all;
    expect(times.filter(([key]) => key === 'a').map(([, at]) => at)).toEqual([0, 500, 1000]);
    expect(times.filter(([key]) => key === 'b').map(([, at]) => at)).toEqual([0, 500]);
    // Idle long enough, the next one goes at once (no debt, no burst either).
    await clock.advanceTo(10_000);
    const late = take('a');
    await clock.advanceTo(10_000);
    await late;
    expect(times.at(-1)).toEqual(['a', 10_000]);
  });

  it('a wait is cut short when the watch stops', async () => {
    const clock = new FakeClock(0);
    const limiter = new RateLimiter(1, clock);
    await limiter.take('a');
    const stop = new AbortController();
    const waiting = limiter.take('a', stop.signal);
    stop.abort(new Error('stopped'));
    await expect(waiting).rejects.toThrow('stopped');
  });
});
