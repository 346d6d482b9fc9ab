// The registry handler with what it answers from: access answers (shared in a cluster), the
// mirror chains, the cache, and the metrics its completions feed.
import { Access } from '../access/access.ts';
import type { Cluster } from '../cluster/cluster.ts';
import { type WriteFailureContext } from '../cache/errors.ts';
import { type OpenedCache } from '../cache/open.ts';
import type { Registries } from '../config/registries.ts';
import { type Config } from '../config/schema.ts';
import { type Logger } from '../log.ts';
import { recordMirrorFailure, recordSourceFetch, recordRequest } from '../metrics/record.ts';
import { type Metrics } from '../metrics/registry.ts';
import { createRegistryHandler } from '../registry/handler.ts';
import type { Upstream } from '../upstream/client.ts';
import { Mirrors } from '../upstream/mirrors.ts';
import type { AppSeams } from './seams.ts';

/** The registry handler: every decrypted request to an intercepted host goes to it. */
export function createHandler(
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

/** The registries' mirror chains (registries[].mirrors), their failures and sources counted. */
export function createMirrors(
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
