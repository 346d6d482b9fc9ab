// vitest glue for e2e files: a world per file that tears itself down, and timing lines.
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { RunResult } from './processes.ts';
import { describe as describeExit, failure } from './processes.ts';
import { startWorld, type World, type WorldOptions } from './world.ts';

/** Starts a world in `beforeAll` and stops it in `afterAll`; the returned function gives it to tests. */
export function useWorld(options?: WorldOptions): () => World {
  let world: World | undefined;
  beforeAll(async () => {
    const started = performance.now();
    world = await startWorld(options);
    report('world start', performance.now() - started);
  });
  // A client's "connection reset" says little; name the cause when it is the proxy dying.
  afterEach(() => {
    const proxy = options?.proxy === false ? undefined : world?.proxy.daemon;
    if (proxy?.exit !== undefined) {
      throw new Error(
        `pullthrough exited during the test (${describeExit(proxy.exit)}); stderr:\n${proxy.logTail()}`,
      );
    }
  });
  afterAll(async () => {
    const started = performance.now();
    await world?.stop();
    report('world stop', performance.now() - started);
  });
  return () => {
    if (world === undefined) throw new Error('the e2e world did not start (see beforeAll)');
    return world;
  };
}

export function report(label: string, ms: number): void {
  console.info(`[e2e] ${label}: ${(ms / 1000).toFixed(2)} s`);
}

/** Reports how long the command took and throws with its stderr unless it exited 0. */
export function expectSuccess(label: string, result: RunResult): RunResult {
  report(label, result.ms);
  if (result.code !== 0) throw new Error(failure(result));
  return result;
}

/** Reports how long the command took and returns its output; throws if it unexpectedly succeeded. */
export function expectFailure(label: string, result: RunResult): string {
  report(label, result.ms);
  if (result.code === 0)
    throw new Error(`\`${result.command}\` succeeded but was expected to fail:\n${result.stdout}`);
  return `${result.stderr}\n${result.stdout}`;
}
