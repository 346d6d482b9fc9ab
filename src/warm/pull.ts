// One image pulled through the proxy the way a registry client pulls it, so that the proxy
// caches it: the /v2/ ping, the anonymous token flow for a `Bearer` challenge, the manifest by
// tag with the usual Accept list, for an index the chosen platforms' manifests, then config and
// layers, read and discarded. What the proxy's X-Cache says tells cached already from fetched.
// Used by `pullthrough warm` (cli/warm.ts) and by the dashboard's warm (jobs.ts), both through
// the proxy.
import { request, type Dispatcher } from 'undici';
import { indexPlatforms } from '../oci/manifest.ts';
import { MANIFEST_MEDIA_TYPES } from '../oci/media-types.ts';
import type { ImageRef } from './image-ref.ts';

/** Platforms to take from an index: a list (`linux/amd64`, `linux/arm64/v8`) or all of them. */
export type PlatformChoice = readonly string[] | 'all';

export interface PullEvents {
  /** The blobs to read are known: their total size. */
  readonly sized?: (bytes: number) => void;
  /** Bytes read from a blob. */
  readonly progress?: (bytes: number) => void;
}

export interface PullResult {
  readonly manifests: number;
  readonly blobs: number;
  readonly bytes: number;
  /** Blobs the proxy had to fetch from upstream (X-Cache other than HIT). */
  readonly fetchedBlobs: number;
  readonly fetchedBytes: number;
  readonly platforms: readonly string[];
}

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
/** Blobs of one image read at once. */
const PARALLEL = 4;
const MAX_MANIFEST = 4 * 1024 * 1024;

interface Descriptor {
  readonly digest: string;
  readonly size: number;
}

export class WarmError extends Error {
  override readonly name = 'WarmError';
}

/** A registry session: its dispatcher (the proxy) and the tokens it got, by scope. */
export class RegistryClient {
  readonly #dispatcher: Dispatcher;
  readonly #tokens = new Map<string, string | undefined>();

  constructor(dispatcher: Dispatcher) {
    this.#dispatcher = dispatcher;
  }

  async pull(ref: ImageRef, platforms: PlatformChoice, events: PullEvents = {}): Promise<PullResult> {
    const repo = `/v2/${ref.repository}`;
    const top = await this.#manifest(ref, `${repo}/manifests/${ref.digest ?? ref.tag ?? 'latest'}`);
    const images: Array<Record<string, unknown>> = [];
    const chosen: string[] = [];
    let manifests = 1;
    if (Array.isArray(top.parsed['manifests'])) {
      const wanted = indexPlatforms(top.body).filter(
        (p) => p.platform !== 'unknown/unknown' && matches(platforms, p.platform),
      );
      if (wanted.length === 0) throw new WarmError(`no manifest for ${describe(platforms)} in the index`);
      for (const entry of wanted) {
        images.push((await this.#manifest(ref, `${repo}/manifests/${entry.digest}`)).parsed);
        chosen.push(entry.platform);
        manifests += 1;
      }
    } else {
      images.push(top.parsed);
    }
    const blobs = new Map<string, number>();
    for (const image of images) for (const d of descriptorsOf(image)) blobs.set(d.digest, d.size);
    events.sized?.([...blobs.values()].reduce((a, b) => a + b, 0));
    let fetchedBlobs = 0;
    let fetchedBytes = 0;
    let bytes = 0;
    const queue = [...blobs.keys()];
    const worker = async () => {
      for (let digest = queue.shift(); digest !== undefined; digest = queue.shift()) {
        const read = await this.#blob(ref, `${repo}/blobs/${digest}`, events);
        bytes += read.bytes;
        if (!read.hit) {
          fetchedBlobs += 1;
          fetchedBytes += read.bytes;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, worker));
    return { manifests, blobs: blobs.size, bytes, fetchedBlobs, fetchedBytes, platforms: chosen };
  }

  async #manifest(ref: ImageRef, path: string): Promise<{ body: Buffer; parsed: Record<string, unknown> }> {
    const res = await this.#get(ref, path, { accept: ACCEPT });
    const body = Buffer.from(await res.body.arrayBuffer());
    if (body.length > MAX_MANIFEST)
      throw new WarmError(`${path}: manifest larger than ${MAX_MANIFEST} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new WarmError(`${path}: the manifest is not JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null) throw new WarmError(`${path}: not a manifest`);
    return { body, parsed: parsed as Record<string, unknown> };
  }

  async #blob(ref: ImageRef, path: string, events: PullEvents): Promise<{ bytes: number; hit: boolean }> {
    const res = await this.#get(ref, path, {});
    let bytes = 0;
    for await (const chunk of res.body) {
      const length = (chunk as Buffer).length;
      bytes += length;
      events.progress?.(length);
    }
    return { bytes, hit: String(res.headers['x-cache'] ?? '').toUpperCase() === 'HIT' };
  }

  /** A GET that answers 200, with a token got on the first Bearer challenge of its repository. */
  async #get(
    ref: ImageRef,
    path: string,
    headers: Record<string, string>,
  ): Promise<Dispatcher.ResponseData<unknown>> {
    const scope = `repository:${ref.repository}:pull`;
    const key = `${ref.registry} ${scope}`;
    for (let attempt = 0; ; attempt++) {
      const token = this.#tokens.get(key);
      const res = await request(`https://${ref.registry}${path}`, {
        dispatcher: this.#dispatcher,
        headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      });
      if (res.statusCode === 200) return res;
      const text = await res.body.text().catch(() => '');
      const challenge = String(res.headers['www-authenticate'] ?? '');
      if (res.statusCode === 401 && attempt === 0 && /^Bearer /i.test(challenge)) {
        this.#tokens.set(key, await this.#token(challenge, scope));
        continue;
      }
      throw new WarmError(`${path}: ${res.statusCode} ${errorText(text)}`);
    }
  }

