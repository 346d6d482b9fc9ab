// A replica of a cluster in a child process (`pullthrough serve --config <file>`), so that a test
// can kill it as a process dies (SIGKILL); killed at the end of the test if still alive.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { onTestFinished } from 'vitest';
import { MAIN } from './cli.ts';

/** Starts it and resolves once it logs that it listens, with the port it listens on. */
export async function childReplica(configFile: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let buffered = '';
  for (;;) {
    const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
    buffered += chunk.toString();
    const listening = buffered
      .split('\n')
      .slice(0, -1)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line['msg'] === 'listening');
    if (listening) {
      child.stdout.resume();
      return { child, port: listening['port'] as number };
    }
  }
}
