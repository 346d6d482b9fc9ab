// A standalone dockerd 20.10 (real-clients.md §6): data root, exec root, pidfile, socket, config
// file and trust key all in the world; no iptables, no bridge. Its proxy comes from the daemon's
// environment at start (20.10 has no `proxies` key), so it starts after the proxy it will use.
// CAs come from /etc/docker/certs.d/HOST/, re-read on every pull. It gets a containerd of its own
// (started here) because the one dockerd would spawn itself creates /opt/containerd.
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Daemon, RunResult } from '../processes.ts';
import { run } from '../processes.ts';
import { poll } from '../wait.ts';
import type { ProxySetting, World } from '../world.ts';
import { startContainerd, type Containerd } from './containerd.ts';

export const DOCKER_CERTS_D = '/etc/docker/certs.d';

export interface Dockerd {
  daemon: Daemon;
  /** `unix:///…/docker.sock` */
  host: string;
  /**
   * dockerd's own containerd. Besides running containers, dockerd 20.10 keeps the manifests it
   * pulled in its content store (namespace `moby`) and reads them from there on the next pull.
   */
  containerd: Containerd;
  /** The docker CLI against this daemon, with the world's HOME (no ~/.docker/config.json). */
  docker(args: readonly string[]): Promise<RunResult>;
}

function ping(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.once('end', () => resolve(`${res.statusCode ?? 0} ${body}`));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

export async function startDockerd(world: World, options: { proxy: ProxySetting }): Promise<Dockerd> {
  const dir = world.mkdir('dockerd');
  const socket = join(dir, 'docker.sock');
  const configFile = join(dir, 'daemon.json');
  // The trust key would go to /etc/docker/key.json otherwise; 20.10 has no flag for it, only this key.
  writeFileSync(configFile, JSON.stringify({ 'deprecated-key-path': join(dir, 'key.json') }));
  // clientEnv sets HTTPS_PROXY and HTTP_PROXY to the proxy (with the world's proxy credentials, if
  // any, or to the URL given) and NO_PROXY to empty.
  const env = world.clientEnv(options);
  const containerd = await startContainerd(world, 'dockerd-containerd');
  // dockerd makes its plugin socket directory there whatever --exec-root says.
  world.claimIfAbsent('/run/docker');
  const daemon = await world.processes.start(
    'dockerd',
    'dockerd',
    [
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'docker.pid'),
      '--config-file',
      configFile,
      '-H',
      `unix://${socket}`,
      '--containerd',
      containerd.address,
      '--storage-driver',
      'overlay2',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--bridge=none',
    ],
    { env },
  );
  world.defer(() => daemon.stop(30_000));
  await poll(async () => ((await ping(socket)) === '200 OK' ? true : undefined), {
    what: `dockerd on ${socket}`,
    timeoutMs: 60_000,
    abort: daemon.gone,
  });
  const host = `unix://${socket}`;
  return {
    daemon,
    host,
    containerd,
    docker: (args) =>
      run('docker', ['-H', host, ...args], { env: world.clientEnv({ proxy: false }), timeoutMs: 120_000 }),
  };
}
