// nginx (nginx-light) on loopback over TLS, in two roles with the same settings: the reference
// server the figures are compared with (no access log), and the upstream registry that
// pullthrough fills its cache from (an access log of body bytes, to count what upstream sent).
// Both serve the blob directory at /v2/<name>/blobs/<digest>, the manifest directory at
// /v2/<name>/manifests/<digest> (OCI manifest type, Docker-Content-Digest) and `{}` at /v2/,
// HTTP/1.1 only. The upstream role also listens on other loopback addresses (127.0.0.2, …),
// each with its own leaf: hosts a pullthrough has never seen (scenarios/first-request.ts).
//
// TLS without kTLS: nginx ignores `sendfile` on TLS connections (it reads the file and
// SSL_write()s it), so `sendfile on` is left as nginx's usual setting and changes nothing here.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { withChildren } from './cpu.ts';
import { freePort, listening } from './ports.ts';

export interface Nginx {
  /** `127.0.0.1:<port>` of the reference server. */
  readonly reference: string;
  /** `127.0.0.1:<port>` of the upstream registry. */
  readonly upstream: string;
  /**
   * The upstream registry again, sending each response at PACED_RATE at most: an upstream slower
   * than the proxy, as a registry across the internet is.
   */
  readonly paced: string;
  /** The upstream registry again at `<alias address>:<same port>`, one per alias given. */
  readonly aliases: readonly string[];
  /** Where the upstream access log ends now; pass it to `upstreamBytes` later. */
  upstreamLogMark(): Promise<number>;
  /** Body bytes the upstream sent for GETs of `digest` since `mark`. */
  upstreamBytes(mark: number, digest: string): Promise<number>;
  /** The master and its workers, for CPU accounting. */
  pids(): number[];
  stop(): Promise<void>;
}

/** Bytes/s per connection of the paced upstream (nginx `limit_rate`). */
export const PACED_RATE = 100 * 2 ** 20;

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

export async function startNginx(options: {
  dir: string;
  blobDir: string;
  manifestDir: string;
  cert: string;
  key: string;
  /** Other loopback addresses the upstream role listens on, each with its own certificate. */
  aliases: ReadonlyArray<TlsFiles & { readonly address: string }>;
}): Promise<Nginx> {
  const { dir } = options;
  const [referencePort, upstreamPort, pacedPort] = [await freePort(), await freePort(), await freePort()];
  const accessLog = path.join(dir, 'nginx-upstream-access.log');
  const errorLog = path.join(dir, 'nginx-error.log');
  const server = (address: string, port: number, log: string, tls?: TlsFiles) => `
    server {
      listen ${address}:${port} ssl;
      ${tls ? `ssl_certificate ${tls.cert}; ssl_certificate_key ${tls.key};` : ''}
      ${log}
      location = /v2/ {
        default_type application/json;
        return 200 '{}';
      }
      location ~ "^/v2/.+/blobs/(sha256:[0-9a-f]{64})$" {
        alias ${options.blobDir}/$1;
      }
      location ~ "^/v2/.+/manifests/(sha256:[0-9a-f]{64})$" {
        alias ${options.manifestDir}/$1;
        types { }
        default_type application/vnd.oci.image.manifest.v1+json;
        add_header Docker-Content-Digest $1;
      }
    }`;
  const upstreamLog = `access_log ${accessLog} bytes;`;
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
  keepalive_requests 1000000; # the request-rate reference keeps its 64 connections all run
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  ssl_certificate ${options.cert};
  ssl_certificate_key ${options.key};
  ssl_protocols TLSv1.2 TLSv1.3;
  log_format bytes '$request_method $uri $status $body_bytes_sent';
  ${server('127.0.0.1', referencePort, 'access_log off;')}
  ${server('127.0.0.1', upstreamPort, upstreamLog)}
  ${server('127.0.0.1', pacedPort, `access_log off; limit_rate ${PACED_RATE};`)}
  ${options.aliases.map((alias) => server(alias.address, upstreamPort, upstreamLog, alias)).join('\n')}
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
  const why = async () =>
    `nginx exited (${String(child.exitCode)}): ${await readFile(errorLog, 'utf8').catch(() => '')}`;
  try {
    await listening(referencePort, child, why);
    await listening(upstreamPort, child, why);
    await listening(pacedPort, child, why);
    for (const alias of options.aliases) await listening(upstreamPort, child, why, alias.address);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    reference: `127.0.0.1:${referencePort}`,
    upstream: `127.0.0.1:${upstreamPort}`,
    paced: `127.0.0.1:${pacedPort}`,
    aliases: options.aliases.map((alias) => `${alias.address}:${upstreamPort}`),
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
