// The one place that knows every module: config → logger, CA, leaf certificates, upstream
// client, registry handler and proxy server, started in order and closed in reverse.
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.ts';
import { createLocalHandler } from './local.ts';
import type { Logger } from './log.ts';
import { InterceptList } from './proxy/intercept-list.ts';
import { HostRules } from './http/host-rules.ts';
import { createProxyServer } from './proxy/server.ts';
import { createRegistryHandler } from './registry/handler.ts';
import { loadOrCreateCa, type CertificateAuthority } from './tls/ca.ts';
import { LeafContexts } from './tls/contexts.ts';
import { Upstream, readCaFiles } from './upstream/client.ts';
import { DiskBlobStore } from './cache/blobs.ts';
import { Fills } from './cache/fills.ts';
import { ManifestStore } from './cache/manifests.ts';
import { PublicMarks } from './cache/public-marks.ts';
import { Access } from './registry/access.ts';
import { DestinationGuard, type Resolver } from './net/guard.ts';
import { NetworkList, parseCidr, type Cidr } from './net/networks.ts';
import { Admission } from './proxy/admission.ts';
import { ProxyAuth } from './proxy/auth.ts';
import type { Connector } from './proxy/tunnel.ts';
import type { UpstreamOptions } from './upstream/client.ts';
import { SharedLogin } from './upstream/login.ts';
import type { PolicyOf } from './registry/policy.ts';

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

const CA_EXPIRY_WARNING_MS = 90 * 86_400_000;

