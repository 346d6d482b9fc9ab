// `pullthrough cache ls | du | purge | gc`: what the cache of a running server holds, and
// purging or evicting from it, through its admin API (--server, --token). ls and du can read
// the index of a stopped server's cache directly (--cache-dir, read-only); purge and gc never
// touch the files themselves, so a running server's index and files never disagree.
import { Command, Option } from 'commander';
import type { RegistryListing, Selector } from '../cache/catalog.ts';
import { listImages, totals } from '../cache/catalog.ts';
import type { CacheSummary } from '../cache/control.ts';
import type { PassResult } from '../cache/eviction.ts';
import { readIndex } from '../cache/index-read.ts';
import type { PurgeResult } from '../cache/purge.ts';
import { adminClient, type AdminClient, ServerUnreachableError } from './admin-client.ts';
import { UsageError } from './errors.ts';
import { age, humanSize, plural, table } from './format.ts';
import { parseScope, type Scope } from './image-ref.ts';

export const DEFAULT_SERVER = 'http://127.0.0.1:3128';

interface ServerOptions {
  readonly server: string;
  readonly token?: string;
  readonly json?: boolean;
}

interface ReadOptions extends ServerOptions {
  readonly cacheDir?: string;
}

const OFFLINE_NOTE =
  'When no server answers, --cache-dir DIR reads the index of that cache directly (read-only).';

export function cacheCommand(): Command {
  const command = new Command('cache')
    .description("list, measure, purge and evict a running server's cache (through its admin API)")
    .addCommand(
      withServer(new Command('ls'), true)
        .description('list cached images: registry, repository, tag, digest, size, platforms, last use')
        .argument('[scope]', 'REGISTRY or REGISTRY/REPOSITORY to list (default: everything)')
        .addHelpText('after', `\n${OFFLINE_NOTE}`)
        .action((scope: string | undefined, options: ReadOptions) => ls(scope, options)),
    )
    .addCommand(
      withServer(new Command('du'), true)
        .description('how much the cache holds, per registry, against cache.maxSize and the free space')
        .addHelpText('after', `\n${OFFLINE_NOTE}`)
        .action((options: ReadOptions) => du(options)),
    )
    .addCommand(
      withServer(new Command('purge'), false)
        .description(
          'remove an image (REF), a repository (REPO), a registry (REGISTRY) or --all from the cache',
        )
        .argument('[target]', 'e.g. ghcr.io/org/app:1.2, docker.io/library/alpine, quay.io')
        .option('--all', 'purge everything')
        .addHelpText(
          'after',
          '\nOnly through a running server: it removes files in the order that keeps its index true.\n' +
            'Layers another remaining image references stay.',
        )
        .action((target: string | undefined, options: ServerOptions & { all?: boolean }) =>
          purge(target, options),
        ),
    )
    .addCommand(
      withServer(new Command('pin'), false)
        .description('keep an image or repository glob out of eviction, across restarts (e.g. ghcr.io/org/*)')
        .argument('<ref>', 'e.g. docker.io/library/postgres:16, registry.k8s.io/pause:*, ghcr.io/org/*')
        .action((ref: string, options: ServerOptions) => pins('POST', ref, options)),
    )
    .addCommand(
      withServer(new Command('unpin'), false)
        .description('remove a pin set with `cache pin` (pins of cache.pin stay: edit the config)')
        .argument('<ref>', 'the pin as it was given')
        .action((ref: string, options: ServerOptions) => pins('DELETE', ref, options)),
    )
    .addCommand(
      withServer(new Command('pins'), false)
        .description('list the pins in force: from cache.pin and set with `cache pin`')
        .action((options: ServerOptions) => pins('GET', undefined, options)),
    )
    .addCommand(
      withServer(new Command('gc'), false)
        .description('run one eviction pass now (cache.maxSize, budgets, inactive, minFree)')
        .action((options: ServerOptions) => gc(options)),
    )
    .addHelpText(
      'after',
      '\npurge and gc work only through a running server, so that its index and files never disagree;\n' +
        "ls and du can read a stopped server's cache with --cache-dir (read-only).\n" +
        'Exit codes: 0 ok, 1 failed (no server, refused token, server error), 2 bad usage.',
    );
  return command;
}

function withServer(command: Command, offline: boolean): Command {
  command
    .addOption(new Option('--server <url>', 'the running server (its proxy port)').default(DEFAULT_SERVER))
    .addOption(new Option('--token <token>', "the server's admin.token").env('PULLTHROUGH_ADMIN_TOKEN'))
    .option('--json', 'print JSON for scripts');
  if (offline)
    command.option('--cache-dir <dir>', "read a stopped server's cache index when no server answers");
  return command;
}

function client(options: ServerOptions): AdminClient {
  return adminClient(options.server, options.token);
}

/** Asks the server; when none answers and --cache-dir is given, reads the index instead. */
async function fromServerOr<T>(
  options: ReadOptions,
  online: () => Promise<T>,
  offline: (dir: string) => Promise<T>,
): Promise<T> {
  try {
    return await online();
  } catch (error) {
    if (!(error instanceof ServerUnreachableError)) throw error;
    if (options.cacheDir === undefined) {
      throw new Error(`${error.message}; give --cache-dir DIR to read a stopped server's cache`, {
        cause: error,
      });
    }
    return offline(options.cacheDir);
  }
}

