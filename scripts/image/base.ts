// The base image made here when the official Node image cannot be pulled: Debian bookworm from
// debootstrap (minbase, from Debian's archive) plus the Node 24 binary of the `node`
// devDependency and the host's npm, with user `node` (1000:1000) as in the official image.
// It is tagged by a hash of what goes in, so a second build reuses it.
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chownSync,
  cpSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from './engine.ts';
import { onPath } from './engine.ts';
import { capture, sh } from './run.ts';

export const BASE_REPOSITORY = 'localhost/pullthrough-base';
const SUITE = 'bookworm';
/** Debian's archive; override with DEBIAN_MIRROR (e.g. a local apt mirror). */
const MIRROR = process.env['DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';

export interface BaseInputs {
  /** The Node 24 binary (node_modules/node/bin/node). */
  node: string;
  /** The npm package directory copied beside it (the build stage runs `npm ci`). */
  npm: string;
}

export function baseInputs(repoRoot: string): BaseInputs {
  const node = join(repoRoot, 'node_modules', 'node', 'bin', 'node');
  return { node, npm: globalNpm() };
}

/** The npm running this script (npm 10 or later runs on Node 24): the build stage runs `npm ci`. */
function globalNpm(): string {
  const execPath = process.env['npm_execpath']; // set by `npm run`: …/npm/bin/npm-cli.js
  if (execPath !== undefined && execPath.endsWith(join('bin', 'npm-cli.js')))
    return join(execPath, '..', '..');
  return '/usr/lib/node_modules/npm';
}

/** `localhost/pullthrough-base:<hash>`: the hash covers the recipe (this file), Node and npm. */
export async function baseTag(inputs: BaseInputs): Promise<string> {
  const hash = createHash('sha256');
  hash.update(readFileSync(new URL(import.meta.url)));
  hash.update(`${SUITE}\0${MIRROR}\0`);
  for await (const chunk of createReadStream(inputs.node)) hash.update(chunk as Buffer);
  hash.update(readFileSync(join(inputs.npm, 'package.json')));
  return `${BASE_REPOSITORY}:${hash.digest('hex').slice(0, 16)}`;
}

/** The local base for `engine`: reused when its tag is there, made otherwise (root + debootstrap). */
export async function localBase(engine: Engine, inputs: BaseInputs): Promise<string> {
  const tag = await baseTag(inputs);
  if (await engine.has(tag)) {
    console.log(`image: base ${tag} is already there`);
    return tag;
  }
  if (process.getuid?.() !== 0) throw new Error('making a base needs root (debootstrap); or pass --base REF');
  if (!onPath('debootstrap'))
    throw new Error('making a base needs debootstrap (apt-get install debootstrap)');
  const dir = mkdtempSync(join(tmpdir(), 'pullthrough-base-'));
  try {
    const rootfs = join(dir, 'rootfs');
    await sh('debootstrap', ['--variant=minbase', SUITE, rootfs, MIRROR]);
    addNode(rootfs, inputs);
    trim(rootfs);
    // The binary must run in the new root, not just on the host.
    await sh('chroot', [rootfs, '/usr/local/bin/node', '--version']);
    await sh('chroot', [rootfs, '/usr/local/bin/npm', '--version']);
    const tarball = join(dir, 'rootfs.tar');
    await sh('tar', ['--numeric-owner', '-C', rootfs, '-cf', tarball, '.']);
    await engine.importRootfs(tarball, tag);
    return tag;
  } finally {
    await unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

function addNode(rootfs: string, inputs: BaseInputs): void {
  const local = join(rootfs, 'usr', 'local');
  cpSync(inputs.node, join(local, 'bin', 'node'));
  cpSync(inputs.npm, join(local, 'lib', 'node_modules', 'npm'), { recursive: true });
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(local, 'bin', 'npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(local, 'bin', 'npx'));
  appendFileSync(join(rootfs, 'etc', 'passwd'), 'node:x:1000:1000::/home/node:/bin/sh\n');
  appendFileSync(join(rootfs, 'etc', 'group'), 'node:x:1000:\n');
  mkdirSync(join(rootfs, 'home', 'node'), { mode: 0o755 });
  chownSync(join(rootfs, 'home', 'node'), 1000, 1000);
}

/** What a slim image leaves out: downloaded packages, package lists, docs, man pages, locales. */
function trim(rootfs: string): void {
  for (const path of [
    'var/cache/apt/archives',
    'var/lib/apt/lists',
    'usr/share/doc',
    'usr/share/man',
    'usr/share/info',
    'usr/share/locale',
  ]) {
    const full = join(rootfs, path);
    for (const entry of readdirSync(full)) {
      if (entry === 'lock' || entry === 'partial') continue;
      rmSync(join(full, entry), { recursive: true, force: true });
    }
  }
}

/** debootstrap mounts /proc and /sys in the new root; a failed run can leave them mounted. */
async function unmountUnder(dir: string): Promise<void> {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of points) await capture('umount', ['-l', point]);
}
