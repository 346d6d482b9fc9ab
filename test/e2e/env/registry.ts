// The upstream: a distribution registry (`docker-registry serve`, Debian's 2.8) instance per
// address, over TLS with the throwaway server certificate; instances may share a storage directory.
// An instance can be stopped (by its PID) and started again on the same address, to take the
// upstream away from the proxy. Its own log says what it served (`servedRequests`); `mark()`
// makes sure that log is complete up to now. With `tokenAuth` it wants bearer tokens from a token
// server (distribution's `auth.token`), and its own probes carry one.
import { request } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { completedResponses, type CompletedResponse } from '../../helpers/distribution-log.ts';
import type { Pki } from './pki.ts';
import type { Daemon, Exit, Processes } from './processes.ts';
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
  tokenAuth?: TokenAuthOptions;
}

/** distribution's `auth.token` settings, and a header for the probes this module sends. */
export interface TokenAuthOptions {
  realm: string;
  service: string;
  issuer: string;
  /** PEM file of the certificates whose keys may sign tokens. */
  rootCertBundle: string;
  /** `Bearer …` for `GET /v2/`: readiness and `mark()` (the registry logs only 2xx/3xx answers). */
  authorization(): string;
}

export interface Registry {
  name: string;
  /** `https://NAME` (or `https://NAME:PORT`). */
  url: string;
  /** The running instance; a new one after `start()`. */
  readonly daemon: Daemon;
  /** Stops the instance by its PID (SIGTERM); its address then refuses connections. */
  stop(): Promise<Exit>;
  /** Starts it again (same address, config, storage and log file); resolves once `/v2/` answers 200. */
  start(): Promise<void>;
  /**
   * Sends `GET /v2/?e2e-mark=N` straight to this instance (not through the proxy) and waits until
   * its log shows it, so every request it completed before is in the log too. Resolves to
   * `servedRequests(this).length` at that point: slice between two marks to get what it served
   * in between.
   */
  mark(): Promise<number>;
}

/** The query that `Registry.mark()` sends; its requests are left out of `servedRequests`. */
const MARK_QUERY = 'e2e-mark=';

/** GET https://NAME/v2/ with the throwaway CA trusted: resolves to the status code. */
export function probeV2(
  name: string,
  port: number,
  ca: string,
  path = '/v2/',
  authorization?: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = authorization === undefined ? {} : { authorization };
    const req = request({ host: name, port, path, ca, headers, timeout: 2_000, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

/** One request the registry answered. */
export type UpstreamRequest = CompletedResponse;

/**
 * The requests this registry has answered, from its own log ("response completed" lines), across
 * restarts, without the ones `mark()` sent.
 */
export function servedRequests(registry: Registry): UpstreamRequest[] {
  return readServed(registry.daemon.logFile).filter((served) => !served.uri.includes(MARK_QUERY));
}

function readServed(logFile: string): UpstreamRequest[] {
  return completedResponses(readFileSync(logFile, 'utf8'));
}

export async function startRegistry(options: RegistryOptions): Promise<Registry> {
  const { name, ip, port, tokenAuth } = options;
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
      ...(tokenAuth === undefined
        ? {}
        : {
            auth: {
              token: {
                realm: tokenAuth.realm,
                service: tokenAuth.service,
                issuer: tokenAuth.issuer,
                rootcertbundle: tokenAuth.rootCertBundle,
              },
            },
          }),
    }),
  );
  const authorization = (): string | undefined => tokenAuth?.authorization();
  const ca = readFileSync(options.pki.caCrt, 'utf8');
  const launch = async (): Promise<Daemon> => {
    const started = await options.processes.start(
      `registry-${name}-${port}`,
      'docker-registry',
      ['serve', cfg],
      { env: options.env },
    );
    await poll(
      async () => ((await probeV2(name, port, ca, '/v2/', authorization())) === 200 ? true : undefined),
      {
        what: `registry ${name} on ${addr}`,
        timeoutMs: 15_000,
        abort: started.gone,
      },
    );
    return started;
  };
  let daemon = await launch();
  let marks = 0;
  const registry: Registry = {
    name,
    url: port === 443 ? `https://${name}` : `https://${name}:${port}`,
    get daemon() {
      return daemon;
    },
    stop: () => daemon.stop(),
    async start() {
      if (daemon.exit === undefined) throw new Error(`registry ${name} is already running`);
      daemon = await launch();
    },
    async mark() {
      const uri = `/v2/?${MARK_QUERY}${++marks}`;
      const status = await probeV2(name, port, ca, uri, authorization());
      if (status !== 200) throw new Error(`registry ${name}: GET ${uri} answered ${status}`);
      // The response can reach us a moment before the registry writes its log line.
      await poll(
        () => Promise.resolve(readServed(daemon.logFile).some((served) => served.uri === uri) || undefined),
        { what: `registry ${name} to log GET ${uri}`, timeoutMs: 5_000, intervalMs: 10 },
      );
      return servedRequests(registry).length;
    },
  };
  return registry;
}
