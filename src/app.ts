// The one place that knows every module: config → logger, CA, leaf certificates, upstream
// client, cache, access, registry handler and proxy server, started in order and closed in
// reverse; the metrics are fed from their callbacks. Decisions live in the modules; this file
// only builds and connects them.
import 'reflect-metadata';
import { type AddressInfo } from 'node:net';
import { type Fills } from './cache/fills.ts';
import type { Cluster } from './cluster/cluster.ts';
import { Registries } from './config/registries.ts';
import { type Config } from './config/schema.ts';
import { type Logger } from './log.ts';
import { recordUpstream } from './metrics/record.ts';
import { createMetrics } from './metrics/registry.ts';
import { InterceptList } from './proxy/intercept-list.ts';
import { loadOrCreateCa, type CertificateAuthority } from './tls/ca.ts';
import { LeafContexts } from './tls/contexts.ts';
import { openAppCache } from './wiring/cache.ts';
import { createAdmin, createDashboard } from './wiring/dashboard.ts';
import { createHandler } from './wiring/handler.ts';
import { listen } from './wiring/listen.ts';
import {
  logStartNotices,
  parentProxy,
  createUpstream,
  createProxy,
  registryLabel,
  createGuard,
} from './wiring/proxy.ts';
import type { AppSeams } from './wiring/seams.ts';
import { createWatcher } from './wiring/watcher.ts';

export type { AppSeams } from './wiring/seams.ts';

export interface App {
  readonly address: AddressInfo;
  /** The mirror listener's address, when mirror.listen is set. */
  readonly mirrorAddress: AddressInfo | undefined;
  /** The admin listener's address, when admin.listen is set. */
  readonly adminAddress: AddressInfo | undefined;
  readonly ca: CertificateAuthority;
  readonly certificates: LeafContexts;
  /** Fills in progress; `fills.idle()` resolves when none runs. */
  readonly fills: Fills;
  /** This replica's part in a cluster (config `cluster`), when there is one. */
  readonly cluster: Cluster | undefined;
  /** Graceful stop: in-flight requests get `config.shutdownTimeout`, then everything is cut. */
  close(): Promise<void>;
}

export async function startApp(config: Config, log: Logger, seams: AppSeams = {}): Promise<App> {
  const ca = await loadOrCreateCa({ dir: config.ca.dir, passphrase: config.ca.passphrase ?? undefined });
  const registries = new Registries(config);
  logStartNotices(config, log, ca, registries);
  const guard = createGuard(config, seams);
  const metrics = createMetrics();
  const interceptList = new InterceptList(config.registries.map((registry) => registry.host));
  const parent = parentProxy(config, log);
  const upstream = await createUpstream(config, registries, guard, seams, parent, (observation) =>
    recordUpstream(metrics, { ...observation, registry: registryLabel(observation, interceptList) }),
  );
  const dashboard = createDashboard(config, log, metrics);
  const opened = await openAppCache(config, log, registries, { metrics, activity: dashboard.activity });
  const { health, cacheWriteFailed, cluster, cache, readiness } = opened;
  const certificates = new LeafContexts(ca);
  metrics.readFrom({
    cacheUsage: () => cache.book.usage(),
    fillsInFlight: () => cache.fills.size,
    certificatesIssued: () => certificates.issued,
  });
  const parts = { upstream, cache, registries, metrics, cacheWriteFailed, seams };
  const handler = dashboard.counting(createHandler(config, log, parts, cluster));
  const watcher = createWatcher(config, log, { upstream, cache, registries, metrics });
  const admin = createAdmin(config, log, cache, dashboard, watcher, cluster);
  const { ui } = dashboard;
  const proxy = await createProxy(config, log, {
    ca,
    certificates,
    guard,
    seams,
    handler,
    health,
    interceptList,
    metrics,
    admin,
    ui,
    parent,
    readiness,
    internal: dashboard.credential,
  });
  const { address, mirror, adminListener } = await listen(config, log, proxy, {
    mirrorHandler: (req, res, destination) => handler(req, res, destination, 'mirror'),
    registries,
    operator: { ca, health, metrics, admin, readiness, ui },
  });
  watcher?.start();
  dashboard.start(registries, { proxy: address, mirrorPort: mirror?.address.port ?? null, ca: ca.certPem });
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      health.closing();
      await dashboard.stop();
      await Promise.all([
        proxy.close(config.shutdownTimeout),
        mirror?.server.close(config.shutdownTimeout),
        adminListener?.close(),
        watcher?.close(),
      ]);
      await upstream.destroy();
      await opened.close();
      log.info('stopped');
    })());
  return {
    address,
    mirrorAddress: mirror?.address,
    adminAddress: adminListener?.address,
    ca,
    certificates,
    fills: cache.fills,
    cluster,
    close,
  };
}
