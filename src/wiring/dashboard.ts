// The dashboard's parts (/ui/, GET /admin/stats, warm jobs) and the admin API they sit on:
// built here, started once the proxy listens.
import { type AddressInfo } from 'node:net';
import { rootCertificates } from 'node:tls';
import { ProxyAgent } from 'undici';
import {
  createAdminHandler,
  createForwardedAdminHandler,
  type AdminHandler,
  type AdminOptions,
} from '../admin/handler.ts';
import { type OpenedCache } from '../cache/open.ts';
import type { Cluster } from '../cluster/cluster.ts';
import type { Registries } from '../config/registries.ts';
import { type Config } from '../config/schema.ts';
import { formatAuthority } from '../http/destination.ts';
import { type Logger } from '../log.ts';
import { type Metrics } from '../metrics/registry.ts';
import { Activity } from '../metrics/activity.ts';
import { dashboardStats, type DashboardSettings } from '../metrics/dashboard.ts';
import { History } from '../metrics/history.ts';
import { InternalCredential } from '../proxy/auth.ts';
import { createUiHandler } from '../ui/handler.ts';
import { WarmJobs } from '../warm/jobs.ts';
import type { createRegistryHandler } from '../registry/handler.ts';
import type { Watcher } from '../watch/watcher.ts';

/**
 * The admin API: its changes logged and listed on the dashboard, which polls its stats. In a
 * cluster, the cache-wide requests go to the replica keeping the books (cluster/admin.ts), whose
 * internal endpoint answers them here when it is this one.
 */
export function createAdmin(
  config: Config,
  log: Logger,
  cache: OpenedCache,
  dashboard: ReturnType<typeof createDashboard>,
  watcher: Watcher | undefined,
  cluster?: Cluster,
): AdminHandler {
  const options: AdminOptions = {
    token: config.admin.token,
    control: cache.control,
    watch: watcher && (() => watcher.list()),
    onError: (error) => log.warn({ err: (error as Error).message }, 'admin request failed'),
    onChange: (event, fields) => {
      dashboard.activity.event(event, fields);
      log.info(fields, event);
    },
    stats: dashboard.stats(cache),
    warm: dashboard.warm,
  };
  if (!cluster || config.admin.token === null) return createAdminHandler(options);
  cluster.serveAdmin(createForwardedAdminHandler(options));
  return createAdminHandler({ ...options, forward: cluster.adminForward });
}

/**
 * The dashboard's parts (/ui/ and GET /admin/stats): an hour of 2 s samples of the metrics,
 * recent events, pulls per tag (counted as the registry handler answers), and its static files.
 */
export function createDashboard(config: Config, log: Logger, metrics: Metrics) {
  const startedAt = Date.now();
  // Without admin.token nothing can read the dashboard's figures: no sampling, no counting.
  const on = config.admin.token !== null;
  const history = new History({ metrics, intervalMs: 2000, keep: 1800, windowMs: 5 * 60_000 });
  const activity = new Activity();
  const warm = new WarmJobs({
    onEnd: ({ ref, state, error, result }) => {
      const fields = { ref, ...(error === null ? {} : { error }), ...result };
      activity.event(`warm ${state}`, fields);
      if (state === 'failed') log.warn(fields, 'warm failed');
      else log.info(fields, 'warm done');
    },
  });
  let settings: DashboardSettings | undefined;
  let agent: ProxyAgent | undefined;
  // Warm jobs pull through the proxy port, which may ask for proxy credentials (proxy.htpasswd).
  const credential = new InternalCredential();
  return {
    history,
    activity,
    warm,
    /** The warm jobs' proxy credential: for createProxy to accept, never to leave the process. */
    credential,
    ui: on ? createUiHandler() : undefined,
    counting(handler: ReturnType<typeof createRegistryHandler>): ReturnType<typeof createRegistryHandler> {
      if (!on) return handler;
      return (req, res, destination, mode) => {
        const host = formatAuthority(destination);
        res.once('finish', () => activity.request(host, req.method, req.url, res.statusCode));
        return handler(req, res, destination, mode);
      };
    },
    stats(cache: OpenedCache): (since: number) => Promise<unknown> {
      const fills = () =>
        cache.fills.running().map((f) => ({ digest: f.digest, size: f.size ?? null, received: f.received }));
      return async (since) => {
        if (!settings) throw new Error('not started yet');
        const current = settings;
        return dashboardStats(
          { metrics, history, activity, fills, settings: () => current, startedAt },
          since,
        );
      };
    },
    /** Once listening: what the page shows, the first sample, warm's way through the proxy. */
    start(registries: Registries, at: { proxy: AddressInfo; mirrorPort: number | null; ca: string }): void {
      if (!on) return;
      // The proxy's CA for intercepted registries, the usual roots for what it only tunnels.
      agent = new ProxyAgent({
        uri: loopbackUri(at.proxy),
        token: credential.header(),
        requestTls: { ca: [...rootCertificates, at.ca] },
      });
      warm.connect(agent);
      settings = {
        proxyPort: at.proxy.port,
        mirrorPort: at.mirrorPort,
        registries: config.registries.map((registry) => registry.host),
        budgets: registries.budgets(),
        minFree: config.cache.minFree,
      };
      history.start();
    },
    /** Warm jobs still running are cut: shutdown does not wait for them. */
    async stop(): Promise<void> {
      history.stop();
      await agent?.destroy().catch(() => undefined);
    },
  };
}

/** The proxy's URL from this process: loopback when it listens on every address. */
export function loopbackUri({ address, port }: AddressInfo): string {
  const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
