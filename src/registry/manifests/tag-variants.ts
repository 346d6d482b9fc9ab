// A tag resolves differently by Accept: upstream sends an index to a client that takes one and
// a single (often converted, amd64) manifest to one that does not. The tag record keeps one
// resolution per media type, so that each kind of client is revalidated and served (offline
// too) with what upstream gave it, and never with a variant it did not ask for.
// Eviction knows a tag by its latest resolution only: an alternate's manifest may be evicted,
// and is then fetched again on its client's next pull.
import type { TagRecord, TagVariant } from '../../cache/manifests.ts';
import { accepts } from '../../oci/media-types.ts';

/** Resolutions kept besides the latest: one per media type, and there are six of those. */
const MAX_ALTERNATES = 5;

const LIST_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

/** Every resolution a record holds, the latest first. */
export function variantsOf(record: TagRecord | undefined): TagVariant[] {
  if (!record) return [];
  const { alternates = [], ...latest } = record;
  return [latest, ...alternates];
}

/** The resolutions a client with this Accept may be given. */
export function acceptableVariants(
  record: TagRecord | undefined,
  accept: string | string[] | undefined,
): TagVariant[] {
  return variantsOf(record).filter((variant) => accepts(accept, variant.mediaType));
}

/**
 * The one to serve without asking upstream: an index or list when the client takes one (what
 * upstream itself answers such a client: a single manifest is what it converts to for clients
 * that do not), else the most recently confirmed.
 */
export function preferredVariant(variants: readonly TagVariant[]): TagVariant | undefined {
  return [...variants].sort(
    (a, b) =>
      Number(LIST_TYPES.has(b.mediaType)) - Number(LIST_TYPES.has(a.mediaType)) || b.checkedAt - a.checkedAt,
  )[0];
}

/** The record after upstream confirmed `latest`: it leads; other media types stay as alternates. */
export function withVariant(previous: TagRecord | undefined, latest: TagVariant): TagRecord {
  const alternates = variantsOf(previous)
    .filter((variant) => variant.mediaType !== latest.mediaType && variant.digest !== latest.digest)
    .slice(0, MAX_ALTERNATES);
  return alternates.length > 0 ? { ...latest, alternates } : latest;
}
