// A real redis-server (Debian's) for a test: on a free loopback port, no persistence, stopped by
// its PID when the test ends; stop() and start() again on the same port play a Redis restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { onTestFinished } from 'vitest';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Kills it (SIGKILL: a crash, nothing saved) and waits for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/** Whether redis-server is installed (test/e2e/env/ensure-deps.ts installs it). */
export async function hasRedisServer(): Promise<boolean> {
  const child = spawn('redis-server', ['--version'], { stdio: 'ignore' });
  const [code] = (await Promise.race([once(child, 'exit'), once(child, 'error').then(() => [1])])) as [
    number,
  ];
  return code === 0;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const started = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    child = started;
    let seen = '';
    // Ready once it says so: no polling, no sleep.
    while (!seen.includes('Ready to accept connections')) {
      const [chunk] = (await once(started.stdout, 'data')) as [Buffer];
      seen += chunk.toString();
    }
    started.stdout.resume();
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGKILL');
    await exited;
  };
  await start();
  onTestFinished(stop);
  return { port, url: `redis://127.0.0.1:${port}`, stop, start };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