export async function startApp(config: Config, log: Logger, seams: AppSeams = {}): Promise<App> {
  const ca = await loadOrCreateCa({ dir: config.ca.dir, passphrase: config.ca.passphrase ?? undefined });
  const { overlap } = ca;
  log.info(
    {
      dir: config.ca.dir,
      fingerprint: ca.fingerprintSha256,
      notAfter: ca.notAfter.toISOString(),
      rotation: overlap.state,
    },
    ca.created ? 'ca created' : 'ca loaded',
  );
  if (overlap.state === 'active') {
    log.info(
      { previous: overlap.previous.fingerprintSha256, until: overlap.until.toISOString() },
      'ca rotation in progress: signing with the previous ca and sending cross.crt',
    );
  } else if (overlap.state === 'ended') {
    log.warn(
      { until: overlap.until.toISOString() },
      'previous ca expired: signing with ca.crt alone; delete previous.crt, previous.key and cross.crt',
    );
  } else if (overlap.state === 'ignored') {
    log.warn({ reason: overlap.reason }, 'ca rotation files ignored');
  }
  if (ca.notAfter.getTime() - Date.now() < CA_EXPIRY_WARNING_MS) {
    log.warn({ notAfter: ca.notAfter.toISOString() }, 'ca expires within 90 days: rotate it');
  }
  if (!config.upstream.verifyTls) {
    log.warn(
      'upstream TLS verification is OFF (verifyTls: false / VERIFY_SSL=false): upstream registries are not authenticated',
    );
  }

  const guard = new DestinationGuard({
    deny: networks(config.proxy.denyNetworks),
    ...(seams.resolve ? { resolve: seams.resolve } : {}),
  });
  const auth = config.proxy.htpasswd === null ? undefined : await ProxyAuth.fromFile(config.proxy.htpasswd);
  if (auth) log.info({ file: config.proxy.htpasswd, users: auth.users }, 'proxy authentication on');
  // Each registry's own settings (policy, tag freshness), found by destination.
  const registries = new HostRules(
    config.registries.map((registry) => ({ pattern: registry.host, value: registry })),
  );
  const registryOf = (host: string, port: number) => registries.match(host, port);
  const policy: PolicyOf = (destination) =>
    registryOf(destination.host, destination.port)?.policy ?? 'verify';
  for (const registry of config.registries) {
    if (registry.policy === 'share' || registry.policy === 'no-cache') {
      log.info({ host: registry.host, policy: registry.policy }, 'registry policy');
    }
  }
  for (const credential of config.upstream.credentials) {
    const registry = config.registries.find((r) => r.host === credential.host);
    if (registry?.policy !== 'share') {
      log.warn(
        { host: credential.host },
        'credentials configured for a registry whose policy is not share: they are not used',
      );
    }
  }
  const upstream = new Upstream({
    guard,
    login: new SharedLogin((host, port) => {
      const registry = registryOf(host, port);
      if (registry?.policy !== 'share') return undefined;
      return config.upstream.credentials.find((credential) => credential.host === registry.host);
    }),
    ...(seams.wrapUpstreamConnector ? { wrapConnector: seams.wrapUpstreamConnector } : {}),
    verifyTls: config.upstream.verifyTls,
    extraCas: await readCaFiles(config.upstream.caFiles),
    connectTimeoutMs: config.upstream.connectTimeout,
    headersTimeoutMs: config.upstream.headersTimeout,
    bodyTimeoutMs: config.upstream.bodyTimeout,
  });
  const store = new DiskBlobStore(config.cache.dir);
  const { sweptTempFiles } = await store.init();
  log.info({ dir: config.cache.dir, sweptTempFiles }, 'cache ready');
  const fills = new Fills(store);
  const manifests = new ManifestStore(store.layout, store);
  const certificates = new LeafContexts(ca);
  const proxy = createProxyServer({
    interceptList: new InterceptList(config.registries.map((registry) => registry.host)),
    certificates,
    handler: createRegistryHandler({
      upstream,
      store,
      fills,
      manifests,
      access: new Access({
        grantTtlMs: config.access.grantTtl,
        publicTtlMs: config.access.publicTtl,
        offlineGraceMs: config.access.offlineGrace,
        now: Date.now,
        marks: new PublicMarks(store.layout),
      }),
      freshness: (destination) => {
        const registry = registryOf(destination.host, destination.port);
        return {
          tagTtlMs: registry?.tagTtl ?? config.cache.tagTtl,
          maxStaleMs: registry?.maxStale ?? config.cache.maxStale,
        };
      },
      policy,
      maxManifestSize: config.cache.maxManifestSize,
      now: Date.now,
      allowPush: config.allowPush,
      log,
      cacheWriteFailed: onceByCode(log, 'cache not writable: serving without caching'),
    }),
    local: createLocalHandler(ca.certPem),
    log,
    admission: new Admission({
      allowClients: config.proxy.allowClients.length > 0 ? networks(config.proxy.allowClients) : undefined,
      auth,
      maxConnections: config.limits.maxConnections,
      maxTunnels: config.limits.maxTunnels,
      log,
    }),
    guard,
    connectPorts: new Set(config.proxy.connectPorts),
    httpPorts: new Set(config.proxy.httpPorts),
    ...(seams.connect ? { connect: seams.connect } : {}),
    connectTimeoutMs: config.upstream.connectTimeout,
    limits: {
      maxHeaderSize: config.limits.maxHeaderSize,
      maxHeaders: config.limits.maxHeaders,
      headersTimeoutMs: config.limits.headersTimeout,
      idleTimeoutMs: config.limits.idleTimeout,
      tunnelIdleTimeoutMs: config.limits.tunnelIdleTimeout,
    },
  });
  const address = await proxy.listen(config.listen.host, config.listen.port);
  log.info(
    { address: address.address, port: address.port, registries: config.registries.map((r) => r.host) },
    'listening',
  );

  let closed: Promise<void> | undefined;
  return {
    address,
    ca,
    certificates,
    fills,
    close() {
      closed ??= (async () => {
        await proxy.close(config.shutdownTimeout);
        await upstream.destroy();
        log.info('stopped');
      })();
      return closed;
    },
  };
}

/** CIDRs from a validated config (schema.ts has already parsed each one). */
function networks(cidrs: readonly string[]): NetworkList {
  return new NetworkList(cidrs.map(parseCidr).filter((cidr): cidr is Cidr => cidr !== undefined));
}

/** A logger of failures that writes one line per distinct error code, not one per request. */
function onceByCode(log: Logger, message: string): (error: unknown) => void {
  const seen = new Set<string>();
  return (error) => {
    const err = error as NodeJS.ErrnoException;
    const code = err.code ?? err.name;
    if (seen.has(code)) return;
    seen.add(code);
    log.warn({ code, err: err.message }, message);
  };
}
