// nginx (nginx-light) on loopback over TLS, in two roles with the same settings: the reference
// server the figures are compared with (no access log), and the upstream registry that
// pullthrough fills its cache from (an access log of body bytes, to count what upstream sent).
// Both serve the blob directory at /v2/<name>/blobs/<digest>, HTTP/1.1 only.
//
// TLS without kTLS: nginx ignores `sendfile` on TLS connections (it reads the file and
// SSL_write()s it), so `sendfile on` is left as nginx's usual setting and changes nothing here.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { withChildren } from './cpu.ts';

export interface Nginx {
  /** `127.0.0.1:<port>` of the reference server. */
  readonly reference: string;
  /** `127.0.0.1:<port>` of the upstream registry. */
  readonly upstream: string;
  /** Where the upstream access log ends now; pass it to `upstreamBytes` later. */
  upstreamLogMark(): Promise<number>;
  /** Body bytes the upstream sent for GETs of `digest` since `mark`. */
  upstreamBytes(mark: number, digest: string): Promise<number>;
  /** The master and its workers, for CPU accounting. */
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * A port free right now. nginx cannot report a port 0 it was given, so one is picked here; on
 * loopback, with nothing else binding, the window between close and nginx's bind is harmless.
 */
async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function listening(port: number, child: ChildProcess, errorLog: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null)
      throw new Error(
        `nginx exited (${child.exitCode}): ${await readFile(errorLog, 'utf8').catch(() => '')}`,
      );
    const socket = net.connect(port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      return;
    } catch {
      await delay(25); // nginx has no readiness signal in the foreground but its port
    } finally {
      socket.destroy();
    }
  }
  throw new Error(`nginx did not listen on ${port}`);
}

export async function startNginx(options: {
  dir: string;
  blobDir: string;
  cert: string;
  key: string;
}): Promise<Nginx> {
  const { dir } = options;
  const [referencePort, upstreamPort] = [await freePort(), await freePort()];
  const accessLog = path.join(dir, 'nginx-upstream-access.log');
  const errorLog = path.join(dir, 'nginx-error.log');
  const server = (port: number, log: string) => `
    server {
      listen 127.0.0.1:${port} ssl;
      ${log}
      location ~ "^/v2/.+/blobs/(sha256:[0-9a-f]{64})$" {
        alias ${options.blobDir}/$1;
      }
    }`;
  const conf = `
daemon off;
master_process on;
user root;
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${errorLog} warn;
events { worker_connections 1024; }
http {
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 60s;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  ssl_certificate ${options.cert};
  ssl_certificate_key ${options.key};
  ssl_protocols TLSv1.2 TLSv1.3;
  log_format bytes '$request_method $uri $status $body_bytes_sent';
  ${server(referencePort, 'access_log off;')}
  ${server(upstreamPort, `access_log ${accessLog} bytes;`)}
}
`;
  const confFile = path.join(dir, 'nginx.conf');
  await writeFile(confFile, conf);
  await writeFile(accessLog, '');
  const child = spawn('/usr/sbin/nginx', ['-c', confFile, '-p', dir, '-e', errorLog], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await once(child, 'spawn');
  const exited = once(child, 'exit');
  try {
    await listening(referencePort, child, errorLog);
    await listening(upstreamPort, child, errorLog);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    reference: `127.0.0.1:${referencePort}`,
    upstream: `127.0.0.1:${upstreamPort}`,
    upstreamLogMark: async () => (await stat(accessLog)).size,
    async upstreamBytes(mark, digest) {
      const text = (await readFile(accessLog)).subarray(mark).toString('utf8');
      let bytes = 0;
      for (const line of text.split('\n')) {
        const [method, uri, , sent] = line.split(' ');
        if (method === 'GET' && uri?.endsWith(`/blobs/${digest}`)) bytes += Number(sent);
      }
      return bytes;
    },
    pids: () => withChildren(child.pid!),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGQUIT'); // graceful: the master stops its workers
      await exited;
    },
  };
}
