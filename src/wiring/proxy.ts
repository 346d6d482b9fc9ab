// The proxy's side: start notices, the parent proxy, the upstream client and the proxy server
// with its admission, authentication and tunnels.
import { type AdminHandler } from '../admin/handler.ts';
import type { Registries } from '../config/registries.ts';
import { type Config } from '../config/schema.ts';
import { formatAuthority } from '../http/destination.ts';
import type { Health } from '../health.ts';
import { createLocalHandler, type Readiness } from '../local.ts';
import { logNotices, type Logger } from '../log.ts';
import { recordTunnelClosed, recordTunnelOpened } from '../metrics/record.ts';
import { type Metrics } from '../metrics/registry.ts';
import { type UiHandler } from '../ui/handler.ts';
import { DestinationGuard, ipv4Resolver, systemResolver } from '../net/guard.ts';
import { NetworkList, parseCidr, type Cidr } from '../net/networks.ts';
import { resolveParentProxy, type ParentProxy } from '../net/parent-proxy.ts';
import { parentTunnelConnector } from '../proxy/parent.ts';
import { Admission } from '../proxy/admission.ts';
import { ProxyAuth, type InternalCredential } from '../proxy/auth.ts';
import type { InterceptList } from '../proxy/intercept-list.ts';
import { createProxyServer, type InterceptHandler, type ProxyServer } from '../proxy/server.ts';
import { netConnector } from '../proxy/tunnel.ts';
import { type CertificateAuthority } from '../tls/ca.ts';
import type { LeafContexts } from '../tls/contexts.ts';
import { caNotices } from '../tls/notices.ts';
import { Upstream, readCaFiles, type UpstreamObservation } from '../upstream/client.ts';
import { SharedLogin } from '../upstream/login.ts';
import { localPages } from './listen.ts';
import type { AppSeams } from './seams.ts';

/** What an operator should know at start: the CA's state, unverified upstreams, registry policies. */
export function logStartNotices(
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

/** The parent proxy upstream connections go through (upstream.proxy, or opted-in env), if any. */
export function parentProxy(config: Config, log: Logger): ParentProxy | undefined {
  const parent = resolveParentProxy(config.upstream, process.env);
  if (parent) log.info({ host: parent.host, port: parent.port, noProxy: parent.noProxy }, 'parent proxy');
  return parent;
}

export async function createUpstream(
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
    blobReader: config.upstream.blobReader,
  });
}

export async function createProxy(
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
    /** This process's own credential (the dashboard's warm jobs), accepted beside htpasswd's users. */
    internal?: InternalCredential;
  },
): Promise<ProxyServer> {
  const { htpasswd } = config.proxy;
  const auth = htpasswd === null ? undefined : await ProxyAuth.fromFile(htpasswd, parts.internal);
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
export function registryLabel({ origin }: UpstreamObservation, interceptList: InterceptList): string {
  const url = URL.parse(origin);
  if (!url) return 'other';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return interceptList.matches(host, port) ? formatAuthority({ host, port }) : 'other';
}

/** CIDRs from a validated config (schema.ts has already parsed each one). */
export function networks(cidrs: readonly string[]): NetworkList {
  return new NetworkList(cidrs.map(parseCidr).filter((cidr): cidr is Cidr => cidr !== undefined));
}

/** Where the proxy may connect: never to proxy.denyNetworks, resolved as proxy.ipv6 says. */
export function createGuard(config: Config, seams: AppSeams): DestinationGuard {
  return new DestinationGuard({
    deny: networks(config.proxy.denyNetworks),
    resolve: seams.resolve ?? (config.proxy.ipv6 ? systemResolver : ipv4Resolver),
  });
}
