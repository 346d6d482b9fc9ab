// Rootful podman with private configuration: CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and
// CONTAINERS_REGISTRIES_CONF point into the world (vfs storage, runroot, tmp dir, events log),
// so nothing under /etc/containers or /var/lib/containers is changed. See real-clients.md §6.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, type RunResult } from '../processes.ts';
import type { ProxySetting, World } from '../world.ts';

export interface Podman {
  run(args: readonly string[], options: { proxy: ProxySetting }): Promise<RunResult>;
}

/** `registries`: more registries.conf text (e.g. mirror entries); `name`: its directory in the world. */
export function setupPodman(world: World, options: { registries?: string; name?: string } = {}): Podman {
  const dir = world.mkdir(options.name ?? 'podman');
  const toml = (value: string): string => JSON.stringify(value);
  const containersConf = join(dir, 'containers.conf');
  writeFileSync(
    containersConf,
    [
      '[containers]',
      'netns = "host"',
      // podman's rootful defaults need CAP_SYS_RESOURCE, which this machine does not give.
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      '[engine]',
      'runtime = "runc"', // crun refuses hybrid cgroups
      'cgroup_manager = "cgroupfs"', // no systemd
      'events_logger = "file"',
      `events_logfile_path = ${toml(join(dir, 'events.log'))}`,
      `tmp_dir = ${toml(join(dir, 'tmp'))}`,
      `volume_path = ${toml(join(dir, 'volumes'))}`,
      '',
    ].join('\n'),
  );
  const storageConf = join(dir, 'storage.conf');
  writeFileSync(
    storageConf,
    [
      '[storage]',
      'driver = "vfs"',
      `graphroot = ${toml(join(dir, 'storage'))}`,
      `runroot = ${toml(join(dir, 'run'))}`,
      '',
    ].join('\n'),
  );
  const registriesConf = join(dir, 'registries.conf');
  writeFileSync(registriesConf, `unqualified-search-registries = []\n${options.registries ?? ''}`);
  const env = (proxy: ProxySetting): NodeJS.ProcessEnv => ({
    ...world.clientEnv({ proxy }),
    CONTAINERS_CONF: containersConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
  });
  // podman pull leaves nothing running; `system reset`-style cleanup is the world dir's removal.
  return {
    run: (args, { proxy }) => run('podman', args, { env: env(proxy), timeoutMs: 120_000 }),
  };
}
