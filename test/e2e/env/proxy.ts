// pullthrough under test, as a child process (`node src/main.ts serve --config …`), and its log:
// every pino JSON line from its stdout is kept so tests can prove from the proxy's own words that
// a client went through it. Stopping sends SIGTERM; a clean shutdown must exit 0. With `auth`, the
// proxy requires `Proxy-Authorization: Basic` (config `proxy.htpasswd`, one bcrypt line written here).
import bcrypt from 'bcryptjs';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { NODE_FLAGS } from '../../../src/node-flags.ts';
import type { Daemon, Exit, Processes } from './processes.ts';
import { describe } from './processes.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');

/** One parsed log line. Fields the tests rely on are typed; the rest is open. */
export interface LogLine {
  msg?: string;
  level?: number | string;
  [field: string]: unknown;
}

/** `"msg":"request"`: one per intercepted request, written when it completes. */
export interface RequestLine extends LogLine {
  host: string;
  method: string;
  path: string;
  status: number;
}

/** `"msg":"tunnel"`: one per CONNECT that was passed through byte for byte. */
export interface TunnelLine extends LogLine {
  destination: string;
  bytesUp: number;
  bytesDown: number;
}

/** A proxy user: written to the proxy's htpasswd file, and given to clients in their proxy URL. */
export interface ProxyCredentials {
  user: string;
  password: string;
}

export interface ProxyOptions {
  dir: string;
  /** Entries of `registries`: a host, or `{host, deny, …}` with settings of its own. */
  registries: ReadonlyArray<string | Readonly<Record<string, unknown>>>;
  /** Settings given to every registry entry (e.g. `{ serveStaleOn: [...] }`). */
  registrySettings?: Readonly<Record<string, unknown>> | undefined;
  upstreamCaFile: string;
  processes: Processes;
  /** Require proxy authentication with this one user. */
  auth?: ProxyCredentials | undefined;
  /** `cache` settings on top of `dir` (default `<dir>/cache`), e.g. `{ maxSize: '8MiB' }`. */
  cache?: Readonly<Record<string, unknown>> | undefined;
  /** `mirror` settings (e.g. `{ listen: '127.0.0.1:0' }`): the mirror listener, off without it. */
  mirror?: Readonly<Record<string, unknown>> | undefined;
  /** `admin` settings (e.g. `{ token: '…' }`): the admin API, off without it. */
  admin?: Readonly<Record<string, unknown>> | undefined;
  /**
   * `watch` settings; without them the watch is off (interval 0), so that no other test's
   * upstream counts see its HEAD requests.
   */
  watch?: Readonly<Record<string, unknown>> | undefined;
  /** `cluster` settings (e.g. `{ redis, secret }`): a replica of a cluster, off without it. */
  cluster?: Readonly<Record<string, unknown>> | undefined;
  /** `storage` settings (e.g. `{ type: 's3', s3: {…} }`): fs in cache.dir without it. */
  storage?: Readonly<Record<string, unknown>> | undefined;
  /** More environment for the proxy (e.g. AWS_ACCESS_KEY_ID for storage.type s3). */
  env?: Readonly<Record<string, string>> | undefined;
}

export interface WaitOptions {
  /** Only lines at or after this index (see `mark()`). */
  from?: number;
  timeoutMs?: number;
}

/** The proxy's log as parsed lines, with waits for lines yet to come. */
export class ProxyLog {
  readonly lines: LogLine[] = [];
  readonly #waiters = new Set<() => void>();
  #closed: string | undefined;

