// The container engine that builds the image: docker (when its daemon answers), podman or
// buildah, whichever is present, behind one small interface. The flags are the ones that work
// on a machine without systemd or Docker Hub (shared notes real-clients.md §6, §11).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { capture, sh } from './run.ts';

export type EngineName = 'docker' | 'podman' | 'buildah';
export const ENGINES: readonly EngineName[] = ['docker', 'podman', 'buildah'];

export interface BuildOptions {
  context: string;
  tag: string;
  /** Build only up to this stage. */
  target?: string;
  buildArgs: Readonly<Record<string, string>>;
  /** Host file → path in the build's RUN steps (podman and buildah only). */
  mounts: Readonly<Record<string, string>>;
}

export interface Engine {
  name: EngineName;
  /** Whether `ref` is in the engine's local store. */
  has(ref: string): Promise<boolean>;
  /** Tries to pull `ref`; false when it cannot be had (no network, no such image). */
  pull(ref: string): Promise<boolean>;
  /** Makes image `ref` of a root file system tarball, with `PATH` and `CMD ["node"]` set. */
  importRootfs(tarball: string, ref: string): Promise<void>;
  build(options: BuildOptions): Promise<void>;
  /** The image's size in bytes, as the engine reports it. */
  size(ref: string): Promise<number>;
  /** Removes untagged images with this label (earlier builds); layers still in use stay. */
  prune(label: string): Promise<void>;
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function onPath(name: string): boolean {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return dir !== '';
    } catch {
      return false;
    }
  });
}

/** `wanted` if given (it must work), else the first of docker (daemon up), podman, buildah. */
export async function findEngine(wanted?: string): Promise<Engine> {
  if (wanted !== undefined && !(ENGINES as readonly string[]).includes(wanted))
    throw new Error(`unknown engine ${wanted}: one of ${ENGINES.join(', ')}`);
  const candidates = wanted === undefined ? ENGINES : [wanted as EngineName];
  for (const name of candidates) {
    if (!onPath(name)) continue;
    // A docker CLI without a daemon behind it is common (and is so on the CI machines).
    if (
      name === 'docker' &&
      (await capture('docker', ['version', '--format', '{{.Server.Version}}'])).code !== 0
    )
      continue;
    return name === 'buildah' ? buildah() : cliEngine(name);
  }
  throw new Error(
    wanted === undefined
      ? `no container engine: install podman, buildah or docker (apt-get install podman)`
      : `${wanted} is not installed${wanted === 'docker' ? ' or its daemon does not answer' : ''}`,
  );
}

/** docker and podman: the same commands, podman with the flags it needs here. */
function cliEngine(name: 'docker' | 'podman'): Engine {
  const podman = name === 'podman';
  return {
    name,
    has: async (ref) => (await capture(name, ['image', 'inspect', '--format', '{{.Id}}', ref])).code === 0,
    pull: async (ref) => (await capture(name, ['pull', ref])).code === 0,
    importRootfs: (tarball, ref) =>
      sh(name, ['import', '--change', `ENV ${PATH_ENV}`, '--change', 'CMD ["node"]', tarball, ref]),
    build: ({ context, tag, target, buildArgs, mounts }) =>
      sh(name, [
        'build',
        ...(target === undefined ? [] : ['--target', target]),
        // HEALTHCHECK is kept only in the docker format; chroot isolation needs no OCI runtime.
        ...(podman ? ['--format', 'docker', '--isolation', 'chroot'] : []),
        ...(podman ? Object.entries(mounts).map(([from, to]) => `--volume=${from}:${to}:ro`) : []),
        '--network',
        'host',
        ...Object.entries(buildArgs).map(([key, value]) => `--build-arg=${key}=${value}`),
        '--tag',
        tag,
        context,
      ]),
    size: async (ref) =>
      Number((await capture(name, ['image', 'inspect', '--format', '{{.Size}}', ref])).stdout),
    prune: async (label) => {
      await capture(name, ['image', 'prune', '--force', '--filter', `label=${label}`]);
    },
  };
}

function buildah(): Engine {
  return {
    name: 'buildah',
    has: async (ref) => (await capture('buildah', ['inspect', '--type', 'image', ref])).code === 0,
    pull: async (ref) => (await capture('buildah', ['pull', ref])).code === 0,
    async importRootfs(tarball, ref) {
      const from = await capture('buildah', ['from', 'scratch']);
      const container = from.stdout.trim();
      if (from.code !== 0 || container === '') throw new Error(`buildah from scratch failed: ${from.stderr}`);
      try {
        await sh('buildah', ['add', container, tarball, '/']);
        await sh('buildah', ['config', '--env', PATH_ENV, '--cmd', 'node', container]);
        await sh('buildah', ['commit', '--format', 'docker', container, ref]);
      } finally {
        await capture('buildah', ['rm', container]);
      }
    },
    build: ({ context, tag, target, buildArgs, mounts }) =>
      sh('buildah', [
        'bud',
        ...(target === undefined ? [] : ['--target', target]),
        '--format',
        'docker',
        '--isolation',
        'chroot',
        ...Object.entries(mounts).map(([from, to]) => `--volume=${from}:${to}:ro`),
        ...Object.entries(buildArgs).map(([key, value]) => `--build-arg=${key}=${value}`),
        '--tag',
        tag,
        context,
      ]),
    size: async (ref) => {
      // buildah says sizes only as text: "237 MB".
      const out = await capture('buildah', ['images', '--format', '{{.Size}}', ref]);
      const match = /^([\d.]+) ?([kMG]?B)$/.exec(out.stdout.trim());
      const unit = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[match?.[2] ?? 'B'] ?? 1;
      return match ? Number(match[1]) * unit : Number.NaN;
    },
    // buildah rmi --prune cannot filter: it would remove every dangling image, not only ours.
    prune: () => Promise.resolve(),
  };
}
