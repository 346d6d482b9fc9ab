// The watch of the tags in use (watch/), its checks through the upstream client, its changes
// logged, counted and sent to the webhook.
import { type OpenedCache } from '../cache/open.ts';
import type { Registries } from '../config/registries.ts';
import { type Config } from '../config/schema.ts';
import { parseAuthority } from '../http/destination.ts';
import { type Logger } from '../log.ts';
import { recordWatchedTags, recordWatchEvent } from '../metrics/record.ts';
import { type Metrics } from '../metrics/registry.ts';
import type { Upstream } from '../upstream/client.ts';
import { type UpstreamRequest } from '../upstream/client.ts';
import { systemClock } from '../watch/pace.ts';
import { Watcher } from '../watch/watcher.ts';
import { Webhook } from '../watch/webhook.ts';

/**
 * The watch of the tags in use (watch.interval; 0: none): its checks go through the upstream
 * client, its changes are logged, counted and sent to watch.webhook.
 */
export function createWatcher(
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
