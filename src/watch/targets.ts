// Which tags are watched: every tag the cache served within `watch.window` (its image's last
// use, as the index counts it), and every cached tag a pin names, whatever its age (a pinned
// image is one the operator means to keep running). Pure: the listing and pins are handed in.
import type { RegistryListing } from '../cache/catalog.ts';
import type { Pins } from '../config/pins.ts';
import type { TagKey } from './state.ts';

export interface Target extends TagKey {
  /** The digest the cache holds for the tag (its latest resolution). */
  readonly digest: string;
  readonly pinned: boolean;
}

export function selectTargets(
  listing: readonly RegistryListing[],
  pins: Pins,
  now: number,
  windowMs: number,
): Target[] {
  const targets: Target[] = [];
  for (const { registry, repositories } of listing) {
    for (const { repository, tags } of repositories) {
      for (const { tag, digest, lastUsed } of tags) {
        const pinned = pins.tag(registry, repository, tag);
        if (pinned || now - lastUsed <= windowMs) targets.push({ registry, repository, tag, digest, pinned });
      }
    }
  }
  return targets;
}

/** The key of a tag in maps. */
export function keyOf(key: TagKey): string {
  return `${key.registry}/${key.repository}:${key.tag}`;
}
