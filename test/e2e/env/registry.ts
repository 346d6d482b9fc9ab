// The upstream: a distribution registry (`docker-registry serve`, Debian's 2.8) instance per
// address, all sharing one storage directory, over TLS with the throwaway server certificate.
import { request } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pki } from './pki.ts';
import type { Daemon, Processes } from './processes.ts';
import { poll } from './wait.ts';

export interface RegistryOptions {
  /** The name clients use; it must resolve (through /etc/hosts) to `ip`. */
  name: string;
  ip: string;
  port: number;
  storageDir: string;
  dir: string;
  pki: Pki;
  processes: Processes;
  env: NodeJS.ProcessEnv;
}

export interface Registry {
  name: string;
  /** `https://NAME` (or `https://NAME:PORT`). */
  url: string;
  daemon: Daemon;
}

/** GET https://NAME/v2/ with the throwaway CA trusted: resolves to the status code. */
export function probeV2(name: string, port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: name, port, path: '/v2/', ca, timeout: 2_000, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

export interface UpstreamRequest {
  method: string;
  uri: string;
  status: number;
}

/** The requests this registry instance has answered, from its own log ("response completed" lines). */
export function servedRequests(registry: Registry): UpstreamRequest[] {
  return readFileSync(registry.daemon.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes('msg="response completed"'))
    .map((line) => ({
      method: /http\.request\.method=(\S+)/.exec(line)?.[1] ?? '',
      uri: /http\.request\.uri="?([^"\s]+)"?/.exec(line)?.[1] ?? '',
      status: Number(/http\.response\.status=(\d+)/.exec(line)?.[1] ?? 0),
    }));
}

export async function startRegistry(options: RegistryOptions): Promise<Registry> {
  const { name, ip, port } = options;
  const addr = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
  const cfg = join(options.dir, `registry-${name}-${port}.yml`);
  // JSON is YAML: no quoting surprises in paths.
  writeFileSync(
    cfg,
    JSON.stringify({
      version: 0.1,
      log: { level: 'info', formatter: 'text' },
      storage: {
        filesystem: { rootdirectory: options.storageDir },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: {
        addr,
        secret: 'pullthrough-e2e',
        tls: { certificate: options.pki.serverCrt, key: options.pki.serverKey },
      },
    }),
  );
  const daemon = await options.processes.start(
    `registry-${name}-${port}`,
    'docker-registry',
    ['serve', cfg],
    {
      env: options.env,
    },
  );
  const ca = readFileSync(options.pki.caCrt, 'utf8');
  await poll(async () => ((await probeV2(name, port, ca)) === 200 ? true : undefined), {
    what: `registry ${name} on ${addr}`,
    timeoutMs: 15_000,
    abort: daemon.gone,
  });
  return { name, url: port === 443 ? `https://${name}` : `https://${name}:${port}`, daemon };
}
