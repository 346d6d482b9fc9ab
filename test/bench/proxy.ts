// pullthrough as a child process, the way it runs in production: `node dist/main.js serve
// --config FILE`, compiled as the Dockerfile does it (buildProxy), with its CPU its own, not
// shared with the harness's event loop. Listens on port 0 and reports the port in its
// `listening` log line; its log goes to a file in the run's dir. BENCH_NODE_FLAGS adds Node
// flags to every proxy (e.g. `--trace-gc`) when looking into a figure.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { NODE_FLAGS } from '../../src/node-flags.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'dist', 'main.js');

/**
 * Compiles src/ into dist/ with the project's own `npm run build`. Running src/main.ts through
 * Node's type stripper would cost ~25 MiB of RSS and some start-up time that a deployed proxy
 * does not pay.
 */
export function buildProxy(): void {
  const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`npm run build failed: ${result.error?.message ?? `${result.stdout}${result.stderr}`}`);
  }
}

export interface ProxyOptions {
  readonly dir: string;
  /** Its name for log and config files: one directory may see several proxies in turn. */
  readonly name: string;
  readonly caDir: string;
  readonly cacheDir: string;
  /** `host:port` of the upstream registries to intercept. */
  readonly registries: readonly string[];
  /** Ports a CONNECT may tunnel to (proxy.connectPorts); pullthrough's default when absent. */
  readonly connectPorts?: readonly number[] | undefined;
  readonly upstreamCaFile: string;
  /** Write a V8 CPU profile (.cpuprofile) into this directory when the proxy exits. */
  readonly cpuProfDir?: string | undefined;
  /** More config sections (e.g. `storage`), merged over the ones above. */
  readonly config?: Readonly<Record<string, unknown>> | undefined;
  /** More environment (e.g. the AWS keys of storage.type s3). */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** The built entry point to run; default this checkout's dist/main.js (compare-builds.ts). */
  readonly main?: string | undefined;
}

export interface ProxyChild {
  readonly pid: number;
  /** `http://127.0.0.1:<port>`, for curl's --proxy. */
  readonly url: string;
  readonly caFile: string;
  /** From spawn to the `listening` log line, ms. */
  readonly startupMs: number;
  stop(): Promise<void>;
}

function parseLine(line: string): { msg?: unknown; port?: unknown } | undefined {
  try {
    return JSON.parse(line) as { msg?: unknown; port?: unknown };
  } catch {
    return undefined;
  }
}

export async function startProxyChild(options: ProxyOptions): Promise<ProxyChild> {
  const configFile = path.join(options.dir, `${options.name}.config.json`);
  const logFile = path.join(options.dir, `${options.name}.log`);
  // JSON is YAML: the config loader reads it as it is.
  const config = {
    listen: '127.0.0.1:0',
    registries: options.registries,
    ca: { dir: options.caDir },
    cache: { dir: options.cacheDir },
    ...(options.connectPorts ? { proxy: { connectPorts: options.connectPorts } } : {}),
    log: { level: 'info' },
    shutdownTimeout: '5s',
    ...options.config,
    // Sections the caller adds to, not replaces: the upstream's CA stays trusted.
    upstream: { caFiles: [options.upstreamCaFile], ...(options.config?.['upstream'] as object | undefined) },
  };
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const flags = [
    ...NODE_FLAGS, // as the Dockerfile runs it
    ...(options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : []),
    // Read at each start, so that a script may compare flags proxy by proxy; V8 takes the last.
    ...(process.env['BENCH_NODE_FLAGS']?.split(' ').filter(Boolean) ?? []),
  ];
  const spawned = performance.now();
  const child = spawn(process.execPath, [...flags, options.main ?? MAIN, 'serve', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  const log = createWriteStream(logFile);
  child.stderr.pipe(log, { end: false });
  child.stdout.pipe(log, { end: false });
  const exited = once(child, 'exit');
  // Lines are read only until `listening`: at 10k requests a second, splitting the access log
  // into lines would take CPU from the load generators running in this process.
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    void exited.then(([code]) => reject(new Error(`pullthrough exited (${String(code)}); see ${logFile}`)));
    lines.on('line', (line) => {
      const parsed = parseLine(line);
      if (parsed?.msg === 'listening' && typeof parsed.port === 'number') resolve(parsed.port);
    });
  }).finally(() => {
    lines.close();
    child.stdout.resume(); // closing paused it, and the pipe to the log file needs it flowing
  });
  const startupMs = performance.now() - spawned;
  return {
    pid: child.pid!,
    startupMs,
    url: `http://127.0.0.1:${port}`,
    caFile: path.join(options.caDir, 'ca.crt'),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      log.end();
    },
  };
}
