// Content from a registry's mirrors (upstream/mirrors.ts, issue 19) for the registry endpoints.
// The registry still decides who may read it: before a mirror is asked, the client must pass
// the same check as for a cache hit (access/authorize.ts), and a mirror's answer records no
// public mark and no grant. Bytes are checked against the digest before the client sees any
// for manifests and for blobs small enough to hold (a wrong mirror is then skipped unseen); a
// larger blob streams through a fill that verifies it at the end (blobs.ts).
import { Readable } from 'node:stream';
import { ensureAccess, mayServeOffline, type CachedContent } from '../access/authorize.ts';
import { digestOf, parseDigest } from '../oci/digest.ts';
import { readCapped } from '../upstream/body.ts';
import type { UpstreamResponse } from '../upstream/client.ts';
import { UpstreamRefusedError } from '../upstream/errors.ts';
import type { MirrorChain, MirrorSource, Taken } from '../upstream/mirrors.ts';
import type { Exchange, RegistryDeps } from './context.ts';

/**
 * Blobs up to this size are read whole and checked before the client gets a byte (config blobs,
 * small layers); a larger one streams, and wrong bytes can then only cut the client off.
 */
export const VERIFIED_FIRST_MAX = 1024 * 1024;

export interface MirroredBlob {
  readonly chain: MirrorChain;
  readonly mirror: MirrorSource;
  readonly body: Readable;
  readonly size: number | undefined;
}

export interface MirroredManifest {
  readonly chain: MirrorChain;
  readonly mirror: MirrorSource;
  readonly content: Buffer;
  readonly mediaType: string | undefined;
}

interface TagAnswer {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

export interface MirroredTag extends TagAnswer {
  readonly chain: MirrorChain;
  readonly mirror: MirrorSource;
}

/** The blob from the first mirror that has it; undefined when the registry has no mirror that did. */
export async function blobFromMirrors(
  x: Exchange,
  blob: { readonly name: string; readonly digest: string },
  deps: RegistryDeps,
): Promise<MirroredBlob | undefined> {
  const chain = deps.mirrors?.chainOf(x.destination);
  if (!chain || !deps.mirrors) return undefined;
  await registryAllows(x, { kind: 'blob', ...blob }, deps);
  const path = `/v2/${blob.name}/blobs/${blob.digest}`;
  const ask = { method: 'GET', path, kind: 'blob', via: x.req.headers.via } as const;
  const found = await deps.mirrors.first(chain, ask, async (response) => {
    const size = declaredLength(response);
    if (size === undefined || size > VERIFIED_FIRST_MAX) return { value: { body: response.body, size } };
    const content = await readCapped(response, VERIFIED_FIRST_MAX).catch(() => undefined);
    if (content === undefined) return { failure: 'body' };
    if (!matches(content, blob.digest)) return { failure: 'digest' };
    return { value: { body: Readable.from([content]), size: content.length } };
  });
  if (found) x.outcome.source = found.mirror.name;
  return found && { chain, mirror: found.mirror, ...found.value };
}

/** The manifest `digest` from the first mirror that has it, checked; `checked`: access already was. */
export async function manifestFromMirrors(
  x: Exchange,
  manifest: { readonly name: string; readonly digest: string },
  deps: RegistryDeps,
  checked = false,
): Promise<MirroredManifest | undefined> {
  const chain = deps.mirrors?.chainOf(x.destination);
  if (!chain || !deps.mirrors) return undefined;
  if (!checked) await registryAllows(x, { kind: 'manifest', ...manifest }, deps);
  const path = `/v2/${manifest.name}/manifests/${manifest.digest}`;
  const { accept, via } = x.req.headers;
  const ask = { method: 'GET', path, accept, via, kind: 'manifest' } as const;
  const found = await deps.mirrors.first(chain, ask, async (response) => {
    const content = await readCapped(response, deps.maxManifestSize).catch(() => undefined);
    if (content === undefined) return { failure: 'body' };
    if (!matches(content, manifest.digest)) return { failure: 'digest' };
    return { value: { content, mediaType: header(response, 'content-type') } };
  });
  if (found) x.outcome.source = found.mirror.name;
  return found && { chain, mirror: found.mirror, ...found.value };
}

/** What `tag` resolves to at the first mirror with `tags` that knows it (a HEAD, as dockerd asks). */
export async function tagFromMirrors(
  x: Exchange,
  route: { readonly name: string; readonly reference: string },
  deps: RegistryDeps,
): Promise<MirroredTag | undefined> {
  const chain = deps.mirrors?.chainOf(x.destination);
  if (!chain?.mirrors.some((mirror) => mirror.tags) || !deps.mirrors) return undefined;
  const path = `/v2/${route.name}/manifests/${route.reference}`;
  const { accept, via } = x.req.headers;
  const ask = { method: 'HEAD', path, accept, via, kind: 'tag' } as const;
  const found = await deps.mirrors.first(chain, ask, async (response): Promise<Taken<TagAnswer>> => {
    await response.body.dump();
    const digest = header(response, 'docker-content-digest');
    const mediaType = header(response, 'content-type');
    const size = declaredLength(response);
    // Without these the answer names nothing to check or serve: ask the next source.
    if (digest === undefined || !parseDigest(digest) || !mediaType || size === undefined) return {};
    return { value: { digest, mediaType, size } };
  });
  if (found) x.outcome.source = found.mirror.name;
  return found && { chain, mirror: found.mirror, ...found.value };
}

/**
 * The registry's say on this client and this content, as for a cache hit. A registry that
 * answers 5xx or 429 is treated like an unreachable one: earlier answers decide, so that a
 * struggling registry does not stop what its mirrors can serve to clients it already let in.
 */
export async function registryAllows(x: Exchange, content: CachedContent, deps: RegistryDeps): Promise<void> {
  try {
    await ensureAccess(x, content, deps);
  } catch (error) {
    const struggling = error instanceof UpstreamRefusedError && (error.status >= 500 || error.status === 429);
    if (struggling && (await mayServeOffline(x, content, deps))) return;
    throw error;
  }
}

function matches(content: Buffer, digest: string): boolean {
  const parsed = parseDigest(digest);
  return parsed !== undefined && digestOf(content, parsed.algorithm) === digest;
}

function header(response: UpstreamResponse, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function declaredLength(response: UpstreamResponse): number | undefined {
  const size = Number(header(response, 'content-length') ?? Number.NaN);
  return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}
