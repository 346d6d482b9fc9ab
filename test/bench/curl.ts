// The client for both sides of every ratio: curl, HTTP/1.1 over TLS, either straight to a server
// or through pullthrough (CONNECT, then TLS to pullthrough's leaf). Bodies go to /dev/null, or
// to sha256sum when their content is checked.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface Target {
  readonly url: string;
  /** CA file the server's certificate chains to. */
  readonly cacert: string;
  /** `http://127.0.0.1:<port>` to go through pullthrough; absent: straight to the server. */
  readonly proxy?: string;
  /** Run curl on this CPU only (`taskset -c`), so that it does not share a core with the servers. */
  readonly cpu?: number;
}

function args(target: Target): string[] {
  const route = target.proxy === undefined ? ['--noproxy', '*'] : ['--proxy', target.proxy];
  return ['-sS', '--fail', '--http1.1', '--cacert', target.cacert, ...route, target.url];
}

async function output(cmd: string, argv: readonly string[]): Promise<string> {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} exited ${String(code)}: ${stderr.trim()}`);
  return stdout;
}

/** GETs `target` once; resolves with curl's own download speed (bytes/s) after checking the size. */
export async function download(target: Target, size: number): Promise<number> {
  const curl = ['curl', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', ...args(target)];
  const argv = target.cpu === undefined ? curl : ['taskset', '-c', String(target.cpu), ...curl];
  const out = await output(argv[0]!, argv.slice(1));
  const [speed, bytes] = out.trim().split(' ').map(Number);
  if (bytes !== size) throw new Error(`${target.url}: got ${String(bytes)} bytes, expected ${size}`);
  return speed!;
}

/** `clients` GETs of `target` at once; resolves with their aggregate throughput (bytes/s, wall clock). */
export async function downloadConcurrently(target: Target, size: number, clients: number): Promise<number> {
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, () => download(target, size)));
  return (clients * size) / ((performance.now() - started) / 1000);
}

/** GETs `target` once; resolves with the body's sha256 as `sha256:<hex>` (piped into sha256sum). */
export async function bodyDigest(target: Target): Promise<string> {
  const quoted = args(target).map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`);
  const out = await output('bash', ['-o', 'pipefail', '-c', `curl ${quoted.join(' ')} | sha256sum`]);
  return `sha256:${out.split(' ')[0] ?? ''}`;
}
