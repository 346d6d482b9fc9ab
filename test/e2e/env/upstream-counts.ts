// What reached the upstream registries while a client ran: `marks()` before and after (each
// registry's own log, complete up to that point, see `Registry.mark()`), then the requests in
// between sorted into blob GETs, manifest GETs (by tag or by digest), manifest HEADs and the rest.
// `reportCounts` prints them as `[e2e] counts | …` table rows, for quoting.
import { servedRequests, type Registry, type UpstreamRequest } from './registry.ts';

export interface UpstreamCounts {
  blobGet: number;
  manifestGetByTag: number;
  manifestGetByDigest: number;
  manifestHead: number;
  /** Everything else, as `METHOD URI`: pings (`GET /v2/`), blob HEADs, tokens. */
  other: string[];
  requests: UpstreamRequest[];
}

/** Where each registry's log stands now, complete (see `Registry.mark()`). */
export function marks(registries: readonly Registry[]): Promise<number[]> {
  return Promise.all(registries.map((registry) => registry.mark()));
}

/** The requests each registry answered between the `before` and `after` marks, all together. */
export function servedBetween(
  registries: readonly Registry[],
  before: readonly number[],
  after: readonly number[],
): UpstreamRequest[] {
  return registries.flatMap((registry, i) => servedRequests(registry).slice(before[i], after[i]));
}

const MANIFEST = /^\/v2\/.+\/manifests\/([^/?]+)$/;
const BLOB = /^\/v2\/.+\/blobs\/[^/?]+$/;

export function countUpstream(requests: readonly UpstreamRequest[]): UpstreamCounts {
  const counts: UpstreamCounts = {
    blobGet: 0,
    manifestGetByTag: 0,
    manifestGetByDigest: 0,
    manifestHead: 0,
    other: [],
    requests: [...requests],
  };
  for (const { method, uri } of requests) {
    const reference = MANIFEST.exec(uri)?.[1];
    if (method === 'GET' && BLOB.test(uri)) counts.blobGet++;
    else if (method === 'GET' && reference !== undefined) {
      if (reference.includes(':')) counts.manifestGetByDigest++;
      else counts.manifestGetByTag++;
    } else if (method === 'HEAD' && reference !== undefined) counts.manifestHead++;
    else counts.other.push(`${method} ${uri}`);
  }
  return counts;
}

/** Runs `action` and returns what reached `registries` meanwhile. */
export async function countDuring(
  registries: readonly Registry[],
  action: () => Promise<unknown>,
): Promise<UpstreamCounts> {
  const before = await marks(registries);
  await action();
  const after = await marks(registries);
  return countUpstream(servedBetween(registries, before, after));
}

const COLUMNS = ['client', 'pull', 'blob GET', 'manifest GET (tag+digest)', 'manifest HEAD', 'other'];

/** Prints a header and one row per pull: `[e2e] counts | client | pull | …`. */
export function reportCounts(client: string, pulls: readonly UpstreamCounts[]): void {
  const rows = pulls.map((counts, i) => [
    client,
    String(i + 1),
    String(counts.blobGet),
    `${counts.manifestGetByTag + counts.manifestGetByDigest} (${counts.manifestGetByTag}+${counts.manifestGetByDigest})`,
    String(counts.manifestHead),
    `${counts.other.length}${counts.other.length > 0 ? ` (${summarize(counts.other)})` : ''}`,
  ]);
  const widths = COLUMNS.map((column, i) =>
    Math.max(column.length, ...rows.map((row) => row[i]?.length ?? 0)),
  );
  const line = (cells: readonly string[]): string =>
    `[e2e] counts | ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')}`;
  console.info([line(COLUMNS), ...rows.map(line)].join('\n'));
}

/** `GET /v2/ ×2, HEAD /v2/x/blobs/sha256:… ×1`: repeated requests folded. */
function summarize(requests: readonly string[]): string {
  const folded = new Map<string, number>();
  for (const request of requests) folded.set(request, (folded.get(request) ?? 0) + 1);
  return [...folded].map(([request, n]) => (n > 1 ? `${request} ×${n}` : request)).join(', ');
}
