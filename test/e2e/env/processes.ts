// Child processes of the e2e world. Daemons are recorded by PID (in memory, and in the world's
// `pids` file so a later run can clean up after a crash) and stopped by that PID only. One-shot
// commands (`run`) are awaited with a time limit and killed by PID when it passes.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DaemonOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** 'pipe' leaves stdout readable on `child.stdout` (stderr still goes to the log file). */
  stdout?: 'log' | 'pipe';
}

export class Daemon {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;

  constructor(name: string, child: ChildProcess, logFile: string) {
    if (child.pid === undefined) throw new Error(`${name}: spawn gave no pid`);
    this.name = name;
    this.pid = child.pid;
    this.child = child;
    this.logFile = logFile;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /** A reason to stop waiting for readiness, once the process has gone. */
  readonly gone = (): string | undefined =>
    this.exit === undefined
      ? undefined
      : `${this.name} exited (${describe(this.exit)}); log:\n${this.logTail()}`;

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  async stop(graceMs = 15_000): Promise<Exit> {
    if (this.exit !== undefined) return this.exit;
    sendSignal(this.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (this.exit === undefined) sendSignal(this.pid, 'SIGKILL');
    }, graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** process.kill, quiet when the process has already gone (its 'exit' may not be processed yet). */
function sendSignal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

export function describe(exit: Exit): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `code ${String(exit.code)}`;
}

export class Processes {
  readonly #pidsFile: string;
  readonly #logDir: string;
  readonly #live = new Set<Daemon>();

  constructor(pidsFile: string, logDir: string) {
    this.#pidsFile = pidsFile;
    this.#logDir = logDir;
  }

  async start(name: string, cmd: string, args: readonly string[], options: DaemonOptions): Promise<Daemon> {
    const logFile = join(this.#logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const stdio: StdioOptions = ['ignore', options.stdout === 'pipe' ? 'pipe' : fd, fd];
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { env: options.env, cwd: options.cwd, stdio });
    } finally {
      closeSync(fd);
    }
    try {
      await once(child, 'spawn'); // rejects with the 'error' of a missing binary
    } catch (error) {
      throw new Error(`cannot start ${name} (${cmd}): ${(error as Error).message}`, { cause: error });
    }
    // Later 'error's (a failed kill) must not crash the test process; exits are awaited via 'exit'.
    child.on('error', () => undefined);
    const daemon = new Daemon(name, child, logFile);
    // Recorded with its command line so crash cleanup can tell it from a reused PID (see cleanup.ts).
    appendFileSync(this.#pidsFile, `${daemon.pid}\t${JSON.stringify([cmd, ...args])}\n`);
    this.#live.add(daemon);
    void daemon.exited.then(() => this.#live.delete(daemon));
    return daemon;
  }

  /** Every daemon still running, newest first. */
  live(): Daemon[] {
    return [...this.#live].reverse();
  }

  /** Last resort from a synchronous `exit` handler: SIGKILL whatever is left. */
  killAllSync(): void {
    for (const daemon of this.#live) sendSignal(daemon.pid, 'SIGKILL');
  }
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

export interface RunResult {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion, capturing its output; killed by PID if it outlives `timeoutMs`. */
export async function run(cmd: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const child = spawn(cmd, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timeoutMs = options.timeoutMs ?? 120_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) sendSignal(child.pid, 'SIGKILL');
  }, timeoutMs);
  try {
    let code: number | null;
    let signal: NodeJS.Signals | null;
    try {
      // 'close' (not 'exit'): all output has been read. Rejects with the 'error' of a missing binary.
      [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    } catch (error) {
      throw new Error(`cannot run ${cmd}: ${(error as Error).message}`, { cause: error });
    }
    if (timedOut) stderr += `\n(killed after ${timeoutMs} ms)`;
    return {
      command: [cmd, ...args].join(' '),
      code,
      signal,
      stdout,
      stderr,
      ms: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** `run`, throwing with the command's stderr unless it exits 0. */
export async function runOk(cmd: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const result = await run(cmd, args, options);
  if (result.code !== 0) throw new Error(failure(result));
  return result;
}

export function failure(result: RunResult): string {
  const why = result.signal !== null ? `signal ${result.signal}` : `exit ${String(result.code)}`;
  return `\`${result.command}\` failed (${why}):\n${result.stderr.trim() || result.stdout.trim()}`;
}
