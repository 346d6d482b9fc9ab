// The digests a manifest references: what must stay cached beside it for an image to be
// pullable. Read from the descriptor fields, not the media type, so that a manifest served under
// a generic type still counts. Pure, no I/O; malformed input gives an empty list, never throws.
// OCI image-spec manifest.md (config, layers, subject), image-index.md (manifests, subject),
// artifact manifests (blobs); Docker v2 schema 2 and manifest lists share those field names;
// Docker schema 1 lists its layers as fsLayers[].blobSum.
import { isDigest } from './reference.ts';

/**
 * Digests referenced by a manifest or index, each once, in the order: config, layers / blobs,
 * manifests, schema-1 layers, subject. Only well-formed sha256/sha512 digests are kept.
 */
export function manifestReferences(content: Uint8Array | string): string[] {
  const parsed = parseJson(content);
  if (!isRecord(parsed)) return [];
  const found = new Set<string>();
  addDescriptor(found, parsed['config']);
  for (const field of ['layers', 'blobs', 'manifests'] as const) addDescriptors(found, parsed[field]);
  const fsLayers = parsed['fsLayers'];
  if (Array.isArray(fsLayers)) {
    for (const layer of fsLayers) if (isRecord(layer)) addDigest(found, layer['blobSum']);
  }
  addDescriptor(found, parsed['subject']);
  return [...found];
}

/** A platform manifest of an index: its digest and `os/architecture[/variant]`. */
export interface PlatformManifest {
  readonly digest: string;
  readonly platform: string;
}

/**
 * The manifests an index (or Docker manifest list) names with their platform, in its order;
 * entries without a platform (attestations name `unknown/unknown`) are kept as they say.
 * Empty for anything that is not an index. image-index.md, "platform".
 */
export function indexPlatforms(content: Uint8Array | string): PlatformManifest[] {
  const parsed = parseJson(content);
  const list = isRecord(parsed) ? parsed['manifests'] : undefined;
  if (!Array.isArray(list)) return [];
  const out: PlatformManifest[] = [];
  for (const entry of list) {
    if (!isRecord(entry) || typeof entry['digest'] !== 'string' || !isDigest(entry['digest'])) continue;
    const platform = isRecord(entry['platform']) ? entry['platform'] : {};
    const part = (key: string) => (typeof platform[key] === 'string' ? platform[key] : undefined);
    const name = [part('os') ?? 'unknown', part('architecture') ?? 'unknown', part('variant')]
      .filter((piece) => piece !== undefined)
      .join('/');
    out.push({ digest: entry['digest'], platform: name });
  }
  return out;
}

function addDescriptors(found: Set<string>, list: unknown): void {
  if (Array.isArray(list)) for (const descriptor of list) addDescriptor(found, descriptor);
}

function addDescriptor(found: Set<string>, descriptor: unknown): void {
  if (isRecord(descriptor)) addDigest(found, descriptor['digest']);
}

function addDigest(found: Set<string>, digest: unknown): void {
  if (typeof digest === 'string' && isDigest(digest)) found.add(digest);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON value of `content`, or undefined when it is not JSON. */
function parseJson(content: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof content === 'string' ? content : Buffer.from(content).toString('utf8'));
  } catch {
    return undefined;
  }
}
