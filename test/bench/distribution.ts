// The distribution registry (Debian's `docker-registry`, 2.8) on loopback over TLS, in the two
// roles of the skopeo scenarios: the upstream the images are pushed to, and the reference
// pull-through cache (`proxy.remoteurl`) in front of that upstream. Each instance listens on its
// own 127.0.0.x under a name from /etc/hosts, is stopped by its PID, and can be restarted with
// an empty storage directory (a cold mirror). Its own log says what it served: `mark()` and
// `blobBytes()` count the body bytes of blob GETs in between.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { completedResponses } from '../helpers/distribution-log.ts';

export interface DistributionOptions {
  /** The name clients use; /etc/hosts must resolve it to `ip`. */
  readonly name: string;
  readonly ip: string;
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  /** The CA that `cert` chains to: for this module's own probes. */
  readonly caFile: string;
  /** A pull-through cache of this `https://` registry, trusting the CAs in `trustFile`. */
  readonly proxy?: { readonly remoteUrl: string; readonly trustFile: string };
}

export interface Distribution {
  /** `name:port`, as in image references. */
  readonly authority: string;
  readonly pid: number;
  /** Where its log stands now, complete up to here: pass to `blobBytes` later. */
  mark(): Promise<number>;
  /** Body bytes of the blob GETs of `repository` it answered between two marks. */
  blobBytes(repository: string, from: number, to: number): Promise<number>;
  /** Stops it, empties its storage and starts it again on the same address. */
  restartEmpty(): Promise<void>;
  stop(): Promise<void>;
}

/** A port free on `ip` right now; the registry cannot report a port 0 it was given. */
async function freePort(ip: string): Promise<number> {
  const server = net.createServer().listen(0, ip);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** GET `https://name:port<uri>` straight to the registry; resolves to the status code. */
function probe(name: string, port: number, ca: string, uri: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: name, port, path: uri, ca, timeout: 2_000, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

const MARK_QUERY = 'bench-mark=';

export async function startDistribution(options: DistributionOptions): Promise<Distribution> {
  const { name, ip, dir } = options;
  await mkdir(dir, { recursive: true });
  const port = await freePort(ip);
  const storage = path.join(dir, 'storage');
  const configFile = path.join(dir, 'config.json');
  const logFile = path.join(dir, 'registry.log');
  // JSON is YAML: no quoting surprises in paths.
  await writeFile(
    configFile,
    JSON.stringify({
      version: 0.1,
      log: { level: 'info', formatter: 'text', accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: storage },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: {
        addr: `${ip}:${port}`,
        secret: 'pullthrough-bench',
        tls: { certificate: options.cert, key: options.key },
      },
      ...(options.proxy === undefined ? {} : { proxy: { remoteurl: options.proxy.remoteUrl } }),
    }),
  );
  const ca = await readFile(options.caFile, 'utf8');
  // Go reads SSL_CERT_FILE instead of the system roots: the mirror trusts the upstream's CA.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    ...(options.proxy === undefined ? {} : { SSL_CERT_FILE: options.proxy.trustFile }),
  };

  let child: ChildProcess;
  let exited: Promise<unknown>;
  const launch = async (): Promise<void> => {
    await mkdir(storage, { recursive: true });
    const fd = openSync(logFile, 'a');
    try {
      child = spawn('docker-registry', ['serve', configFile], { env, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    exited = once(child, 'exit');
    await once(child, 'spawn');
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`docker-registry for ${name} exited; see ${logFile}`);
      if ((await probe(name, port, ca, '/v2/').catch(() => 0)) === 200) return;
      if (attempt === 300) throw new Error(`docker-registry for ${name} did not answer on ${ip}:${port}`);
      await delay(25); // no readiness signal but its port
    }
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  try {
    await launch();
  } catch (error) {
    await stop();
    throw error;
  }

  let marks = 0;
  const readServed = async () => completedResponses(await readFile(logFile, 'utf8'));
  return {
    authority: `${name}:${port}`,
    get pid() {
      return child.pid!;
    },
    async mark() {
      const uri = `/v2/?${MARK_QUERY}${++marks}`;
      const status = await probe(name, port, ca, uri);
      if (status !== 200) throw new Error(`${name}: GET ${uri} answered ${status}`);
      // The answer can reach us a moment before the registry writes its log line; lines come in
      // the order requests complete, so every earlier request is in the log once this one is.
      for (let attempt = 0; attempt < 500; attempt++) {
        const lines = await readServed();
        const index = lines.findIndex((line) => line.uri === uri);
        if (index >= 0) return index + 1;
        await delay(10);
      }
      throw new Error(`${name} did not log GET ${uri}`);
    },
    async blobBytes(repository, from, to) {
      const blob = new RegExp(`^/v2/${repository}/blobs/sha256:[0-9a-f]{64}$`);
      return (await readServed())
        .slice(from, to)
        .filter((line) => line.method === 'GET' && blob.test(line.uri))
        .reduce((sum, line) => sum + line.written, 0);
    },
    async restartEmpty() {
      await stop();
      await rm(storage, { recursive: true, force: true });
      await launch();
    },
    stop,
  };
}
