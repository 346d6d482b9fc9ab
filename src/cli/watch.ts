// `pullthrough watch`: the tags a running server watches upstream (watch.interval), each with
// its state, the digest the cache holds and what upstream has now, through its admin API.
import { Command, Option } from 'commander';
import type { WatchListing } from '../watch/watcher.ts';
import { adminClient } from './admin-client.ts';
import { DEFAULT_SERVER } from './cache.ts';
import { age, table } from './format.ts';

interface WatchOptions {
  readonly server: string;
  readonly token?: string;
  readonly json?: boolean;
}

export function watchCommand(): Command {
  return new Command('watch')
    .description('list the tags watched upstream and their state (ok, changed, vanished, unauthorized, …)')
    .addOption(new Option('--server <url>', 'the running server (its proxy port)').default(DEFAULT_SERVER))
    .addOption(new Option('--token <token>', "the server's admin.token").env('PULLTHROUGH_ADMIN_TOKEN'))
    .option('--json', 'print JSON for scripts')
    .addHelpText(
      'after',
      '\nA tag that vanished or turned private upstream is pinned (see `cache pins`; `cache unpin` removes it).',
    )
    .action(async (options: WatchOptions) => {
      const listing = await adminClient(options.server, options.token).call<WatchListing>(
        'GET',
        '/admin/watch',
      );
      process.stdout.write(options.json ? `${JSON.stringify(listing, null, 2)}\n` : listingText(listing));
    });
}

function short(digest: string | null): string {
  return digest === null ? '-' : digest.replace(/^sha256:/, '').slice(0, 12);
}

export function listingText(listing: WatchListing, now = Date.now()): string {
  if (listing.tags.length === 0) return 'no watched tags\n';
  const rows = listing.tags.map((entry) => [
    `${entry.registry.replace(/:443$/, '')}/${entry.repository}:${entry.tag}`,
    entry.state,
    short(entry.cached),
    short(entry.upstream),
    entry.checkedAt === null ? 'never' : age(entry.checkedAt, now),
    [entry.autoPin === null ? '' : 'pinned', entry.note ?? ''].filter((part) => part !== '').join('; '),
  ]);
  return table(['TAG', 'STATE', 'CACHED', 'UPSTREAM', 'CHECKED', 'NOTE'], rows, []);
}
