// The cache as the app opens it: the storage (disk or bucket), the index and eviction, the
// cluster's fills and tags when there is one, and /readyz's view of its writes.
import type { Cluster } from '../cluster/cluster.ts';
import { type WriteFailureContext, type WriteFailureListener } from '../cache/errors.ts';
import { type PassResult } from '../cache/eviction.ts';
import { openCache, type OpenedCache } from '../cache/open.ts';
import type { Registries } from '../config/registries.ts';
import { type Config } from '../config/schema.ts';
import { Health, writeFailureCode } from '../health.ts';
import { type Readiness } from '../local.ts';
import { type Logger } from '../log.ts';
import { recordCacheWriteFailure, recordEvictions } from '../metrics/record.ts';
import { type Metrics } from '../metrics/registry.ts';
import type { Activity } from '../metrics/activity.ts';
import type { S3Storage } from '../storage/open.ts';

/** Cache write failures from the store and the registry alike, logged once per cause, counted each. */
export function healthOf(config: Config, log: Logger, metrics: Metrics) {
  const health = new Health(log, config.cache.dir);
  const cacheWriteFailed = (error: unknown, context?: WriteFailureContext) => {
    recordCacheWriteFailure(metrics, writeFailureCode(error));
    health.cacheWriteFailed(error, context);
  };
  return { health, cacheWriteFailed };
}

/** storage.type s3: the bucket, reached once before anything else starts; fs: undefined. */
export async function openStorage(
  config: Config,
  log: Logger,
  // A bucket that stops answering is a cache that cannot be written: /readyz says so, pulls relay.
  onUnavailable: WriteFailureListener,
): Promise<S3Storage | undefined> {
  const { type, s3 } = config.storage;
  if (type !== 's3' || s3.bucket === null) return undefined;
  const front = config.storage.front.maxSize;
  // Loaded only when used: the AWS SDK costs ~10 MiB of heap in every process that imports it.
  const { openS3Storage } = await import('../storage/open.ts');
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

export async function openCacheFor(
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
    // Replicas keep no per-process index (it would evict under another replica's readers). On a
    // shared directory, another replica's temp files are not swept; with a bucket, cache.dir is
    // this replica's own (temp files, front tier), so whatever a crash left in it goes.
    ...(config.cluster.redis === null ? {} : { shared: { tempIdleMs: parts.storage ? 0 : 10 * 60_000 } }),
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
export function logEviction(log: Logger, result: PassResult): void {
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

/** With cluster.redis: this replica's part, and fills coordinated with the other replicas. */
export async function joinCluster(
  config: Config,
  log: Logger,
  opened: OpenedCache,
  onWriteFailure: WriteFailureListener,
): Promise<{ cluster: Cluster | undefined; cache: OpenedCache }> {
  if (config.cluster.redis === null) return { cluster: undefined, cache: opened };
  // Loaded only when used, like the AWS SDK: ioredis and the cluster's parts.
  const { Cluster } = await import('../cluster/cluster.ts');
  const cluster = await Cluster.start(config.cluster, log, () => opened.store);
  opened.manifests.shareTags(cluster.tags);
  const fills = cluster.fills(opened.store, { onWriteFailure });
  if (!opened.keep) return { cluster, cache: { ...opened, fills } };
  // One replica keeps the index and evicts for all (cluster/book.ts); the admin API answers there.
  const book = cluster.book(opened.keep, { maxSize: config.cache.maxSize });
  return { cluster, cache: { ...opened, fills, book, control: () => Promise.resolve(book.control) } };
}

/** /readyz of a replica: its own health, Redis's, and the members it sees. */
export function clusterReadiness(health: Health, cluster: Cluster): () => Readiness {
  return () => {
    const own = health.readiness();
    const shared = cluster.readiness();
    return { ...own, degraded: [...own.degraded, ...shared.degraded], info: shared.info };
  };
}

/**
 * Storage, cache and cluster opened in that order, with the health of their writes and what
 * /readyz says of them; closed in reverse.
 */
export async function openAppCache(
  config: Config,
  log: Logger,
  registries: Registries,
  parts: { metrics: Metrics; activity: Activity },
) {
  const { health, cacheWriteFailed } = healthOf(config, log, parts.metrics);
  const storage = await openStorage(config, log, cacheWriteFailed);
  const opened = await openCacheFor(config, registries, log, { health, cacheWriteFailed, ...parts, storage });
  const { cluster, cache } = await joinCluster(config, log, opened, cacheWriteFailed);
  return {
    health,
    cacheWriteFailed,
    cluster,
    cache,
    readiness: cluster ? clusterReadiness(health, cluster) : health.readiness,
    async close(): Promise<void> {
      await cluster?.close();
      await cache.close();
      storage?.close();
    },
  };
}
