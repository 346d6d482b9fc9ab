// Fill leases against a real Redis (cluster/leases.ts): one holder at a time, the others told who
// it is; only the holder releases it; a holder that stops renewing (died) loses it after the TTL
// and the next asker takes it; renewal keeps a long fill's lease; Redis down reads "offline".
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Leases } from '../../src/cluster/leases.ts';
import type { Member } from '../../src/cluster/members.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';

const DIGEST = `sha256:${'c'.repeat(64)}`;
const member = (id: string): Member => ({ id, url: `http://${id}.test:9129`, since: 1 });

/** A connection as the replicas make them (no offline queue), once it is ready. */
async function client(url: string): Promise<Redis> {
  const redis = new Redis(url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
  redis.on('error', () => undefined);
  onTestFinished(() => redis.disconnect());
  await once(redis, 'ready');
  return redis;
}

describe.skipIf(!(await hasRedisServer()))('fill leases (needs redis-server)', () => {
  it('has one holder; the others learn who; only the holder releases it', async () => {
    const server = await startRedis();
    const redis = await client(server.url);
    const a = new Leases(redis, { prefix: 't:', me: member('a'), ttlMs: 5000 });
    const b = new Leases(redis, { prefix: 't:', me: member('b'), ttlMs: 5000 });
    const taken = await a.take(DIGEST);
    expect(taken.kind).toBe('ours');
    expect(await b.take(DIGEST)).toEqual({ kind: 'theirs', holder: member('a') });
    if (taken.kind !== 'ours') return;
    taken.lease.release();
    const next = await b.take(DIGEST);
    expect(next.kind).toBe('ours');
    // A's late second release must not free B's lease.
    taken.lease.release();
    expect(await a.take(DIGEST)).toEqual({ kind: 'theirs', holder: member('b') });
    if (next.kind === 'ours') next.lease.release();
  });

  it('passes to the next asker once a dead holder stops renewing, and is kept while renewed', async () => {
    const server = await startRedis();
    const redis = await client(server.url);
    const key = `t:lease:${DIGEST}`;
    // A holder that died: its key, never renewed.
    await redis.set(key, JSON.stringify(member('dead')), 'PX', 300);
    const b = new Leases(redis, { prefix: 't:', me: member('b'), ttlMs: 300 });
    expect(await b.take(DIGEST)).toEqual({ kind: 'theirs', holder: member('dead') });
    // Expiry and renewal are Redis's business: wait on its keyspace events, not on timers of ours.
    const events = await client(server.url);
    await events.config('SET', 'notify-keyspace-events', 'Kgx');
    const seen: string[] = [];
    const waitFor = (event: string, count = 1) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (seen.filter((e) => e === event).length < count) return;
          events.off('message', onMessage);
          resolve();
        };
        const onMessage = (_channel: string, name: string) => {
          seen.push(name);
          check();
        };
        events.on('message', onMessage);
        check();
      });
    await events.subscribe(`__keyspace@0__:${key}`);
    await waitFor('expired');
    const taken = await b.take(DIGEST);
    expect(taken.kind).toBe('ours');
    // Renewed (PEXPIRE) every third of its TTL: after three renewals, a whole TTL on, still ours.
    await waitFor('expire', 3);
    expect(seen.filter((e) => e === 'expired')).toHaveLength(1);
    expect(JSON.parse((await redis.get(key)) ?? 'null')).toEqual(member('b'));
    if (taken.kind === 'ours') taken.lease.release();
  });

  it('reads offline while Redis is down', async () => {
    const server = await startRedis();
    const redis = await client(server.url);
    await server.stop();
    const leases = new Leases(redis, { prefix: 't:', me: member('a'), ttlMs: 1000 });
    expect(await leases.take(DIGEST)).toEqual({ kind: 'offline' });
  });
});
