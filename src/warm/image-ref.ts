// Image references as people type them (`alpine`, `ghcr.io/org/app:1.2`, `host:5000/a/b@sha256:…`)
// turned into the registry to reach, the repository and the tag or digest, the way docker reads
// them: a first component with a dot or a colon (or `localhost`) is a registry, otherwise the
// image is on Docker Hub, whose one-word repositories live under `library/`. Pure.
import { isDigest, isName, isTag } from '../oci/reference.ts';

export interface ImageRef {
  /** `host[:port]` to send requests to (Docker Hub: registry-1.docker.io). */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

/** A reference that is not one; the message says which part. */
export class ImageRefError extends Error {
  override readonly name = 'ImageRefError';
}

export const DOCKER_HUB = 'registry-1.docker.io';

function isRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

export function registryHost(component: string): string {
  const lower = component.toLowerCase();
  return lower === 'docker.io' || lower === 'index.docker.io' ? DOCKER_HUB : lower;
}

/** An image reference; with `tagOptional`, a bare repository is kept without a tag. */
export function parseImageRef(text: string, options: { tagOptional?: boolean } = {}): ImageRef {
  let rest = text.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new ImageRefError(`${text}: ${digest} is not a digest`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag)) throw new ImageRefError(`${text}: ${tag} is not a tag`);
  }
  const first = rest.split('/', 1)[0] ?? '';
  const hasRegistry = rest.includes('/') && isRegistry(first);
  const registry = hasRegistry ? registryHost(first) : DOCKER_HUB;
  let repository = hasRegistry ? rest.slice(first.length + 1) : rest;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!isName(repository)) throw new ImageRefError(`${text}: ${repository} is not a repository name`);
  if (tag === undefined && digest === undefined && !options.tagOptional) tag = 'latest';
  return {
    registry,
    repository,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

export function formatRef(ref: ImageRef): string {
  const registry = ref.registry === DOCKER_HUB ? 'docker.io' : ref.registry;
  return `${registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}
