// The programs the benchmarks drive (nginx as the reference server and upstream, squid as the
// reference tunnelling proxy, curl as the client; distribution's registry as upstream and
// reference mirror, skopeo as the image client, redis-server for the replicas), installed from
// Debian when missing and we are root. Starts nothing: a temporary policy-rc.d keeps the packages from starting services.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';

/** Binary → Debian package that ships it. */
const NEEDED: Readonly<Record<string, string>> = {
  '/usr/sbin/nginx': 'nginx-light',
  '/usr/bin/curl': 'curl',
  '/usr/bin/docker-registry': 'docker-registry',
  '/usr/bin/skopeo': 'skopeo',
  '/usr/sbin/squid': 'squid',
  '/usr/bin/redis-server': 'redis-server',
};
const POLICY_RC_D = '/usr/sbin/policy-rc.d';

function sh(cmd: string, args: readonly string[]): void {
  const result = spawnSync(cmd, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
  });
  if (result.status !== 0)
    throw new Error(`\`${cmd} ${args.join(' ')}\` failed: ${result.error?.message ?? result.stderr.trim()}`);
}

export function ensureDeps(): void {
  const missing = Object.keys(NEEDED).filter((bin) => !existsSync(bin));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')} and not root to install them`);
  const packages = [...new Set(missing.map((bin) => NEEDED[bin]!))];
  process.stderr.write(`bench: installing ${packages.join(' ')}\n`);
  const ownPolicy = !existsSync(POLICY_RC_D);
  if (ownPolicy)
    writeFileSync(POLICY_RC_D, '#!/bin/sh\n# pullthrough-bench: start no services\nexit 101\n', {
      mode: 0o755,
    });
  try {
    sh('apt-get', ['update']);
    sh('apt-get', ['install', '-y', '--no-install-recommends', ...packages]);
  } finally {
    if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
  }
  const still = missing.filter((bin) => !existsSync(bin));
  if (still.length > 0)
    throw new Error(`installed ${packages.join(' ')} but still missing ${still.join(', ')}`);
}
