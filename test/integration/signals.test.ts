// Stopping pullthrough the ways operators do: SIGTERM to `npm start` (npm forwards it to its
// child, which must be node itself, not a shell that dies and leaves node running), and SIGTERM
// while nobody reads the log (a full stdout pipe must not freeze the process). Both exit 0 within
// the shutdown timeout.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'src', 'main.ts');

/** Reads `child`'s stdout until the `listening` line; resolves with its port and all output so far. */
async function listeningPort(child: ChildProcess): Promise<{ port: number; output: () => string }> {
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  for (;;) {
    const port = /"port":(\d+)[^\n]*"msg":"listening"/.exec(output)?.[1];
    if (port !== undefined) return { port: Number(port), output: () => output };
    await once(child.stdout!, 'data');
  }
}

function killWithTest(child: ChildProcess): void {
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

async function environment(): Promise<Record<string, string>> {
  const dir = await tempDir();
  return {
    ...(process.env as Record<string, string>),
    PULLTHROUGH_LISTEN: '127.0.0.1:0',
    PULLTHROUGH_CA_DIR: path.join(dir, 'ca'),
    PULLTHROUGH_CACHE_DIR: path.join(dir, 'cache'),
    PULLTHROUGH_SHUTDOWN_TIMEOUT: '2s',
  };
}

/** Resolves when a TCP connection to `port` is refused: nothing listens there any more. */
async function refused(port: number): Promise<boolean> {
  const socket = net.connect(port, '127.0.0.1');
  return new Promise((resolve) => {
    socket.once('connect', () => resolve(false)).once('error', () => resolve(true));
  }).finally(() => socket.destroy()) as Promise<boolean>;
}

/** A CONNECT to a port the proxy refuses; resolves with what it answered. */
async function refusedConnect(port: number): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.end('CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n');
  let answer = '';
  for await (const chunk of socket) answer += (chunk as Buffer).toString('latin1');
  return answer;
}

describe('signals', () => {
  it('npm start, then SIGTERM to npm: the proxy stops and exits within the shutdown timeout', async () => {
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      env: await environment(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killWithTest(npm);
    const { port, output } = await listeningPort(npm);
    const stdoutClosed = once(npm.stdout, 'close');
    const started = performance.now();
    npm.kill('SIGTERM');
    // The pipe closes when its last writer is gone: npm, and node, which inherited it.
    await stdoutClosed;
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(output()).toContain('"msg":"shutting down"');
    expect(output()).toContain('"msg":"stopped"');
    expect(await refused(port)).toBe(true);
  });

  it('SIGTERM while nobody reads stdout: exits 0 within the shutdown timeout', async () => {
    const child = spawn(process.execPath, [MAIN, 'serve'], {
      env: await environment(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killWithTest(child);
    const exited = once(child, 'exit');
    const { port } = await listeningPort(child);
    // From here on nobody reads: the pipe and the stream's buffer fill up and stay full.
    child.stdout.removeAllListeners('data');
    child.stdout.pause();

    // Each refused tunnel is a ~150-byte warning: 3000 of them are several times what a pipe
    // holds. A frozen process would stop answering here.
    const requests = 3000;
    for (let batch = 0; batch < requests / 100; batch += 1) {
      const answers = await Promise.all(Array.from({ length: 100 }, () => refusedConnect(port)));
      expect(answers.every((head) => head.startsWith('HTTP/1.1 403 '))).toBe(true);
    }

    const started = performance.now();
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('the same signal twice at once (Ctrl-C reaching node from the terminal and from npm) is one graceful stop', async () => {
    const upstream = net.createServer((socket) => socket.on('error', () => {}).resume());
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    onTestFinished(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
    const upstreamPort = (upstream.address() as net.AddressInfo).port;
    const env = await environment();
    const dir = path.dirname(env['PULLTHROUGH_CA_DIR']!);
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, `proxy: {denyNetworks: [], httpPorts: [${upstreamPort}]}\nshutdownTimeout: 1s\n`);
    const child = spawn(process.execPath, [MAIN, 'serve', '--config', file], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killWithTest(child);
    const exited = once(child, 'exit');
    const { port, output } = await listeningPort(child);
    // A request the silent upstream never answers: the graceful stop waits for it (1s).
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    onTestFinished(() => void client.destroy());
    client.write(`GET http://127.0.0.1:${upstreamPort}/ HTTP/1.1\r\nHost: 127.0.0.1:${upstreamPort}\r\n\r\n`);
    await once(upstream, 'connection');
    // Two signals sent at once may merge into one pending signal: the second follows the first's
    // log line, as npm's forwarded copy follows the terminal's.
    child.kill('SIGINT');
    while (!output().includes('"msg":"shutting down"')) await once(child.stdout, 'data');
    child.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    expect(output()).toContain('"msg":"stopped"');
    expect(output()).not.toContain('second signal');
  });
});
