// Warming from the dashboard (POST /admin/warm): each job pulls one image through the proxy as
// `pullthrough warm` does (pull.ts), in the background, and keeps its progress (bytes read of
// the bytes the manifests list) and its outcome for the page to poll. Bounded: a few jobs run at
// once, the newest are kept.
import type { Dispatcher } from 'undici';
import { formatRef, ImageRefError, parseImageRef } from './image-ref.ts';
import { hostPlatform, RegistryClient, type PlatformChoice, type PullResult } from './pull.ts';

export interface WarmJob {
  readonly id: number;
  /** The reference as the job reads it (`docker.io/library/alpine:3.20`). */
  readonly ref: string;
  readonly platforms: PlatformChoice;
  readonly state: 'running' | 'done' | 'failed';
  /** ms since the epoch. */
  readonly started: number;
  readonly ended: number | null;
  /** Bytes of the blobs to read, once the manifests are read. */
  readonly total: number | null;
  readonly done: number;
  readonly result: PullResult | null;
  readonly error: string | null;
}

export interface WarmJobsOptions {
  /** Jobs running at once; more are refused until one ends. */
  readonly running?: number;
  /** Jobs kept, running or not. */
  readonly keep?: number;
  /** Told when a job ends (a log line, the dashboard's events). */
  readonly onEnd?: (job: WarmJob) => void;
  readonly now?: () => number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class WarmJobs {
  readonly #jobs: Array<Mutable<WarmJob>> = [];
  readonly #options: WarmJobsOptions;
  readonly #now: () => number;
  #dispatcher: Dispatcher | undefined;
  #nextId = 1;

  constructor(options: WarmJobsOptions = {}) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The way to the proxy (known once it listens): every job's requests go through it. */
  connect(dispatcher: Dispatcher): void {
    this.#dispatcher = dispatcher;
  }

  /** Newest first. */
  jobs(): WarmJob[] {
    return this.#jobs.map((job) => ({ ...job })).reverse();
  }

  /**
   * Starts warming `text` for `platform` (a comma-separated list, `all`, or this machine's);
   * an error when the reference is not one or too many jobs run.
   */
  start(text: string, platform: string | undefined): { job: WarmJob } | { error: string } {
    const dispatcher = this.#dispatcher;
    if (!dispatcher) return { error: 'the proxy is not listening yet' };
    if (this.#jobs.filter((job) => job.state === 'running').length >= (this.#options.running ?? 4)) {
      return { error: 'too many warm jobs running: wait for one to end' };
    }
    let ref;
    try {
      ref = parseImageRef(text);
    } catch (error) {
      if (error instanceof ImageRefError) return { error: error.message };
      throw error;
    }
    const platforms = platformChoice(platform);
    const job: Mutable<WarmJob> = {
      ...{ id: this.#nextId++, ref: formatRef(ref), platforms, state: 'running', started: this.#now() },
      ...{ ended: null, total: null, done: 0, result: null, error: null },
    };
    this.#jobs.push(job);
    const ended = (state: WarmJob['state']) => {
      job.state = state;
      job.ended = this.#now();
      this.#options.onEnd?.({ ...job });
    };
    new RegistryClient(dispatcher)
      .pull(ref, platforms, {
        sized: (bytes) => (job.total = bytes),
        progress: (bytes) => (job.done += bytes),
      })
      .then(
        (result) => {
          job.result = result;
          ended('done');
        },
        (error: unknown) => {
          job.error = error instanceof Error ? error.message : String(error);
          ended('failed');
        },
      );
    this.#trim();
    return { job: { ...job } };
  }

  #trim(): void {
    const keep = this.#options.keep ?? 20;
    for (let i = 0; this.#jobs.length > keep && i < this.#jobs.length;) {
      if (this.#jobs[i]!.state === 'running') i++;
      else this.#jobs.splice(i, 1);
    }
  }
}

function platformChoice(platform: string | undefined): PlatformChoice {
  const text = platform?.trim() ?? '';
  if (text === 'all') return 'all';
  const list = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  return list.length > 0 ? list : [hostPlatform()];
}
