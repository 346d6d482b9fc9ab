// The webhook's delivery: retried with back-off on 5xx and no answer, not on another 4xx, and a
// bounded queue that drops the oldest message rather than grow.
import { describe, expect, it } from 'vitest';
import type { UpstreamRequest, UpstreamResponse } from '../../../src/upstream/client.ts';
import type { WatchEvent } from '../../../src/watch/state.ts';
import { payloadOf, Webhook } from '../../../src/watch/webhook.ts';
import { FakeClock } from './fake-clock.ts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const EVENT: WatchEvent = {
  registry: 'registry-1.docker.io:443',
  repository: 'library/alpine',
  tag: '3',
  kind: 'changed',
  previous: 'ok',
  oldDigest: A,
  newDigest: B,
  note: null,
  at: Date.UTC(2026, 0, 2, 3, 4, 5),
};

function receiver(clock: FakeClock, statuses: Array<number | Error>) {
  const posts: Array<{ at: number; request: UpstreamRequest }> = [];
  const send = (request: UpstreamRequest): Promise<UpstreamResponse> => {
    posts.push({ at: clock.now(), request });
    const status = statuses.shift() ?? 200;
    if (status instanceof Error) return Promise.reject(status);
    return Promise.resolve({
      statusCode: status,
      headers: {},
      body: { dump: () => Promise.resolve() },
    } as unknown as UpstreamResponse);
  };
  return { posts, send };
}

describe('webhook', () => {
  it('says what happened in a text line and in fields', () => {
    expect(payloadOf(EVENT, null)).toEqual({
      text: 'pullthrough: registry-1.docker.io/library/alpine:3 changed upstream (aaaaaaaaaaaa → bbbbbbbbbbbb)',
      reference: 'registry-1.docker.io/library/alpine:3',
      registry: 'registry-1.docker.io:443',
      repository: 'library/alpine',
      tag: '3',
      state: 'changed',
      previousState: 'ok',
      oldDigest: A,
      newDigest: B,
      pinned: null,
      note: null,
      time: '2026-01-02T03:04:05.000Z',
    });
    const gone = payloadOf({ ...EVENT, kind: 'vanished', newDigest: null }, 'docker.io/library/alpine:3');
    expect(gone.text).toBe(
      'pullthrough: registry-1.docker.io/library/alpine:3 vanished upstream (404) (aaaaaaaaaaaa); cached copy pinned (docker.io/library/alpine:3)',
    );
  });

  it('tells a tag cached anew after a change from one that came back', () => {
    const recached = payloadOf(
      { ...EVENT, kind: 'ok', previous: 'changed', oldDigest: B, newDigest: B },
      null,
    );
    expect(recached.text).toContain('is cached as upstream has it now');
    const back = payloadOf({ ...EVENT, kind: 'ok', previous: 'vanished', newDigest: A }, null);
    expect(back.text).toContain('is back as cached');
  });

  it('retries a 5xx and a lost connection with doubling waits, then stops at the first 2xx', async () => {
    const clock = new FakeClock(0);
    const { posts, send } = receiver(clock, [500, new Error('ECONNRESET'), 503, 200]);
    const hook = new Webhook({ url: 'https://hooks.example/services/T/B/x?y=1', send, clock });
    hook.notify(payloadOf(EVENT, null));
    await clock.advanceTo(60_000);
    await hook.idle();
    expect(posts.map((post) => post.at)).toEqual([0, 1000, 3000, 7000]);
    expect(posts[0]?.request).toMatchObject({
      origin: 'https://hooks.example',
      method: 'POST',
      path: '/services/T/B/x?y=1',
    });
    expect(posts[0]?.request.headers['content-type']).toBe('application/json');
    expect(hook.delivered).toBe(1);
    expect(hook.failed).toBe(0);
  });

  it('gives up at once on a 4xx other than 408/429, and after the last attempt otherwise', async () => {
    const clock = new FakeClock(0);
    const failures: string[] = [];
    const { posts, send } = receiver(clock, [404, 500, 500, 500]);
    const hook = new Webhook({
      url: 'http://hook.test/x',
      send,
      clock,
      attempts: 3,
      onFailure: (f) => failures.push(f.reason),
    });
    hook.notify(payloadOf(EVENT, null));
    hook.notify(payloadOf(EVENT, null));
    await clock.advanceTo(60_000);
    await hook.idle();
    expect(posts).toHaveLength(4);
    expect(failures).toEqual(['receiver answered 404', 'receiver answered 500']);
  });

  it('drops the oldest waiting message when the queue is full, and never blocks the caller', async () => {
    const clock = new FakeClock(0);
    const failures: string[] = [];
    const { posts, send } = receiver(clock, []);
    const hook = new Webhook({
      url: 'http://hook.test/x',
      send,
      clock,
      maxQueue: 2,
      onFailure: (f) => failures.push(f.reason),
    });
    for (const tag of ['1', '2', '3', '4']) hook.notify(payloadOf({ ...EVENT, tag }, null));
    await hook.idle();
    // The first went out at once; of 2, 3 and 4 waiting behind it, the queue kept the last two.
    const tags = posts.map((post) => (JSON.parse(readBody(post.request)) as { tag: string }).tag);
    expect(tags).toEqual(['1', '3', '4']);
    expect(failures).toEqual(['queue full: dropped']);
  });
});

function readBody(request: UpstreamRequest): string {
  const stream = request.body as unknown as { read(): Buffer | null } | undefined;
  return stream?.read()?.toString('utf8') ?? '{}';
}
