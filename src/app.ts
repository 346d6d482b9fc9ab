// The one place that knows every module: config → logger, CA, leaf certificates, upstream
// client, cache, access, registry handler and proxy server, started in order and closed in
// reverse; the metrics are fed from their callbacks. Decisions live in the modules; this file
// only builds and connects them.
import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rootCertificates } from 'node:tls';
import { ProxyAgent } from 'undici';
import { Access } from './access/access.ts';
import { createAdminHandler, type AdminHandler } from './admin/handler.ts';
import type { Fills } from './cache/fills.ts';
import { Cluster } from './cluster/cluster.ts';
import type { WriteFailureContext, WriteFailureListener } from './cache/errors.ts';
import type { PassResult } from './cache/eviction.ts';
import { openCache, type OpenedCache } from './cache/open.ts';
import { Registries } from './config/registries.ts';
import type { Config } from './config/schema.ts';
import { formatAuthority, parseAuthority } from './http/destination.ts';
import { Health, writeFailureCode } from './health.ts';
import { createLocalHandler, type LocalPages, type Readiness } from './local.ts';
import { logNotices, type Logger } from './log.ts';
import {
  recordCacheWriteFailure,
  recordEvictions,
  recordMirrorFailure,
  recordSourceFetch,
  recordRequest,
  recordTunnelClosed,
  recordTunnelOpened,
  recordUpstream,
  recordWatchedTags,
  recordWatchEvent,
} from './metrics/record.ts';
import { createMetrics, type Metrics } from './metrics/registry.ts';
import { Activity } from './metrics/activity.ts';
import { dashboardStats, type DashboardSettings } from './metrics/dashboard.ts';
import { History } from './metrics/history.ts';
import { createUiHandler, type UiHandler } from './ui/handler.ts';
import { WarmJobs } from './warm/jobs.ts';
import { createMirrorServer, type MirrorHandler, type MirrorServer } from './mirror/server.ts';
import { DestinationGuard, ipv4Resolver, systemResolver, type Resolver } from './net/guard.ts';
import { NetworkList, parseCidr, type Cidr } from './net/networks.ts';
import { resolveParentProxy, type ParentProxy } from './net/parent-proxy.ts';
import { parentTunnelConnector } from './proxy/parent.ts';
import { Admission } from './proxy/admission.ts';
import { ProxyAuth } from './proxy/auth.ts';
import { InterceptList } from './proxy/intercept-list.ts';
import { createProxyServer, type InterceptHandler, type ProxyServer } from './proxy/server.ts';
import { netConnector, type Connector } from './proxy/tunnel.ts';
import { createRegistryHandler } from './registry/handler.ts';
import { openS3Storage, type S3Storage } from './storage/open.ts';
import { loadOrCreateCa, type CertificateAuthority } from './tls/ca.ts';
import { LeafContexts } from './tls/contexts.ts';
import { caNotices } from './tls/notices.ts';
import {
  Upstream,
  readCaFiles,
  type UpstreamObservation,
  type UpstreamOptions,
  type UpstreamRequest,
} from './upstream/client.ts';
import { SharedLogin } from './upstream/login.ts';
import { systemClock } from './watch/pace.ts';
import { Watcher } from './watch/watcher.ts';
import { Webhook } from './watch/webhook.ts';
import { Mirrors } from './upstream/mirrors.ts';

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

/** Seams for tests: name resolution and the sockets opened for clients and upstream. */
export interface AppSeams {
  readonly resolve?: Resolver;
  readonly connect?: Connector;
  readonly wrapUpstreamConnector?: UpstreamOptions['wrapConnector'];
  /** The clock of mirror back-offs (tests move it instead of sleeping). */
  readonly mirrorClock?: () => number;
}

