// The dashboard's warm jobs (warm/jobs.ts) without a network: refused before the proxy listens,
// for a reference that is not one and past the running limit; the platforms a job takes; the
// newest jobs kept, newest first, running ones never dropped.
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { WarmJobs } from '../../../src/warm/jobs.ts';
import { hostPlatform } from '../../../src/warm/pull.ts';

/** A way to the proxy that never answers: every job stays running. */
const silent = { dispatch: () => true } as unknown as Dispatcher;

/** A way to the proxy that fails every request at once: every job ends failed. */
const failing = {
  dispatch: (
    _options: unknown,
    handler: { onResponseError?: (controller: unknown, error: Error) => void },
  ) => {
    queueMicrotask(() => handler.onResponseError?.(null, new Error('connection refused')));
    return true;
  },
} as unknown as Dispatcher;

describe('warm jobs', () => {
  it('refuses before the proxy listens, a reference that is not one, and more than `running` at once', () => {
    const jobs = new WarmJobs({ running: 2 });
    expect(jobs.start('alpine:3', undefined)).toEqual({ error: 'the proxy is not listening yet' });
    jobs.connect(silent);
    expect(jobs.start('Not A Ref', undefined)).toEqual({
      error: 'Not A Ref: library/Not A Ref is not a repository name',
    });
    expect(jobs.start('alpine:3', undefined)).toMatchObject({
      job: { id: 1, ref: 'docker.io/library/alpine:3', state: 'running', platforms: [hostPlatform()] },
    });
    expect(jobs.start('ghcr.io/org/app@sha256:' + 'a'.repeat(64), 'all')).toMatchObject({
      job: { id: 2, ref: `ghcr.io/org/app@sha256:${'a'.repeat(64)}`, platforms: 'all' },
    });
    expect(jobs.start('quay.io/a/b:1', 'linux/amd64, linux/arm64')).toEqual({
      error: 'too many warm jobs running: wait for one to end',
    });
    expect(jobs.jobs().map((job) => job.id)).toEqual([2, 1]);
  });

  it('ends a job that fails with its error, tells onEnd, and keeps the newest', async () => {
    const ended: string[] = [];
    const jobs = new WarmJobs({
      keep: 2,
      onEnd: (job) => ended.push(`${job.ref} ${job.state} ${job.error}`),
    });
    jobs.connect(failing);
    for (const tag of ['1', '2', '3']) {
      expect(jobs.start(`quay.io/a/b:${tag}`, 'linux/arm64')).toHaveProperty('job');
      await expect.poll(() => ended.length).toBe(Number(tag));
    }
    expect(ended[0]).toMatch(/^quay\.io\/a\/b:1 failed .*connection refused/);
    jobs.start('quay.io/a/b:4', undefined); // trims the ended ones past `keep`
    expect(jobs.jobs().map((job) => `${job.ref} ${job.state}`)).toEqual([
      'quay.io/a/b:4 running',
      'quay.io/a/b:3 failed',
    ]);
  });
});
