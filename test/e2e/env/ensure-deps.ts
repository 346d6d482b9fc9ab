// Makes sure the host programs the e2e tests drive are installed; installs the missing Debian
// packages when it can (root + apt-get). Run by `npm test` before vitest; quick when all is present.
// It does not start anything: a temporary policy-rc.d keeps package scripts from starting daemons.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Binary the tests run → Debian (bookworm) package that ships it (see shared/notes/real-clients.md §2). */
const NEEDED: Readonly<Record<string, string>> = {
  'docker-registry': 'docker-registry',
  skopeo: 'skopeo',
  podman: 'podman',
  containerd: 'containerd',
  ctr: 'containerd',
  dockerd: 'docker.io',
  runc: 'runc',
  openssl: 'openssl',
  curl: 'curl',
  // The image (npm run image makes its base with debootstrap where Docker Hub is out of reach),
  // and the deployments: compose's config check (docker-compose) and bring-up (podman-compose,
  // whose bridge network needs iptables).
  debootstrap: 'debootstrap',
  'docker-compose': 'docker-compose',
  'podman-compose': 'podman-compose',
  iptables: 'iptables',
  // The metrics exposition is checked with Prometheus's own linter (integration/metrics.test.ts).
  promtool: 'prometheus',
  // Several replicas coordinate through a real Redis (integration/cluster.test.ts starts its own).
  'redis-server': 'redis-server',
  // The dashboard (/ui/) is driven in a real browser by playwright-core (e2e/dashboard.test.ts).
  chromium: 'chromium',
};
/** Installed alongside: podman's monitor, and the CA bundle the clients' system store comes from. */
const ALSO = ['conmon', 'ca-certificates'];
const POLICY_RC_D = '/usr/sbin/policy-rc.d';

function onPath(name: string): boolean {
  // The sbin directories are searched too: dockerd and runc live there and a non-login PATH may lack them.
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function fail(message: string): never {
  console.error(`e2e deps: ${message}`);
  process.exit(1);
}

function sh(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    const why = r.error?.message ?? r.stderr.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`\`${cmd} ${args.join(' ')}\` failed (exit ${String(r.status)}): ${why}`);
  }
}

const missing = Object.keys(NEEDED).filter((bin) => !onPath(bin));
if (missing.length === 0) {
  console.log(`e2e deps: all present (${Object.keys(NEEDED).join(', ')})`);
  process.exit(0);
}
if (process.getuid?.() !== 0)
  fail(`missing ${missing.join(', ')} and not root, so cannot apt-get install them`);
if (!onPath('apt-get')) fail(`missing ${missing.join(', ')} and there is no apt-get to install them`);

function installed(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === 'install ok installed';
}

// --reinstall: a package can be installed with its binary gone; that only a reinstall brings back.
const packages = [
  ...new Set([...missing.map((bin) => NEEDED[bin] ?? bin), ...ALSO.filter((p) => !installed(p))]),
];
const ownPolicy = !existsSync(POLICY_RC_D);
if (ownPolicy)
  writeFileSync(POLICY_RC_D, '#!/bin/sh\n# pullthrough-e2e: start no services\nexit 101\n', { mode: 0o755 });
let error: unknown;
try {
  sh('apt-get', ['update']);
  sh('apt-get', ['install', '-y', '--no-install-recommends', '--reinstall', ...packages]);
} catch (e) {
  error = e;
} finally {
  if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
}
if (error instanceof Error) fail(error.message);
const still = Object.keys(NEEDED).filter((bin) => !onPath(bin));
if (still.length > 0) fail(`installed ${packages.join(' ')} but still missing ${still.join(', ')}`);
console.log(`e2e deps: installed ${packages.join(' ')} (was missing ${missing.join(', ')})`);
