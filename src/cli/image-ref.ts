// Image references on the command line: what a `cache` command names (a registry, a repository
// or a tag), and image references (warm/image-ref.ts reads them) refused as usage errors.
import { ImageRefError, parseImageRef as parse, registryHost, type ImageRef } from '../warm/image-ref.ts';
import { UsageError } from './errors.ts';

export { formatRef, type ImageRef } from '../warm/image-ref.ts';

/** What a `cache` command names: a registry, a repository in it, or a tag of that. */
export interface Scope {
  readonly registry: string;
  readonly repository?: string;
  readonly tag?: string;
  readonly digest?: string;
}

/** A registry, a repository or a tag (or digest); throws UsageError for anything else. */
export function parseScope(text: string): Scope {
  // Alone, `quay.io`, `10.0.0.1:5000` and `localhost:5000` are registries; `alpine:3` is a tag on
  // Docker Hub (as docker reads it).
  const alone = !text.includes('/') && !text.includes('@');
  if (alone && /^([^:]*\.[^:]*|localhost)(:\d+)?$/.test(text)) {
    return { registry: registryHost(text) };
  }
  return parseImageRef(text, { tagOptional: true });
}

/** An image reference; with `tagOptional`, a bare repository is kept without a tag. */
export function parseImageRef(text: string, options: { tagOptional?: boolean } = {}): ImageRef {
  try {
    return parse(text, options);
  } catch (error) {
    throw error instanceof ImageRefError ? new UsageError(error.message) : error;
  }
}
