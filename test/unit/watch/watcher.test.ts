// The watcher's rounds on a hand-driven clock: checks spread over the interval and held to the
// per-registry rate, each change reported once, a tag gone upstream pinned and unpinned.
import { describe, expect, it } from 'vitest';
import type { CacheControl } from '../../../src/cache/control.ts';
import type { RegistryListing } from '../../../src/cache/catalog.ts';
import type { UpstreamRequest, UpstreamResponse } from '../../../src/upstream/client.ts';
import type { WatchEvent } from '../../../src/watch/state.ts';
import { Watcher, type StateCount, type WatcherOptions } from '../../../src/watch/watcher.ts';
import { FakeClock } from './fake-clock.ts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

function listing(tags: Array<{ repository: string; tag: string; lastUsed: number }>): RegistryListing[] {
  return [
    {
      registry: 'registry.test:443',
      repositories: tags.map(({ repository, tag, lastUsed }) => ({
        repository,
        tags: [{ tag, digest: A, mediaType: null, size: 1, lastUsed }],
      })),
    },
  ];
}

/** A cache control with a listing and pins, and an upstream answering from `answers` (path → status, digest). */
function world(images: RegistryListing[], answers: Map<string, { status: number; digest?: string }>) {
  const runtime: string[] = [];
  const unpinned: string[] = [];
  const control = {
    pins: () => ({ config: [], runtime: [...runtime] }),
    images: () => Promise.resolve(images),
    pin: (ref: string) => runtime.push(ref),
    unpin: (ref: string) => {
      unpinned.push(ref);
      if (runtime.includes(ref)) runtime.splice(runtime.indexOf(ref), 1);
    },
  } as unknown as CacheControl;
  const heads: Array<{ path: string; at: number; accept: unknown }> = [];
  const clock = new FakeClock(1_000_000);
  const send = (request: UpstreamRequest): Promise<UpstreamResponse> => {
    heads.push({ path: request.path, at: clock.now(), accept: request.headers['accept'] });
    const answer = answers.get(request.path) ?? { status: 404 };
    const headers = answer.digest ? { 'docker-content-digest': answer.digest } : {};
    return Promise.resolve({
      statusCode: answer.status,
      headers,
      body: { dump: () => Promise.resolve() },
    } as unknown as UpstreamResponse);
  };
  return { control, runtime, unpinned, heads, clock, send };
}

function watcherOf(w: ReturnType<typeof world>, options: Partial<WatcherOptions> = {}) {
  const events: WatchEvent[] = [];
  const counts: StateCount[][] = [];
  const watcher = new Watcher({
    intervalMs: 60_000,
    windowMs: 7 * 86_400_000,
    ratePerSecond: 10,
    startDelayMs: 0,
    control: () => Promise.resolve(w.control),
    tagRecord: () =>
      Promise.resolve({
        digest: A,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 1,
        checkedAt: 0,
      }),
    shares: () => false,
    isPublic: () => Promise.resolve(true),
    send: w.send,
    clock: w.clock,
    onEvent: (event) => events.push(event),
    onStates: (c) => counts.push([...c]),
    ...options,
  });
  return { watcher, events, counts };
}

