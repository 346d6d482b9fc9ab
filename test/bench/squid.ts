// squid as the reference tunnelling proxy: a foreground child (-N) on a free loopback port with
// a minimal config in the run's directory: no caching, clients on loopback only, CONNECT only to
// the ports it is given, no DNS beyond loopback, its pid file and log beside the config.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { withChildren } from './cpu.ts';
import { freePort, listening } from './ports.ts';

export interface Squid {
  /** `http://127.0.0.1:<port>`, for curl's --proxy. */
  readonly url: string;
  /** The process and its helpers, for CPU accounting. */
  pids(): number[];
  stop(): Promise<void>;
}

export async function startSquid(options: { dir: string; connectPorts: readonly number[] }): Promise<Squid> {
  const dir = path.join(options.dir, 'squid');
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  // squid drops to its own user after reading this; it writes the pid file before that.
  const conf = `
http_port 127.0.0.1:${port}
visible_hostname bench-squid
acl bench_ports port ${options.connectPorts.join(' ')}
http_access deny CONNECT !bench_ports
http_access allow localhost
http_access deny all
cache deny all
cache_mem 0 MB
pid_filename ${dir}/squid.pid
access_log none
cache_store_log none
cache_log /dev/null
coredump_dir none
netdb_filename none
pinger_enable off
dns_nameservers 127.0.0.1
shutdown_lifetime 0 seconds
`;
  const confFile = path.join(dir, 'squid.conf');
  const logFile = path.join(dir, 'squid.log');
  await writeFile(confFile, conf);
  const child = spawn('/usr/sbin/squid', ['-N', '-d', '1', '-f', confFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = createWriteStream(logFile);
  child.stderr.pipe(log);
  await once(child, 'spawn');
  const exited = once(child, 'exit');
  const why = async () =>
    `squid exited (${String(child.exitCode ?? child.signalCode)}): ${await readFile(logFile, 'utf8').catch(() => '')}`;
  try {
    await listening(port, child, why);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pids: () => withChildren(child.pid!),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM'); // shutdown_lifetime 0: it closes its connections and exits
        await exited;
      }
    },
  };
}
