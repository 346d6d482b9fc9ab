// The watched tag's state machine: each upstream answer moves it, and only news is an event.
import { describe, expect, it } from 'vitest';
import { newEntry, observe, referenceOf, type WatchEntry } from '../../../src/watch/state.ts';

const KEY = { registry: 'registry.test:443', repository: 'e2e/small', tag: 'v1' };
const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;

function step(entry: WatchEntry, observation: Parameters<typeof observe>[1], at: number, known = [A]) {
  return observe(entry, observation, known, at);
}

describe('watch state', () => {
  it('a first ok is no news; a change, a vanish and a return are, each once', () => {
    let { entry, event } = step(newEntry(KEY, A, 0), { kind: 'found', digest: A }, 10);
    expect(entry).toMatchObject({ state: 'ok', upstream: A, checkedAt: 10, since: 10 });
    expect(event).toBeUndefined();

    ({ entry, event } = step(entry, { kind: 'found', digest: A }, 20));
    expect(event).toBeUndefined();
    expect(entry.since).toBe(10);

    ({ entry, event } = step(entry, { kind: 'found', digest: B }, 30));
    expect(entry).toMatchObject({ state: 'changed', cached: A, upstream: B, since: 30 });
    expect(event).toEqual({
      ...KEY,
      kind: 'changed',
      previous: 'ok',
      oldDigest: A,
      newDigest: B,
      note: null,
      at: 30,
    });

    ({ entry, event } = step(entry, { kind: 'found', digest: B }, 40));
    expect(event).toBeUndefined();

    // Moved again while changed: news, with the newest digest.
    ({ entry, event } = step(entry, { kind: 'found', digest: C }, 50));
    expect(event).toMatchObject({ kind: 'changed', previous: 'changed', newDigest: C });

    ({ entry, event } = step(entry, { kind: 'missing', status: 404 }, 60));
    expect(entry).toMatchObject({ state: 'vanished', upstream: null, note: 'upstream answered 404' });
    expect(event).toMatchObject({ kind: 'vanished', previous: 'changed', oldDigest: A, newDigest: null });

    ({ entry, event } = step(entry, { kind: 'found', digest: A }, 70));
    expect(event).toMatchObject({ kind: 'ok', previous: 'vanished', newDigest: A });
  });

  it('any digest the cache holds for the tag (one per Accept variant) is ok', () => {
    const { entry, event } = step(newEntry(KEY, A, 0), { kind: 'found', digest: B }, 1, [A, B]);
    expect(entry.state).toBe('ok');
    expect(event).toBeUndefined();
  });

  it('401/403 is unauthorized, no answer is unreachable and keeps the last digest seen', () => {
    let { entry, event } = step(newEntry(KEY, A, 0), { kind: 'found', digest: A }, 1);
    ({ entry, event } = step(entry, { kind: 'unreachable', reason: 'connect ECONNREFUSED' }, 2));
    expect(entry).toMatchObject({ state: 'unreachable', upstream: A, note: 'connect ECONNREFUSED' });
    expect(event).toMatchObject({ kind: 'unreachable', previous: 'ok' });
    ({ entry, event } = step(entry, { kind: 'refused', status: 403 }, 3));
    expect(entry.state).toBe('unauthorized');
    expect(event).toMatchObject({
      kind: 'unauthorized',
      previous: 'unreachable',
      note: 'upstream answered 403',
    });
  });

  it('a first answer that is not ok is news', () => {
    const { event } = step(newEntry(KEY, A, 0), { kind: 'missing', status: 404 }, 1);
    expect(event).toMatchObject({ kind: 'vanished', previous: 'pending' });
  });

  it('a skipped check leaves the state as it was and says why', () => {
    const { entry: ok } = step(newEntry(KEY, A, 0), { kind: 'found', digest: A }, 1);
    const { entry, event } = step(ok, { kind: 'skipped', reason: 'private' }, 2);
    expect(entry).toMatchObject({ state: 'ok', checkedAt: 1, note: 'private' });
    expect(event).toBeUndefined();
  });

  it('names the tag as people write it', () => {
    expect(referenceOf(KEY)).toBe('registry.test/e2e/small:v1');
    expect(referenceOf({ ...KEY, registry: 'localhost:5000' })).toBe('localhost:5000/e2e/small:v1');
  });
});
