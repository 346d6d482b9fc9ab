// pullthrough as its image runs: `podman run` of pullthrough:dev (built by `npm run image`) with
// --network host, a read-only root, named volumes for /ca and /cache, and files mounted read-only (a config.yaml
// over the image's, the upstream CA). The container's stdout (pino JSON) feeds a ProxyLog, as the
// child-process proxy's does. Containers and volumes have fixed names: one e2e run at a time.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, failure, run, runOk, type Daemon, type Exit, type RunResult } from '../processes.ts';
import { ProxyLog, type LogLine } from '../proxy.ts';
import type { World } from '../world.ts';

export const IMAGE = 'localhost/pullthrough:dev';

export interface ContainerOptions {
  /** Container name; volumes are `<name>-ca` and `<name>-<volume>`. */
  name: string;
  /** Host file → read-only path in the container. */
  files?: Readonly<Record<string, string>>;
  /** Named volume suffix → mount point (`/ca` gets `<name>-ca` always). */
  volumes?: Readonly<Record<string, string>>;
  env?: Readonly<Record<string, string>>;
  /** Runs after stale leftovers are removed and before the container starts: fill its volumes. */
  prepare?: (volume: (suffix: string) => string) => Promise<void>;
}

export interface ContainerProxy {
  name: string;
  daemon: Daemon;
  log: ProxyLog;
  port: number;
  /** For a client's proxy setting: `http://127.0.0.1:PORT`. */
  url: string;
  /** A directory holding the CA the container serves at /ca.crt, for `--cert-dir` style flags. */
  caCertDir: string;
  /** `podman stop --time T` (SIGTERM, SIGKILL after T s); resolves with how long it took and the exit. */
  stop(graceSeconds: number): Promise<{ ms: number; exit: Exit; exitCode: number }>;
}

/** A port nothing listens on now: the health check must be able to find it from the config. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** podman with the world's client environment (no proxy variables: podman would pass them in). */
export function podman(world: World, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return run('podman', args, { env: world.clientEnv({ proxy: false }), timeoutMs });
}

/** Removes the container and its volumes, whatever state a crashed run left them in. */
export async function removeContainer(world: World, name: string, volumes: readonly string[]): Promise<void> {
  await podman(world, ['rm', '--force', '--volumes', '--time', '0', name]);
  for (const volume of [`${name}-ca`, ...volumes.map((suffix) => `${name}-${suffix}`)])
    await podman(world, ['volume', 'rm', '--force', volume]);
}

export async function startContainer(world: World, options: ContainerOptions): Promise<ContainerProxy> {
  const { name } = options;
  const port = await freePort();
  const volumes = { ca: '/ca', ...options.volumes };
  await removeContainer(world, name, Object.keys(volumes));
  world.defer(() => removeContainer(world, name, Object.keys(volumes)));
  await options.prepare?.((suffix) => `${name}-${suffix}`);
  const args = [
    'run',
    '--name',
    name,
    '--network',
    'host',
    // As Kubernetes runs it (readOnlyRootFilesystem): the proxy writes only to its volumes.
    '--read-only',
    // podman's rootful default rlimits need CAP_SYS_RESOURCE, which these machines lack.
    '--ulimit',
    'nofile=20000:20000',
    '--ulimit',
    'nproc=32768:32768',
    '--env',
    `PULLTHROUGH_LISTEN=127.0.0.1:${port}`,
    ...Object.entries(options.env ?? {}).flatMap(([key, value]) => ['--env', `${key}=${value}`]),
    ...Object.entries(volumes).flatMap(([suffix, path]) => ['--volume', `${name}-${suffix}:${path}`]),
    ...Object.entries(options.files ?? {}).flatMap(([from, to]) => ['--volume', `${from}:${to}:ro`]),
    IMAGE,
  ];
  // Attached (no -d): the container's stdout is this process's, and it exits with the container.
  const daemon = await world.processes.start(name, 'podman', args, {
    env: world.clientEnv({ proxy: false }),
    stdout: 'pipe',
  });
  const log = new ProxyLog();
  const stdout = daemon.child.stdout;
  if (stdout === null) throw new Error('podman run stdout is not a pipe');
  createInterface({ input: stdout }).on('line', (text) => {
    try {
      log.push(JSON.parse(text) as LogLine);
    } catch {
      log.push({ msg: '(not json)', text });
    }
  });
  void daemon.exited.then((exit) => log.close(`container exited (${describe(exit)})`));
  try {
    await log.waitForLine((line) => line.msg === 'listening', { timeoutMs: 60_000 });
  } catch (error) {
    throw new Error(`${name} did not start: ${(error as Error).message}\npodman:\n${daemon.logTail()}`);
  }
  const url = `http://127.0.0.1:${port}`;
  // As a user would: the CA from the proxy's own page.
  const response = await fetch(`${url}/ca.crt`);
  if (!response.ok) throw new Error(`GET ${url}/ca.crt: ${response.status}`);
  const caCertDir = join(world.mkdir(name), 'trust');
  mkdirSync(caCertDir, { recursive: true });
  writeFileSync(join(caCertDir, 'ca.crt'), await response.text());
  return {
    name,
    daemon,
    log,
    port,
    url,
    caCertDir,
    async stop(graceSeconds) {
      const started = performance.now();
      await runOk('podman', ['stop', '--time', String(graceSeconds), name], {
        env: world.clientEnv({ proxy: false }),
        timeoutMs: (graceSeconds + 30) * 1000,
      });
      const exit = await daemon.exited;
      const ms = performance.now() - started;
      const state = await podman(world, ['inspect', '--format', '{{.State.ExitCode}}', name]);
      if (state.code !== 0) throw new Error(failure(state));
      return { ms, exit, exitCode: Number(state.stdout.trim()) };
    },
  };
}
