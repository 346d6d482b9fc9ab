// Child processes for the image scripts: `sh` shows the command and its output as they come
// (a build is long and its log is the user's only view of it); `capture` returns the output.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd`, its output passed through; throws unless it exits 0. */
export async function sh(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<void> {
  console.log(`image: $ ${[cmd, ...args].join(' ')}`);
  const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: env ?? process.env });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`\`${cmd} ${args.join(' ')}\` failed (exit ${String(code)})`);
}

/** Runs `cmd` with its output captured; never throws for a non-zero exit, only a missing binary. */
export async function capture(cmd: string, args: readonly string[]): Promise<Result> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}
