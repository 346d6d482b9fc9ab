// podman (rootful) as a client of the image scenarios: `podman pull` of a `registry/repo:tag`
// into a private storage root, straight to a registry or through pullthrough (HTTPS_PROXY), with
// private containers.conf, storage.conf and registries.conf so nothing under /etc/containers or
// /var/lib/containers is used (real-clients.md §6). Unlike skopeo into `dir:`, a pull decompresses
// and unpacks every layer and checks its diff ID: that work is in every timed pull, on both sides.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A pull of a few hundred MiB takes seconds; a stuck one should fail its row, not hang the bench. */
const TIMEOUT_MS = 300_000;

export interface Podman {
  /**
   * Pulls `reference` (`host:port/repo:tag`) trusting the CAs in `certDir` (a directory of `*.crt`
   * files), through `proxy` when given; resolves to the wall time in seconds. The storage must be
   * empty first (`clear`), so that every blob is fetched.
   */
  pull(options: { reference: string; certDir: string; proxy?: string }): Promise<number>;
  /** Removes every image and its layers (untimed), so that the next pull fetches everything again. */
  clear(): Promise<void>;
  /** Removes the images and the directory; leaves no mount behind. */
  close(): Promise<void>;
}

/** Runs `command` to its exit; on timeout kills that one child (by its PID) and rejects. */
async function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    if (code !== 0)
      throw new Error(
        `${command} ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`}): ${stderr.trim()}`,
      );
  } finally {
    clearTimeout(timer);
  }
}

/** The private configuration files; `toml` quotes a path. */
async function writeConfig(dir: string, root: string, runroot: string): Promise<NodeJS.ProcessEnv> {
  const toml = (value: string): string => JSON.stringify(value);
  const file = async (name: string, lines: readonly string[]) => {
    const at = path.join(dir, name);
    await writeFile(at, `${lines.join('\n')}\n`);
    return at;
  };
  const home = path.join(dir, 'home');
  await mkdir(home, { recursive: true });
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: home,
    // podman insists that the auth file exists; an empty one means "no credentials".
    REGISTRY_AUTH_FILE: await file('auth.json', ['{"auths":{}}']),
    NO_PROXY: '',
    no_proxy: '',
    CONTAINERS_CONF: await file('containers.conf', [
      '[engine]',
      // Only what a pull reads; `podman run` would need more (real-clients.md §6).
      'cgroup_manager = "cgroupfs"', // no systemd here
      'events_logger = "file"',
      `events_logfile_path = ${toml(path.join(dir, 'events.log'))}`,
      `tmp_dir = ${toml(path.join(dir, 'tmp'))}`,
    ]),
    // overlay, not vfs: vfs stores each layer as a full copy of its parent plus its own files,
    // so 10 layers would write 5.5 times the image's bytes and bury the network in disk copies.
    CONTAINERS_STORAGE_CONF: await file('storage.conf', [
      '[storage]',
      'driver = "overlay"',
      `graphroot = ${toml(root)}`,
      `runroot = ${toml(runroot)}`,
    ]),
    CONTAINERS_REGISTRIES_CONF: await file('registries.conf', ['unqualified-search-registries = []']),
  };
}

/** Unmounts anything left under `dir` (a pull mounts nothing; a killed podman might). */
async function unmountUnder(dir: string): Promise<void> {
  const points = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point.startsWith(`${dir}/`))
    .reverse(); // innermost first
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
  for (const point of points) await run('umount', ['--lazy', point], env);
}

/** A podman with its own configuration and storage under `dir` (created, and removed by `close`). */
export async function makePodman(dir: string): Promise<Podman> {
  const root = path.join(dir, 'root');
  await mkdir(dir, { recursive: true });
  // podman refuses a runroot longer than 50 characters: inside `dir` when that is short enough
  // (removed with the rest whatever happens), else a short one of its own.
  const inside = path.join(dir, 'run');
  const runroot = inside.length <= 50 ? inside : await mkdtemp('/tmp/podman-run-');
  const env = await writeConfig(dir, root, runroot);
  const policy = path.join(dir, 'policy.json');
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const global = ['--root', root, '--runroot', runroot, '--storage-driver', 'overlay'];
  const clear = () => run('podman', [...global, 'rmi', '--all', '--force'], env);
  return {
    async pull({ reference, certDir, proxy }) {
      const args = [...global, 'pull', '--quiet', '--signature-policy', policy, '--cert-dir', certDir];
      const started = performance.now();
      await run('podman', [...args, reference], {
        ...env,
        ...(proxy === undefined ? {} : { HTTPS_PROXY: proxy, https_proxy: proxy }),
      });
      return (performance.now() - started) / 1000;
    },
    clear,
    async close() {
      // The storage goes with the directory anyway; a failed rmi must not hide why the run failed.
      await clear().catch(() => undefined);
      for (const at of [dir, runroot]) {
        await unmountUnder(at);
        await rm(at, { recursive: true, force: true });
      }
    },
  };
}