describe('watcher', () => {
  it('spreads a round over the interval and asks with the Accept of the cached record', async () => {
    const tags = ['t1', 't2', 't3', 't4'].map((tag) => ({ repository: 'app', tag, lastUsed: 1_000_000 }));
    const answers = new Map(tags.map((t) => [`/v2/app/manifests/${t.tag}`, { status: 200, digest: A }]));
    const w = world(listing(tags), answers);
    const { watcher, events } = watcherOf(w);
    watcher.start();
    await w.clock.advanceTo(1_059_999);
    expect(w.heads.map((h) => h.at - 1_000_000)).toEqual([0, 15_000, 30_000, 45_000]);
    expect(w.heads[0]?.accept).toBe('application/vnd.oci.image.manifest.v1+json');
    await w.clock.advanceTo(1_060_000);
    expect(w.heads).toHaveLength(5); // the next round starts one interval after the first
    expect(events).toEqual([]);
    expect(watcher.list().tags.map((t) => t.state)).toEqual(['ok', 'ok', 'ok', 'ok']);
    await watcher.close();
  });

  it('never asks one registry faster than its rate, even when the interval is short', async () => {
    const tags = ['t1', 't2', 't3', 't4'].map((tag) => ({ repository: 'app', tag, lastUsed: 1_000_000 }));
    const answers = new Map(tags.map((t) => [`/v2/app/manifests/${t.tag}`, { status: 200, digest: A }]));
    const w = world(listing(tags), answers);
    const { watcher } = watcherOf(w, { intervalMs: 2000, ratePerSecond: 0.5 });
    watcher.start();
    await w.clock.advanceTo(1_009_000);
    const gaps = w.heads.slice(1).map((h, i) => h.at - w.heads[i]!.at);
    expect(w.heads.length).toBe(5);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(2000);
    await watcher.close();
  });

  it('watches tags used within the window and pinned ones, no others', async () => {
    const old = 1_000_000 - 8 * 86_400_000;
    const tags = [
      { repository: 'recent', tag: 'v1', lastUsed: 999_000 },
      { repository: 'old', tag: 'v1', lastUsed: old },
      { repository: 'kept', tag: 'v1', lastUsed: old },
    ];
    const w = world(listing(tags), new Map());
    w.runtime.push('registry.test/kept:*');
    const { watcher } = watcherOf(w);
    watcher.start();
    await watcher.roundsDone(0);
    await w.clock.advanceTo(1_059_000);
    expect(watcher.list().tags.map((t) => t.repository)).toEqual(['kept', 'recent']);
    await watcher.close();
  });

  it('reports a change once, pins a vanished tag and unpins it when it is back', async () => {
    const answers = new Map<string, { status: number; digest?: string }>([
      ['/v2/app/manifests/v1', { status: 200, digest: B }],
    ]);
    const w = world(listing([{ repository: 'app', tag: 'v1', lastUsed: 1_000_000 }]), answers);
    const { watcher, events, counts } = watcherOf(w);
    watcher.start();
    await w.clock.advanceTo(1_000_000 + 2 * 60_000);
    expect(w.heads).toHaveLength(3);
    expect(events.map((e) => [e.kind, e.oldDigest, e.newDigest])).toEqual([['changed', A, B]]);
    expect(counts.at(-1)).toEqual([{ registry: 'registry.test:443', state: 'changed', count: 1 }]);

    answers.set('/v2/app/manifests/v1', { status: 404 });
    await w.clock.advanceTo(1_000_000 + 3 * 60_000);
    expect(events.at(-1)).toMatchObject({ kind: 'vanished', previous: 'changed' });
    expect(w.runtime).toEqual(['registry.test/app:v1']);
    expect(watcher.list().tags[0]).toMatchObject({ state: 'vanished', autoPin: 'registry.test/app:v1' });

    answers.set('/v2/app/manifests/v1', { status: 200, digest: A });
    await w.clock.advanceTo(1_000_000 + 4 * 60_000);
    expect(events.at(-1)).toMatchObject({ kind: 'ok', previous: 'vanished' });
    expect(w.runtime).toEqual([]);
    expect(events).toHaveLength(3);
    await watcher.close();
  });

  it("leaves an operator's unpin of its pin alone", async () => {
    const answers = new Map<string, { status: number; digest?: string }>([
      ['/v2/app/manifests/v1', { status: 404 }],
    ]);
    const w = world(listing([{ repository: 'app', tag: 'v1', lastUsed: 1_000_000 }]), answers);
    const { watcher, events } = watcherOf(w);
    watcher.start();
    await w.clock.advanceTo(1_000_000);
    expect(w.runtime).toEqual(['registry.test/app:v1']);
    w.runtime.splice(0); // cache unpin
    w.runtime.push('registry.test/other:*');
    await w.clock.advanceTo(1_000_000 + 60_000);
    expect(watcher.list().tags[0]).toMatchObject({ state: 'vanished', autoPin: null });
    expect(w.runtime).toEqual(['registry.test/other:*']);
    answers.set('/v2/app/manifests/v1', { status: 200, digest: A });
    await w.clock.advanceTo(1_000_000 + 120_000);
    expect(events.map((e) => e.kind)).toEqual(['vanished', 'ok']);
    expect(w.runtime).toEqual(['registry.test/other:*']);
    expect(w.unpinned).toEqual([]);
    await watcher.close();
  });

  it('goes on with the round when one tag cannot be checked', async () => {
    const tags = ['t1', 't2'].map((tag) => ({ repository: 'app', tag, lastUsed: 1_000_000 }));
    const answers = new Map(tags.map((t) => [`/v2/app/manifests/${t.tag}`, { status: 200, digest: A }]));
    const w = world(listing(tags), answers);
    const errors: unknown[] = [];
    const { watcher } = watcherOf(w, {
      tagRecord: (_registry, _repository, tag) =>
        tag === 't1' ? Promise.reject(new Error('EIO')) : Promise.resolve(undefined),
      onError: (error) => errors.push(error),
    });
    watcher.start();
    await w.clock.advanceTo(1_059_000);
    expect(errors).toEqual([new Error('EIO')]);
    expect(w.heads.map((h) => h.path)).toEqual(['/v2/app/manifests/t2']);
    await watcher.close();
  });

  it('does not ask about a private tag without share credentials, and says so', async () => {
    const w = world(listing([{ repository: 'private', tag: 'v1', lastUsed: 1_000_000 }]), new Map());
    const { watcher, events } = watcherOf(w, { isPublic: () => Promise.resolve(false) });
    watcher.start();
    await w.clock.advanceTo(1_000_001);
    expect(w.heads).toEqual([]);
    expect(watcher.list().tags[0]?.state).toBe('pending');
    expect(watcher.list().tags[0]?.note).toContain('private');
    expect(events).toEqual([]);
    await watcher.close();
  });
});