  push(line: LogLine): void {
    this.lines.push(line);
    for (const check of [...this.#waiters]) check();
  }

  /** No more lines will come (the process exited): pending waits fail now. */
  close(reason: string): void {
    this.#closed = reason;
    for (const check of [...this.#waiters]) check();
  }

  /** Where the log is now: pass as `from` to wait only for lines logged after this point. */
  mark(): number {
    return this.lines.length;
  }

  /** Resolves with the first line from index `from` on (logged already or yet to come) that `match` accepts. */
  waitForLine<T extends LogLine>(match: (line: LogLine) => line is T, options?: WaitOptions): Promise<T>;
  waitForLine(match: (line: LogLine) => boolean, options?: WaitOptions): Promise<LogLine>;
  waitForLine(match: (line: LogLine) => boolean, options: WaitOptions = {}): Promise<LogLine> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      let seen = options.from ?? 0;
      const check = (): void => {
        for (; seen < this.lines.length; seen++) {
          const line = this.lines[seen];
          if (line !== undefined && match(line)) {
            done();
            resolve(line);
            return;
          }
        }
        if (this.#closed !== undefined) {
          done();
          reject(new Error(`${this.#closed} before the awaited log line; last lines:\n${this.tail()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching proxy log line within ${timeoutMs} ms; last lines:\n${this.tail()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Request lines for `host` (with or without `:443`), from index `from` on. */
  requests(host: string, from = 0): RequestLine[] {
    return this.lines
      .slice(from)
      .filter((line): line is RequestLine => isRequest(line) && sameHost(line.host, host));
  }

  /** Waits for the request line of `METHOD PATH` on `host`. */
  waitForRequest(host: string, method: string, path: string, options?: WaitOptions): Promise<RequestLine> {
    return this.waitForLine(
      (line): line is RequestLine =>
        isRequest(line) && sameHost(line.host, host) && line.method === method && line.path === path,
      options,
    );
  }

  /** Waits for the tunnel line of `destination` (HOST:PORT); a tunnel logs when it closes. */
  waitForTunnel(destination: string, options?: WaitOptions): Promise<TunnelLine> {
    return this.waitForLine(
      (line): line is TunnelLine => line.msg === 'tunnel' && line['destination'] === destination,
      options,
    );
  }

  tail(count = 20): string {
    return this.lines
      .slice(-count)
      .map((line) => JSON.stringify(line))
      .join('\n');
  }
}

export interface Pullthrough {
  daemon: Daemon;
  port: number;
  /** For HTTPS_PROXY: `http://127.0.0.1:PORT`, or `http://USER:PASSWORD@127.0.0.1:PORT` with `auth`. */
  url: string;
  /** The user the proxy requires, if it requires one. */
  auth: ProxyCredentials | undefined;
  /** The proxy's URL with these credentials in it (percent-encoded), or none. */
  urlWith(credentials: ProxyCredentials | undefined): string;
  /** The proxy's own CA certificate, which clients must trust for intercepted hosts. */
  caCrt: string;
  /** The mirror listener's port, when started with `mirror`. */
  mirrorPort: number | undefined;
  /** A directory holding only `ca.crt` (the proxy's CA): for `--cert-dir` style flags. */
  caCertDir: string;
  /** The proxy's `cache.dir` (layout in src/cache/layout.ts). */
  cacheDir: string;
  log: ProxyLog;
  /** SIGTERM; throws unless the proxy exits 0. */
  stop(): Promise<Exit>;
}

export function isRequest(line: LogLine): line is RequestLine {
  return line.msg === 'request' && typeof line['host'] === 'string';
}

export function sameHost(logged: string, host: string): boolean {
  return logged === host || logged === `${host}:443`;
}

/** The Node that runs the proxy: this one if it is 24+, else the project's `node` package. */
export function nodeBinary(): string {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) return process.execPath;
  const local = join(REPO_ROOT, 'node_modules', '.bin', 'node');
  if (existsSync(local)) return local;
  throw new Error(`the proxy needs Node 24+, this is ${process.version} and ${local} is missing`);
}

export async function startProxy(options: ProxyOptions): Promise<Pullthrough> {
  const main = join(REPO_ROOT, 'src', 'main.ts');
  if (!existsSync(main)) throw new Error(`${main} does not exist yet: nothing to test`);
  mkdirSync(options.dir, { recursive: true });
  const caDir = join(options.dir, 'ca');
  const config = join(options.dir, 'config.yaml');
  const cacheSettings = { dir: join(options.dir, 'cache'), ...options.cache };
  const cacheDir = String(cacheSettings.dir);
  const settings: string[] = [];
  if (options.auth !== undefined) {
    const htpasswd = join(options.dir, 'htpasswd');
    const hash = await bcrypt.hash(options.auth.password, 10);
    writeFileSync(htpasswd, `${options.auth.user}:${hash}\n`, { mode: 0o600 });
    settings.push(`proxy: { htpasswd: ${JSON.stringify(htpasswd)} }`);
  }
  if (options.mirror !== undefined) settings.push(`mirror: ${JSON.stringify(options.mirror)}`);
  if (options.admin !== undefined) settings.push(`admin: ${JSON.stringify(options.admin)}`);
  settings.push(`watch: ${JSON.stringify(options.watch ?? { interval: '0s' })}`);
  const registries = options.registrySettings
    ? options.registries.map((entry) =>
        typeof entry === 'string'
          ? { host: entry, ...options.registrySettings }
          : { ...options.registrySettings, ...entry },
      )
    : options.registries;
  if (options.cluster !== undefined) settings.push(`cluster: ${JSON.stringify(options.cluster)}`);
  if (options.storage !== undefined) settings.push(`storage: ${JSON.stringify(options.storage)}`);
  writeFileSync(
    config,
    [
      'listen: 127.0.0.1:0',
      `registries: ${JSON.stringify(registries)}`,
      `ca: { dir: ${JSON.stringify(caDir)} }`,
      `cache: ${JSON.stringify(cacheSettings)}`,
      `upstream: { caFiles: [${JSON.stringify(options.upstreamCaFile)}] }`,
      'log: { level: debug }',
      ...settings,
      '',
    ].join('\n'),
  );
  // No proxy variables: the proxy reaches upstreams directly.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: options.dir,
    ...options.env,
  };
  const daemon = await options.processes.start(
    'pullthrough',
    nodeBinary(),
    [...NODE_FLAGS, main, 'serve', '--config', config],
    {
      env,
      cwd: REPO_ROOT,
      stdout: 'pipe',
    },
  );
  const log = new ProxyLog();
  const raw = createWriteStream(join(options.dir, 'stdout.log'));
  const stdout = daemon.child.stdout;
  if (stdout === null) throw new Error('proxy stdout is not a pipe');
  createInterface({ input: stdout }).on('line', (text) => {
    raw.write(`${text}\n`);
    try {
      log.push(JSON.parse(text) as LogLine);
    } catch {
      log.push({ msg: '(not json)', text });
    }
  });
  void daemon.exited.then((exit) => {
    raw.end();
    log.close(`proxy exited (${describe(exit)})`);
  });

  let listening: LogLine;
  try {
    listening = await log.waitForLine((line) => line.msg === 'listening', { timeoutMs: 20_000 });
  } catch (error) {
    if (daemon.exit === undefined) await daemon.stop(2_000);
    throw new Error(`pullthrough did not start: ${(error as Error).message}\nstderr:\n${daemon.logTail()}`);
  }
  const port = listening['port'];
  if (typeof port !== 'number')
    throw new Error(`"listening" line has no numeric port: ${JSON.stringify(listening)}`);
  const mirrorPort = options.mirror === undefined ? undefined : await mirrorPortOf(log);
  const caCrt = join(caDir, 'ca.crt');
  if (!existsSync(caCrt)) throw new Error(`proxy is listening but ${caCrt} does not exist`);
  const caCertDir = join(options.dir, 'trust');
  mkdirSync(caCertDir);
  copyFileSync(caCrt, join(caCertDir, 'ca.crt'));
  const urlWith = (credentials: ProxyCredentials | undefined): string => {
    const url = new URL(`http://127.0.0.1:${port}`);
    if (credentials !== undefined) {
      // Encoded here: the setters would leave a `%` as it is. Clients decode it again.
      url.username = encodeURIComponent(credentials.user);
      url.password = encodeURIComponent(credentials.password);
    }
    // Without credentials, no trailing slash: the form `docker info` shows back.
    return url.href.replace(/\/$/, '');
  };
  return {
    daemon,
    port,
    url: urlWith(options.auth),
    auth: options.auth,
    urlWith,
    caCrt,
    mirrorPort,
    caCertDir,
    cacheDir,
    log,
    async stop() {
      const exit = await daemon.stop();
      if (exit.code !== 0) {
        throw new Error(`proxy did not exit 0 on SIGTERM (${describe(exit)}); stderr:\n${daemon.logTail()}`);
      }
      return exit;
    },
  };
}

/** The port of the `mirror listening` line, logged right after `listening`. */
async function mirrorPortOf(log: ProxyLog): Promise<number> {
  const line = await log.waitForLine((candidate) => candidate.msg === 'mirror listening');
  const port = line['port'];
  if (typeof port !== 'number')
    throw new Error(`"mirror listening" has no numeric port: ${JSON.stringify(line)}`);
  return port;
}
