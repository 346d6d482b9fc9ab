// @ts-check
// What the page changes, each behind the admin token: purges (a tag, a repository, a
// registry), pins and warming an image. Each asks first, says what happened in the status line and reloads the
// listing.
import { call, query } from './api.js';
import { say } from './dom.js';
import { registryName, size } from './format.js';
import { refreshImages, refreshStats } from './state.js';

/**
 * Purges what the selector names, after a confirmation.
 * @param {{ registry: string, repository?: string, tag?: string }} selector
 */
export async function purge(selector) {
  const what = describe(selector);
  if (!confirm(`Purge ${what} from the cache? The next pull fetches it again.`)) return;
  try {
    /** @type {{ tags: number, images: number, files: number, bytes: number, inUse: unknown[] }} */
    const result = await call(`/admin/images?${query(selector)}`, { method: 'DELETE' });
    const busy = result.inUse.length > 0 ? ` (${result.inUse.length} in use, kept)` : '';
    say(`Purged ${what}: ${result.tags} tags, ${result.files} files, ${size(result.bytes)}${busy}.`);
  } catch (error) {
    say(`Purge of ${what} failed: ${message(error)}`, 'error');
  }
  await Promise.all([refreshImages(), refreshStats()]);
}

/**
 * Pins (or unpins) a reference: `registry/repository:tag` or `registry/repository/*`.
 * @param {string} ref
 * @param {boolean} pinned whether it is pinned now
 */
export async function togglePin(ref, pinned) {
  try {
    await call(`/admin/pins?${query({ ref })}`, { method: pinned ? 'DELETE' : 'POST' });
    say(pinned ? `Unpinned ${ref}.` : `Pinned ${ref}: eviction keeps it.`);
  } catch (error) {
    say(`${pinned ? 'Unpin' : 'Pin'} ${ref} failed: ${message(error)}`, 'error');
  }
  await refreshImages();
}

/**
 * Starts warming `ref` through the proxy; its progress comes with the stats.
 * @param {string} ref @param {string} platform empty: the server's own platform
 */
export async function warmImage(ref, platform) {
  try {
    await call(`/admin/warm?${query({ ref, platform: platform || undefined })}`, { method: 'POST' });
    say(`Warming ${ref}…`);
  } catch (error) {
    say(`Cannot warm ${ref}: ${message(error)}`, 'error');
  }
  await refreshStats();
}

/**
 * The pin of a tag, or of a whole repository (no tag: every tag of it, config/pins.ts).
 * @param {string} registry @param {string} repository @param {string} [tag]
 */
export function pinRef(registry, repository, tag) {
  return `${registryName(registry)}/${repository}${tag === undefined ? '' : `:${tag}`}`;
}

/** @param {{ registry: string, repository?: string, tag?: string }} s */
function describe(s) {
  const name = registryName(s.registry);
  if (s.repository === undefined) return `everything from ${name}`;
  return `${name}/${s.repository}${s.tag === undefined ? ' (every tag)' : `:${s.tag}`}`;
}

/** @param {unknown} error */
function message(error) {
  return error instanceof Error ? error.message : String(error);
}
