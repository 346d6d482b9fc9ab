// The CLI spawned as an operator runs it (`node src/main.ts …`), its output collected, and the
// child killed with the test if a failed test leaves it running (a serve that never stops).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { onTestFinished } from 'vitest';

export const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');

/**
 * Runs `pullthrough ARGS` with this process's environment plus `env`; an admin token set in the
 * environment of whoever runs the tests never reaches it (the `cache` commands would use it).
 */
export function runCli(args: readonly string[], env: Record<string, string> = {}) {
  const { PULLTHROUGH_ADMIN_TOKEN: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, exited, stdout: () => stdout };
}