  /** The anonymous token flow (distribution token spec): GET realm?service=…&scope=…. */
  async #token(challenge: string, scope: string): Promise<string> {
    const params = Object.fromEntries(
      [...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [
        match[1]?.toLowerCase() ?? '',
        match[2] ?? '',
      ]),
    );
    const realm = params['realm'];
    if (realm === undefined) throw new WarmError('a Bearer challenge without a realm');
    const url = new URL(realm);
    if (params['service'] !== undefined) url.searchParams.set('service', params['service']);
    url.searchParams.set('scope', params['scope'] ?? scope);
    const res = await request(url, { dispatcher: this.#dispatcher });
    const text = await res.body.text();
    if (res.statusCode !== 200)
      throw new WarmError(`token from ${url.host}: ${res.statusCode} ${errorText(text)}`);
    const body = JSON.parse(text) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (token === undefined) throw new WarmError(`token from ${url.host}: no token in the answer`);
    return token;
  }
}

function descriptorsOf(manifest: Record<string, unknown>): Descriptor[] {
  const out: Descriptor[] = [];
  const add = (value: unknown) => {
    const d = value as { digest?: unknown; size?: unknown } | null;
    if (d && typeof d.digest === 'string')
      out.push({ digest: d.digest, size: typeof d.size === 'number' ? d.size : 0 });
  };
  add(manifest['config']);
  if (Array.isArray(manifest['layers'])) for (const layer of manifest['layers']) add(layer);
  return out;
}

function matches(choice: PlatformChoice, platform: string): boolean {
  if (choice === 'all') return true;
  // `linux/arm64` takes `linux/arm64/v8` too; `linux/arm/v7` only itself.
  return choice.some((wanted) => platform === wanted || platform.startsWith(`${wanted}/`));
}

function describe(choice: PlatformChoice): string {
  return choice === 'all' ? 'any platform' : choice.join(', ');
}

/** An OCI error body's first message, or the text itself (short). */
function errorText(text: string): string {
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const first = parsed.errors?.[0];
    if (first) return `${first.code ?? ''} ${first.message ?? ''}`.trim();
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200);
}

/** The platform of this machine, as an index names it. */
export function hostPlatform(): string {
  const arch = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' }[
    process.arch as string
  ];
  return `linux/${arch ?? process.arch}`;
}
