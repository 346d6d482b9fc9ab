// The listening sockets: the proxy port, the mirror listener and the admin listener, with the
// proxy's own pages (local.ts) on whichever serves them.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { type AdminHandler } from '../admin/handler.ts';
import type { Registries } from '../config/registries.ts';
import { type Config } from '../config/schema.ts';
import type { Health } from '../health.ts';
import { createLocalHandler, type LocalPages, type Readiness } from '../local.ts';
import { type Logger } from '../log.ts';
import { type Metrics } from '../metrics/registry.ts';
import { type UiHandler } from '../ui/handler.ts';
import { createMirrorServer, type MirrorHandler, type MirrorServer } from '../mirror/server.ts';
import { type ProxyServer } from '../proxy/server.ts';
import { type CertificateAuthority } from '../tls/ca.ts';
import { networks } from './proxy.ts';

/** Starts the listeners in order (proxy, mirror, admin); one that fails closes those before it. */
/** What the proxy's own pages serve (health, metrics, admin API, dashboard), on either listener. */
interface OperatorParts {
  readonly ca: CertificateAuthority;
  readonly health: Health;
  readonly metrics: Metrics;
  readonly admin: AdminHandler;
  readonly readiness: () => Readiness;
  readonly ui: UiHandler | undefined;
}

export async function listen(
  config: Config,
  log: Logger,
  proxy: ProxyServer,
  parts: {
    mirrorHandler: MirrorHandler;
    registries: Registries;
    operator: OperatorParts;
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
export function localPages(
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
export async function startAdminListener(
  config: Config,
  log: Logger,
  parts: OperatorParts,
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
export async function startMirror(
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