function print(options: { json?: boolean }, value: unknown, text: () => string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value, null, 2)}\n` : text());
}

function scopeOf(text: string | undefined): Scope | undefined {
  if (text === undefined) return undefined;
  const scope = parseScope(text);
  if (scope.digest !== undefined)
    throw new UsageError(`${text}: name a tag, a repository or a registry, not a digest`);
  return scope;
}

function query(scope: Selector | undefined): string {
  const params = new URLSearchParams();
  if (scope?.registry !== undefined) params.set('registry', scope.registry);
  if (scope?.repository !== undefined) params.set('repository', scope.repository);
  if (scope?.tag !== undefined) params.set('tag', scope.tag);
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

async function ls(text: string | undefined, options: ReadOptions): Promise<void> {
  const scope = scopeOf(text);
  const selector = { registry: scope?.registry, repository: scope?.repository };
  const listing = await fromServerOr(
    options,
    async () =>
      (
        await client(options).call<{ registries: RegistryListing[] }>(
          'GET',
          `/admin/images${query(selector)}`,
        )
      ).registries,
    async (dir) => {
      const { snapshot, layout } = readIndex(dir);
      return listImages(snapshot, layout, selector);
    },
  );
  print(options, { registries: listing }, () => listingText(listing));
}

function listingText(listing: readonly RegistryListing[]): string {
  const rows: string[][] = [];
  for (const registry of listing) {
    for (const repository of registry.repositories) {
      for (const tag of repository.tags) {
        rows.push([
          `${registry.registry.replace(/:443$/, '')}/${repository.repository}:${tag.tag}`,
          tag.digest.replace(/^sha256:/, '').slice(0, 12),
          humanSize(tag.size),
          tag.platforms?.join(',') ?? '',
          age(tag.lastUsed),
        ]);
      }
    }
  }
  if (rows.length === 0) return 'no cached images\n';
  return table(['IMAGE', 'DIGEST', 'SIZE', 'PLATFORMS', 'LAST USED'], rows, [2]);
}

async function du(options: ReadOptions): Promise<void> {
  const summary = await fromServerOr<Partial<CacheSummary> & ReturnType<typeof totals>>(
    options,
    () => client(options).call<CacheSummary>('GET', '/admin/cache'),
    (dir) => Promise.resolve(totals(readIndex(dir).snapshot)),
  );
  print(options, summary, () => {
    const cap = summary.maxSize
      ? ` of ${humanSize(summary.maxSize)} (${((100 * summary.bytes) / summary.maxSize).toFixed(1)} %)`
      : '';
    const lines = [
      `${humanSize(summary.bytes)}${cap} in ${plural(summary.files, 'file')}: ${plural(summary.images, 'image')}, ${plural(summary.tags, 'tag')}`,
    ];
    if (typeof summary.free === 'number')
      lines.push(`${humanSize(summary.free)} free on the cache's filesystem`);
    const rows = Object.entries(summary.registries)
      .sort((a, b) => b[1] - a[1])
      .map(([registry, bytes]) => [registry.replace(/:443$/, ''), humanSize(bytes)]);
    return `${lines.join('\n')}\n${rows.length > 0 ? `\n${table(['REGISTRY', 'SIZE'], rows, [1])}` : ''}`;
  });
}

async function purge(text: string | undefined, options: ServerOptions & { all?: boolean }): Promise<void> {
  if (options.all === true && text !== undefined) throw new UsageError('give a target or --all, not both');
  if (options.all !== true && text === undefined)
    throw new UsageError('purge needs a REF, REPO, REGISTRY or --all');
  const scope = scopeOf(text);
  // Repeatable: a purge sent again removes what is left of the same selection, the state one
  // purge leaves (the counts printed are the last attempt's).
  const result = await client(options).call<PurgeResult>(
    'DELETE',
    scope === undefined ? '/admin/cache' : `/admin/images${query(scope)}`,
    { repeatable: true },
  );
  print(options, result, () => {
    const what = text ?? 'everything';
    const line = `purged ${what}: ${plural(result.tags, 'tag')}, ${plural(result.images, 'image')}, ${plural(result.files, 'file')}, ${humanSize(result.bytes)}`;
    const busy =
      result.inUse.length > 0
        ? `\n${plural(result.inUse.length, 'image')} left: being read now (purge again later)`
        : '';
    return `${line}${busy}\n`;
  });
}

async function gc(options: ServerOptions): Promise<void> {
  // Not repeated on a 503: a pass is an action, not a state, and running it twice is not
  // the operator's request; the server's message says to try again.
  const result = await client(options).call<PassResult>('POST', '/admin/evict');
  print(options, result, () => {
    const line = `evicted ${plural(result.evicted.length, 'image')}, freed ${humanSize(result.freedBytes)}; usage ${humanSize(result.usage.before)} -> ${humanSize(result.usage.after)}`;
    const unmet = result.unmet.map(
      (u) => `bound still unmet: ${u.reason}${u.registry ? ` (${u.registry})` : ''}`,
    );
    return [line, ...unmet].join('\n') + '\n';
  });
}

interface PinsAnswer {
  readonly config?: readonly string[];
  readonly runtime: readonly string[];
  readonly removed?: boolean;
}

async function pins(
  method: 'GET' | 'POST' | 'DELETE',
  ref: string | undefined,
  options: ServerOptions,
): Promise<void> {
  const path = ref === undefined ? '/admin/pins' : `/admin/pins?ref=${encodeURIComponent(ref)}`;
  // Repeatable: pins are a set, so pinning or unpinning twice leaves what once leaves.
  const result = await client(options).call<PinsAnswer>(method, path, { repeatable: true });
  print(options, result, () => {
    if (method === 'DELETE' && result.removed === false) return `${ref ?? ''} is not pinned with cache pin\n`;
    const lines = [...(result.config ?? []).map((pin) => `${pin}  (cache.pin)`), ...result.runtime];
    const head =
      method === 'POST' ? `pinned ${ref ?? ''}\n` : method === 'DELETE' ? `unpinned ${ref ?? ''}\n` : '';
    return head + (method === 'GET' ? `${lines.join('\n') || 'no pins'}\n` : '');
  });
}