export async function startApp(config: Config, log: Logger, seams: AppSeams = {}): Promise<App> {
  const ca = await loadOrCreateCa({ dir: config.ca.dir, passphrase: config.ca.passphrase ?? undefined });
  const registries = new Registries(config);
  logStartNotices(config, log, ca, registries);
  const guard = new DestinationGuard({
    deny: networks(config.proxy.denyNetworks),
    resolve: seams.resolve ?? (config.proxy.ipv6 ? systemResolver : ipv4Resolver),
  });
  const metrics = createMetrics();
  const interceptList = new InterceptList(config.registries.map((registry) => registry.host));
  const parent = parentProxy(config, log);
  const upstream = await createUpstream(config, registries, guard, seams, parent, (observation) =>
    recordUpstream(metrics, { ...observation, registry: registryLabel(observation, interceptList) }),
  );
  const { health, cacheWriteFailed } = healthOf(config, log, metrics);
  const dashboard = createDashboard(config, log, metrics);
  const { activity } = dashboard;
  const storage = await openStorage(config, log, cacheWriteFailed);
  const opened = await openCacheFor(config, registries, log, {
    health,
    cacheWriteFailed,
    metrics,
    activity,
    storage,
  });
  const { cluster, cache } = await joinCluster(config, log, opened, cacheWriteFailed);
  const certificates = new LeafContexts(ca);
  metrics.readFrom({
    cacheUsage: () => cache.book.usage(),
    fillsInFlight: () => cache.fills.size,
    certificatesIssued: () => certificates.issued,
  });
  const parts = { upstream, cache, registries, metrics, cacheWriteFailed, seams };
  const handler = dashboard.counting(createHandler(config, log, parts, cluster));
  const readiness = cluster ? clusterReadiness(health, cluster) : health.readiness;
  const watcher = createWatcher(config, log, { upstream, cache, registries, metrics });
  const admin = createAdmin(config, log, cache, dashboard, watcher);
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
      await cluster?.close();
      await cache.close();
      storage?.close();
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

/** Cache write failures from the store and the registry alike, logged once per cause, counted each. */
function healthOf(config: Config, log: Logger, metrics: Metrics) {
  const health = new Health(log, config.cache.dir);
  const cacheWriteFailed = (error: unknown, context?: WriteFailureContext) => {
    recordCacheWriteFailure(metrics, writeFailureCode(error));
    health.cacheWriteFailed(error, context);
  };
  return { health, cacheWriteFailed };
}

/** The admin API: its changes logged and listed on the dashboard, which polls its stats. */
function createAdmin(
  config: Config,
  log: Logger,
  cache: OpenedCache,
  dashboard: ReturnType<typeof createDashboard>,
  watcher: Watcher | undefined,
): AdminHandler {
  return createAdminHandler({
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
  });
}

/**
 * The dashboard's parts (/ui/ and GET /admin/stats): an hour of 2 s samples of the metrics,
 * recent events, pulls per tag (counted as the registry handler answers), and its static files.
 */
function createDashboard(config: Config, log: Logger, metrics: Metrics) {
  const startedAt = Date.now();
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
  return {
    history,
    activity,
    warm,
    ui: config.admin.token === null ? undefined : createUiHandler(),
    counting(handler: ReturnType<typeof createRegistryHandler>): ReturnType<typeof createRegistryHandler> {
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
      // The proxy's CA for intercepted registries, the usual roots for what it only tunnels.
      agent = new ProxyAgent({
        uri: loopbackUri(at.proxy),
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
function loopbackUri({ address, port }: AddressInfo): string {
  const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Starts the listeners in order (proxy, mirror, admin); one that fails closes those before it. */
async function listen(
  config: Config,
  log: Logger,
  proxy: ProxyServer,
  parts: {
    mirrorHandler: MirrorHandler;
    registries: Registries;
    operator: {
      ca: CertificateAuthority;
      health: Health;
      metrics: Metrics;
      admin: AdminHandler;
      readiness: () => Readiness;
      ui: UiHandler | undefined;
    };
  },
) {
  const address = await proxy.listen(config.listen.host, config.listen.port);
  log.info(
    { address: address.address, port: address.port, registries: config.registries.map((r) => r.host) },
    'listening',
  );
  const mirror = await startMirror(config, log, parts.mirrorHandler, parts.registries).catch(
    async (error: unknown) => {
      await proxy.close(0);
      throw error;
    },
  );
  const adminListener = await startAdminListener(config, log, parts.operator).catch(
    async (error: unknown) => {
      await Promise.all([proxy.close(0), mirror?.server.close(0)]);
      throw error;
    },
  );
  return { address, mirror, adminListener };
}

/** The proxy's own pages; /metrics and /admin/ among them when `operator` is true. */
function localPages(
  parts: {
    health: Health;
    metrics: Metrics;
    admin: AdminHandler;
    readiness?: () => Readiness;
    ui: UiHandler | undefined;
  },
  operator: boolean,
): LocalPages {
  const readiness = parts.readiness ?? parts.health.readiness;
  if (!operator) return { readiness };
  const metrics = async () => ({
    contentType: parts.metrics.registry.contentType,
    body: await parts.metrics.registry.metrics(),
  });
  return { readiness, metrics, admin: parts.admin, ...(parts.ui ? { ui: parts.ui } : {}) };
}

/** The admin listener (admin.listen): the proxy's own pages with /metrics and /admin/, plain HTTP. */
async function startAdminListener(
  config: Config,
  log: Logger,
  parts: {
    ca: CertificateAuthority;
    health: Health;
    metrics: Metrics;
    admin: AdminHandler;
    readiness: () => Readiness;
    ui: UiHandler | undefined;
  },
): Promise<{ address: AddressInfo; close: () => Promise<void> } | undefined> {
  const listen = config.admin.listen;
  if (listen === null) return undefined;
  const server = http.createServer(createLocalHandler(parts.ca.certPem, localPages(parts, true)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host, port: listen.port }, () => resolve());
  });
  const address = server.address() as AddressInfo;
  log.info({ address: address.address, port: address.port }, 'admin listening');
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { address, close };
}

/** The mirror listener (mirror.listen), handed the same registry handler as the proxy. */
async function startMirror(
  config: Config,
  log: Logger,
  handler: MirrorHandler,
  registries: Registries,
): Promise<{ server: MirrorServer; address: AddressInfo } | undefined> {
  if (config.mirror.listen === null) return undefined;
  const allow = config.proxy.allowClients.length > 0 ? networks(config.proxy.allowClients) : undefined;
  const { tls } = config.mirror;
  const server = createMirrorServer({
    handler,
    naming: {
      served: (host, port) => registries.of(host, port) !== undefined,
      registries: config.registries.map((registry) => registry.host),
      defaultRegistry: config.mirror.default,
    },
    log,
    ...(allow ? { allowClient: (address: string) => allow.has(address) } : {}),
    ...(tls ? { tls: { cert: await readFile(tls.cert, 'utf8'), key: await readFile(tls.key, 'utf8') } } : {}),
    limits: {
      maxHeaderSize: config.limits.maxHeaderSize,
      headersTimeoutMs: config.limits.headersTimeout,
      idleTimeoutMs: config.limits.idleTimeout,
    },
  });
  const address = await server.listen(config.mirror.listen.host, config.mirror.listen.port);
  log.info(
    { address: address.address, port: address.port, default: config.mirror.default, tls: tls !== null },
    'mirror listening',
  );
  return { server, address };
}

/** What an operator should know at start: the CA's state, unverified upstreams, registry policies. */
function logStartNotices(
  config: Config,
  log: Logger,
  ca: CertificateAuthority,
  registries: Registries,
): void {
  logNotices(log, caNotices(ca, config.ca.dir, Date.now()));
  if (!config.upstream.verifyTls) {
    log.warn(
      'upstream TLS verification is OFF (verifyTls: false / VERIFY_SSL=false): upstream registries are not authenticated',
    );
  }
  logNotices(log, registries.notices());
}

/** The registry handler: every decrypted request to an intercepted host goes to it. */
function createHandler(
  config: Config,
  log: Logger,
  parts: {
    upstream: Upstream;
    cache: OpenedCache;
    registries: Registries;
    metrics: Metrics;
    cacheWriteFailed: (error: unknown, context?: WriteFailureContext) => void;
    seams: AppSeams;
  },
  cluster: Cluster | undefined,
): ReturnType<typeof createRegistryHandler> {
  const { cache, metrics, registries } = parts;
  const access = new Access({
    grantTtlMs: config.access.grantTtl,
    publicTtlMs: config.access.publicTtl,
    offlineGraceMs: config.access.offlineGrace,
    now: Date.now,
    marks: cache.marks,
    ...(cluster ? { onAnswer: cluster.onAnswer } : {}),
  });
  // Answers remembered on the other replicas count here too (cluster/shared-access.ts).
  void cluster?.learnInto(access);
  return createRegistryHandler({
    upstream: parts.upstream,
    ...(config.registries.some((registry) => registry.mirrors?.length)
      ? {
          mirrors: createMirrors(parts.upstream, registries, log, {
            metrics,
            now: parts.seams.mirrorClock ?? Date.now,
          }),
        }
      : {}),
    store: cache.store,
    fills: cache.fills,
    manifests: cache.manifests,
    book: cache.book,
    cacheWriteFailed: parts.cacheWriteFailed,
    onCompletion: (c) => recordRequest(metrics, { ...c, registry: c.host, seconds: c.ms / 1000 }),
    access,
    policy: registries.policy,
    repositoryRefusal: registries.refusal,
    intercepts: (host, port) => registries.of(host, port) !== undefined,
    freshness: registries.freshness,
    maxManifestSize: config.cache.maxManifestSize,
    allowPush: config.allowPush,
    now: Date.now,
    log,
  });
}

/**
 * The watch of the tags in use (watch.interval; 0: none): its checks go through the upstream
 * client, its changes are logged, counted and sent to watch.webhook.
 */
function createWatcher(
  config: Config,
  log: Logger,
  parts: { upstream: Upstream; cache: OpenedCache; registries: Registries; metrics: Metrics },
): Watcher | undefined {
  const { interval, window, ratePerSecond, webhook: url } = config.watch;
  if (interval === 0) return undefined;
  const { upstream, cache, registries, metrics } = parts;
  const send = (request: UpstreamRequest) => upstream.request(request);
  const webhook =
    url === null
      ? undefined
      : new Webhook({
          url,
          send,
          clock: systemClock,
          onFailure: (failure) =>
            log.warn({ ...failure, webhook: new URL(url).origin }, 'watch: webhook message not delivered'),
        });
  log.info({ intervalMs: interval, windowMs: window, ratePerSecond, webhook: url !== null }, 'watching tags');
  return new Watcher({
    intervalMs: interval,
    windowMs: window,
    ratePerSecond,
    control: cache.control,
    tagRecord: (registry, repository, tag) => cache.manifests.getTag(registry, repository, tag),
    shares: (registry) => {
      const destination = parseAuthority(registry);
      return destination !== undefined && registries.policy(destination) === 'share';
    },
    isPublic: async (key) => (await cache.marks.get(key)) !== undefined,
    send,
    webhook,
    onEvent: (event, entry) => {
      recordWatchEvent(metrics, event.registry, event.kind);
      const level = event.kind === 'ok' ? 'info' : 'warn';
      log[level]({ ...event, at: undefined, pinned: entry.autoPin }, `watch: tag ${event.kind}`);
    },
    onStates: (counts) => recordWatchedTags(metrics, counts),
    onError: (error) => log.warn({ err: (error as Error).message }, 'watch: round failed'),
  });
}

/** The registries' mirror chains (registries[].mirrors), their failures and sources counted. */
function createMirrors(
  upstream: Upstream,
  registries: Registries,
  log: Logger,
  { metrics, now }: { metrics: Metrics; now: () => number },
): Mirrors {
  return new Mirrors(upstream, {
    chainOf: registries.mirrors,
    now,
    log,
    onFailure: (registry, mirror, reason) => recordMirrorFailure(metrics, registry, mirror, reason),
    onServed: (registry, source, kind) => recordSourceFetch(metrics, registry, source, kind),
  });
}

/** The parent proxy upstream connections go through (upstream.proxy, or opted-in env), if any. */
function parentProxy(config: Config, log: Logger): ParentProxy | undefined {
  const parent = resolveParentProxy(config.upstream, process.env);
  if (parent) log.info({ host: parent.host, port: parent.port, noProxy: parent.noProxy }, 'parent proxy');
  return parent;
}

async function createUpstream(
  config: Config,
  registries: Registries,
  guard: DestinationGuard,
  seams: AppSeams,
  parent: ParentProxy | undefined,
  observe: (observation: UpstreamObservation) => void,
): Promise<Upstream> {
  return new Upstream({
    parent,
    observe,
    guard,
    login: new SharedLogin(registries.credential),
    ...(seams.wrapUpstreamConnector ? { wrapConnector: seams.wrapUpstreamConnector } : {}),
    verifyTls: config.upstream.verifyTls,
    extraCas: await readCaFiles(config.upstream.caFiles),
    connectTimeoutMs: config.upstream.connectTimeout,
    headersTimeoutMs: config.upstream.headersTimeout,
    bodyTimeoutMs: config.upstream.bodyTimeout,
  });
}

async function openCacheFor(
  config: Config,
  registries: Registries,
  log: Logger,
  parts: {
    health: Health;
    cacheWriteFailed: WriteFailureListener;
    metrics: Metrics;
    activity: Activity;
    storage: S3Storage | undefined;
  },
): Promise<OpenedCache> {
  const { health, metrics, activity } = parts;
  const cache = await openCache({
    dir: config.cache.dir,
    ...(parts.storage ? { storage: parts.storage } : {}),
    eviction: {
      maxSize: config.cache.maxSize,
      minFree: config.cache.minFree,
      inactive: config.cache.inactive,
      pins: config.cache.pin,
      budgets: registries.budgets(),
    },
    onWriteFailure: parts.cacheWriteFailed,
    onPass: (result) => {
      recordEvictions(metrics, result.evicted);
      for (const image of result.evicted) {
        activity.event('evicted', { digest: image.root, reason: image.reason, bytes: image.bytes });
      }
      logEviction(log, result);
    },
    onIndexError: (error) => log.warn({ err: (error as Error).message }, 'cache index: eviction delayed'),
    onIndexOpen: (report) => log.info({ ...report, ms: Math.round(report.ms) }, 'cache index open'),
    onReconciled: (stats) => log.info({ ...stats }, 'cache index reconciled after an unclean stop'),
    // Replicas may share the directory: no per-process index, no sweep of their temp files.
    ...(config.cluster.redis === null ? {} : { shared: { tempIdleMs: 10 * 60_000 } }),
  });
  const { init } = cache;
  if (init.writable) {
    log.info({ dir: config.cache.dir, sweptTempFiles: init.sweptTempFiles }, 'cache ready');
  } else {
    log.warn({ dir: config.cache.dir, code: init.code }, `${init.reason}: serving read-only`);
    health.cacheReadOnly(init.reason);
  }
  return cache;
}

/** storage.type s3: the bucket, reached once before anything else starts; fs: undefined. */
async function openStorage(
  config: Config,
  log: Logger,
  // A bucket that stops answering is a cache that cannot be written: /readyz says so, pulls relay.
  onUnavailable: WriteFailureListener,
): Promise<S3Storage | undefined> {
  const { type, s3 } = config.storage;
  if (type !== 's3' || s3.bucket === null) return undefined;
  const front = config.storage.front.maxSize;
  const storage = await openS3Storage(
    { ...s3, bucket: s3.bucket },
    {
      cacheDir: config.cache.dir,
      frontMaxSize: front,
      onUnavailable: (error) =>
        onUnavailable(error instanceof Error ? error : new Error(String(error)), {
          path: `s3://${s3.bucket}`,
        }),
    },
  );
  const { endpoint, bucket, prefix, redirect } = s3;
  log.info({ endpoint: endpoint ?? 'aws', bucket, prefix, redirect, front }, 'storage: s3 bucket ready');
  return storage;
}

/** One line per image evicted (what, why, how much), and one for the pass. */
function logEviction(log: Logger, result: PassResult): void {
  for (const image of result.evicted) {
    log.info(
      { digest: image.root, reason: image.reason, bytes: image.bytes, files: image.digests.length },
      'evicted',
    );
  }
  const { usage, freedBytes, unmet, skipped, onlyPinnedLeft } = result;
  const fields = {
    images: result.evicted.length,
    freedBytes,
    usageBefore: usage.before,
    usageAfter: usage.after,
    pinned: skipped.pinned.length,
    inUse: skipped.inUse.length,
  };
  if (unmet.length === 0) log.info(fields, 'eviction pass');
  else if (onlyPinnedLeft) log.warn({ ...fields, unmet }, 'eviction pass: only pinned content left');
  else log.warn({ ...fields, unmet }, 'eviction pass: bounds still unmet');
}

async function createProxy(
  config: Config,
  log: Logger,
  parts: {
    ca: CertificateAuthority;
    certificates: LeafContexts;
    guard: DestinationGuard;
    seams: AppSeams;
    handler: InterceptHandler;
    health: Health;
    interceptList: InterceptList;
    metrics: Metrics;
    admin: AdminHandler;
    ui: UiHandler | undefined;
    parent: ParentProxy | undefined;
    readiness: () => Readiness;
  },
): Promise<ProxyServer> {
  const auth = config.proxy.htpasswd === null ? undefined : await ProxyAuth.fromFile(config.proxy.htpasswd);
  if (auth) log.info({ file: config.proxy.htpasswd, users: auth.users }, 'proxy authentication on');
  const { limits } = config;
  return createProxyServer({
    interceptList: parts.interceptList,
    certificates: parts.certificates,
    handler: parts.handler,
    // With an admin listener of its own, /metrics and /admin/ are served there only.
    local: createLocalHandler(parts.ca.certPem, localPages(parts, config.admin.listen === null)),
    tunnels: {
      opened: () => recordTunnelOpened(parts.metrics),
      closed: (bytes) => recordTunnelClosed(parts.metrics, bytes),
    },
    log,
    admission: new Admission({
      allowClients: config.proxy.allowClients.length > 0 ? networks(config.proxy.allowClients) : undefined,
      auth,
      maxConnections: limits.maxConnections,
      maxTunnels: limits.maxTunnels,
      log,
    }),
    guard: parts.guard,
    connectPorts: new Set(config.proxy.connectPorts),
    httpPorts: new Set(config.proxy.httpPorts),
    ...(parts.seams.connect ? { connect: parts.seams.connect } : {}),
    ...(parts.parent
      ? { tunnelConnect: parentTunnelConnector(parts.parent, parts.seams.connect ?? netConnector) }
      : {}),
    ...(parts.parent ? { parent: parts.parent } : {}),
    connectTimeoutMs: config.upstream.connectTimeout,
    limits: {
      maxHeaderSize: limits.maxHeaderSize,
      maxHeaders: limits.maxHeaders,
      headersTimeoutMs: limits.headersTimeout,
      handshakeTimeoutMs: limits.handshakeTimeout,
      idleTimeoutMs: limits.idleTimeout,
      tunnelIdleTimeoutMs: limits.tunnelIdleTimeout,
    },
  });
}

/**
 * The `registry` label of an upstream request: the intercepted registry's `host:port`, or
 * `other` for the CDNs blobs redirect to and the token services, so that labels stay bounded.
 */
function registryLabel({ origin }: UpstreamObservation, interceptList: InterceptList): string {
  const url = URL.parse(origin);
  if (!url) return 'other';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return interceptList.matches(host, port) ? formatAuthority({ host, port }) : 'other';
}

/** With cluster.redis: this replica's part, and fills coordinated with the other replicas. */
async function joinCluster(
  config: Config,
  log: Logger,
  opened: OpenedCache,
  onWriteFailure: WriteFailureListener,
): Promise<{ cluster: Cluster | undefined; cache: OpenedCache }> {
  if (config.cluster.redis === null) return { cluster: undefined, cache: opened };
  const cluster = await Cluster.start(config.cluster, log, () => opened.store);
  opened.manifests.shareTags(cluster.tags);
  return { cluster, cache: { ...opened, fills: cluster.fills(opened.store, { onWriteFailure }) } };
}

/** /readyz of a replica: its own health, Redis's, and the members it sees. */
function clusterReadiness(health: Health, cluster: Cluster): () => Readiness {
  return () => {
    const own = health.readiness();
    const shared = cluster.readiness();
    return { ...own, degraded: [...own.degraded, ...shared.degraded], info: shared.info };
  };
}

/** CIDRs from a validated config (schema.ts has already parsed each one). */
function networks(cidrs: readonly string[]): NetworkList {
  return new NetworkList(cidrs.map(parseCidr).filter((cidr): cidr is Cidr => cidr !== undefined));
}
