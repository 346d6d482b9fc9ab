// The one place that knows every module: config → logger, CA, leaf certificates, upstream
// client, cache, access, registry handler and proxy server, started in order and closed in
// reverse. Decisions live in the modules; this file only builds and connects them.
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { Access } from './access/access.ts';
import type { Fills } from './cache/fills.ts';
import type { PassResult } from './cache/eviction.ts';
import { openCache, type OpenedCache } from './cache/open.ts';
import { Registries } from './config/registries.ts';
import type { Config } from './config/schema.ts';
import { Health } from './health.ts';
import { createLocalHandler } from './local.ts';
import { logNotices, type Logger } from './log.ts';
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
import { loadOrCreateCa, type CertificateAuthority } from './tls/ca.ts';
import { LeafContexts } from './tls/contexts.ts';
import { caNotices } from './tls/notices.ts';
import { Upstream, readCaFiles, type UpstreamOptions } from './upstream/client.ts';
import { SharedLogin } from './upstream/login.ts';

export interface App {
  readonly address: AddressInfo;
  readonly ca: CertificateAuthority;
  readonly certificates: LeafContexts;
  /** Fills in progress; `fills.idle()` resolves when none runs. */
  readonly fills: Fills;
  /** Graceful stop: in-flight requests get `config.shutdownTimeout`, then everything is cut. */
  close(): Promise<void>;
}

/** Seams for tests: name resolution and the sockets opened for clients and upstream. */
export interface AppSeams {
  readonly resolve?: Resolver;
  readonly connect?: Connector;
  readonly wrapUpstreamConnector?: UpstreamOptions['wrapConnector'];
}

export async function startApp(config: Config, log: Logger, seams: AppSeams = {}): Promise<App> {
  const ca = await loadOrCreateCa({ dir: config.ca.dir, passphrase: config.ca.passphrase ?? undefined });
  logNotices(log, caNotices(ca, config.ca.dir, Date.now()));
  if (!config.upstream.verifyTls) {
    log.warn(
      'upstream TLS verification is OFF (verifyTls: false / VERIFY_SSL=false): upstream registries are not authenticated',
    );
  }
  const registries = new Registries(config);
  logNotices(log, registries.notices());
  const guard = new DestinationGuard({
    deny: networks(config.proxy.denyNetworks),
    resolve: seams.resolve ?? (config.proxy.ipv6 ? systemResolver : ipv4Resolver),
  });
  const parent = resolveParentProxy(config.upstream, process.env);
  if (parent) log.info({ host: parent.host, port: parent.port, noProxy: parent.noProxy }, 'parent proxy');
  const upstream = await createUpstream(config, registries, guard, seams, parent);
  // Cache write failures from the store and the registry alike, logged once per cause.
  const health = new Health(log, config.cache.dir);
  const cache = await openCacheFor(config, registries, log, health);
  const certificates = new LeafContexts(ca);
  const handler = createRegistryHandler({
    upstream,
    store: cache.store,
    fills: cache.fills,
    manifests: cache.manifests,
    book: cache.book,
    cacheWriteFailed: health.cacheWriteFailed,
    access: new Access({
      grantTtlMs: config.access.grantTtl,
      publicTtlMs: config.access.publicTtl,
      offlineGraceMs: config.access.offlineGrace,
      now: Date.now,
      marks: cache.marks,
    }),
    policy: registries.policy,
    freshness: registries.freshness,
    repositoryRefusal: registries.refusal,
    maxManifestSize: config.cache.maxManifestSize,
    allowPush: config.allowPush,
    now: Date.now,
    log,
  });
  const proxy = await createProxy(config, log, { ca, certificates, guard, seams, handler, health, parent });
  const address = await proxy.listen(config.listen.host, config.listen.port);
  log.info(
    { address: address.address, port: address.port, registries: config.registries.map((r) => r.host) },
    'listening',
  );
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      health.closing();
      await proxy.close(config.shutdownTimeout);
      await upstream.destroy();
      await cache.close();
      log.info('stopped');
    })());
  return { address, ca, certificates, fills: cache.fills, close };
}

async function createUpstream(
  config: Config,
  registries: Registries,
  guard: DestinationGuard,
  seams: AppSeams,
  parent: ParentProxy | undefined,
): Promise<Upstream> {
  return new Upstream({
    parent,
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
  health: Health,
): Promise<OpenedCache> {
  const cache = await openCache({
    dir: config.cache.dir,
    eviction: {
      maxSize: config.cache.maxSize,
      minFree: config.cache.minFree,
      inactive: config.cache.inactive,
      pins: config.cache.pin,
      budgets: registries.budgets(),
    },
    onWriteFailure: health.cacheWriteFailed,
    onPass: (result) => logEviction(log, result),
    onIndexError: (error) => log.warn({ err: (error as Error).message }, 'cache index: eviction delayed'),
    onIndexOpen: (report) => log.info({ ...report, ms: Math.round(report.ms) }, 'cache index open'),
    onReconciled: (stats) => log.info({ ...stats }, 'cache index reconciled after an unclean stop'),
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
    parent: ParentProxy | undefined;
  },
): Promise<ProxyServer> {
  const auth = config.proxy.htpasswd === null ? undefined : await ProxyAuth.fromFile(config.proxy.htpasswd);
  if (auth) log.info({ file: config.proxy.htpasswd, users: auth.users }, 'proxy authentication on');
  const { limits } = config;
  return createProxyServer({
    interceptList: new InterceptList(config.registries.map((registry) => registry.host)),
    certificates: parts.certificates,
    handler: parts.handler,
    local: createLocalHandler(parts.ca.certPem, parts.health.readiness),
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

/** CIDRs from a validated config (schema.ts has already parsed each one). */
function networks(cidrs: readonly string[]): NetworkList {
  return new NetworkList(cidrs.map(parseCidr).filter((cidr): cidr is Cidr => cidr !== undefined));
}
