// A standalone containerd 1.6 for `ctr`: its own config, root, state and sockets in the world,
// the CRI plugin disabled (real-clients.md §6). In 1.6 `ctr images pull` resolves and fetches in
// the ctr process itself, so the proxy variables and the CA go to ctr, not to the daemon.
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Daemon, RunResult } from '../processes.ts';
import { run } from '../processes.ts';
import { poll } from '../wait.ts';
import type { ProxySetting, World } from '../world.ts';

export interface Containerd {
  daemon: Daemon;
  address: string;
  /** `ctr -a ADDRESS -n NAMESPACE ARGS…`; the namespace is `e2e` unless given (dockerd uses `moby`). */
  ctr(args: readonly string[], options: { proxy: ProxySetting; namespace?: string }): Promise<RunResult>;
}

/** `name` names its directory and log, so dockerd can have an instance of its own. */
export async function startContainerd(world: World, name = 'containerd'): Promise<Containerd> {
  const dir = world.mkdir(name);
  const address = join(dir, 'containerd.sock');
  const toml = (value: string): string => JSON.stringify(value);
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = ${toml(join(dir, 'root'))}`,
      `state = ${toml(join(dir, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${toml(address)}`,
      '[ttrpc]',
      `  address = ${toml(`${address}.ttrpc`)}`,
      '[debug]',
      `  address = ${toml(join(dir, 'debug.sock'))}`,
      // The default is /opt/containerd, outside the world.
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${toml(join(dir, 'opt'))}`,
      '',
    ].join('\n'),
  );
  const daemon = await world.processes.start(name, 'containerd', ['--config', config], {
    env: world.clientEnv({ proxy: false }),
  });
  world.defer(() => daemon.stop());
  await poll(
    () =>
      new Promise<true>((resolve, reject) => {
        const socket = connect(address, () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', reject);
      }),
    { what: `containerd socket ${address}`, timeoutMs: 20_000, abort: daemon.gone },
  );
  return {
    daemon,
    address,
    ctr: (args, { proxy, namespace = 'e2e' }) =>
      run('ctr', ['-a', address, '-n', namespace, ...args], {
        env: world.clientEnv({ proxy }),
        timeoutMs: 120_000,
      }),
  };
}
