// Requests addressed to the proxy itself (origin-form, not proxied): a health text at `/`
// (what rpardini/docker-registry-proxy's probes expect), `/healthz` (alive), `/readyz` (ready to
// take pulls, and what is degraded), `/metrics` (Prometheus), the CA at `/ca.crt`, and at
// `/setup/systemd` the script that points a docker host at this proxy (rpardini's setup script);
// /admin/ goes to the admin API, /ui/ to the dashboard (ui/).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { planFor } from './setup/clients.ts';
import { proxyUrlFromHost, setupScript } from './setup/script.ts';

/** Whether the proxy takes pulls now, and what works less well than it should. */
export interface Readiness {
  /** False while shutting down: a load balancer should send pulls elsewhere. */
  readonly ready: boolean;
  /** Ready, but e.g. the cache cannot be written: pulls work, uncached. */
  readonly degraded: readonly string[];
  /** Lines shown after the first one (e.g. the replicas of a cluster). */
  readonly info?: readonly string[];
}

/** The Prometheus exposition, rendered at scrape time. */
export type MetricsPage = () => Promise<{ readonly contentType: string; readonly body: string }>;

/** What the proxy's own pages show besides the CA; each is optional. */
export interface LocalPages {
  readonly readiness?: () => Readiness;
  readonly metrics?: MetricsPage;
  /** Answers every /admin/ path (404 included when the admin API is off). */
  readonly admin?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Answers /ui and every /ui/ path: the dashboard (absent: 404, e.g. no admin.token). */
  readonly ui?: (req: IncomingMessage, res: ServerResponse) => void;
}

export function createLocalHandler(caCertPem: string, pages: LocalPages = {}) {
  const { metrics, admin, ui } = pages;
  const readiness = pages.readiness ?? ((): Readiness => ({ ready: true, degraded: [] }));
  return function local(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0];
    // The admin API (admin/) answers every /admin/ path itself, 404 included when it is off.
    if (admin && (path === '/admin' || path?.startsWith('/admin/'))) return admin(req, res);
    if (ui && (path === '/ui' || path?.startsWith('/ui/'))) return ui(req, res);
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(405, 'text/plain; charset=utf-8', 'method not allowed\n');
    } else if (path === '/') {
      send(200, 'text/plain; charset=utf-8', 'pullthrough: the caching proxy is working!\n');
    } else if (path === '/healthz') {
      send(200, 'text/plain; charset=utf-8', 'ok\n');
    } else if (path === '/readyz') {
      const { ready, degraded, info = [] } = readiness();
      const detail = degraded.length > 0 ? ` (degraded: ${degraded.join('; ')})` : '';
      const more = info.map((line) => `${line}\n`).join('');
      send(
        ready ? 200 : 503,
        'text/plain; charset=utf-8',
        ready ? `ready${detail}\n${more}` : 'not ready: shutting down\n',
      );
    } else if (path === '/metrics' && metrics) {
      metrics().then(
        ({ contentType, body }) => send(200, contentType, body),
        (error: unknown) => send(500, 'text/plain; charset=utf-8', `metrics failed: ${String(error)}\n`),
      );
    } else if (path === '/ca.crt') {
      send(200, 'application/x-pem-file', caCertPem);
    } else if (path === '/setup/systemd') {
      // The proxy's URL is the one this request came to: what the host running the script reaches.
      const proxy = proxyUrlFromHost(req.headers.host);
      if (proxy === undefined)
        send(400, 'text/plain; charset=utf-8', 'a Host header of host[:port] is needed\n');
      else {
        const invocation = `curl -fsS ${proxy}/setup/systemd | sudo bash`;
        send(200, 'text/x-shellscript; charset=utf-8', setupScript(planFor('docker'), proxy, invocation));
      }
    } else {
      send(404, 'text/plain; charset=utf-8', 'not found\n');
    }
  };
}
