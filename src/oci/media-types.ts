// Manifest media types and content negotiation by Accept. Pure, no I/O.
// Spec: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests

export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json',
] as const;

/** The media types an Accept header lists (parameters and q-values dropped, lower-cased). */
export function acceptedTypes(accept: string | string[] | undefined): string[] {
  const values = Array.isArray(accept) ? accept : accept === undefined ? [] : [accept];
  return values
    .flatMap((value) => value.split(','))
    .map((part) => (part.split(';', 1)[0] ?? '').trim().toLowerCase())
    .filter((type) => type !== '');
}

/**
 * Whether a manifest of `mediaType` answers a request with this Accept. No Accept, or a
 * wildcard, takes anything; otherwise the type must be listed (upstream decides the rest).
 */
export function accepts(accept: string | string[] | undefined, mediaType: string): boolean {
  const types = acceptedTypes(accept);
  if (types.length === 0) return true;
  const wanted = mediaType.toLowerCase();
  return types.some((type) => type === wanted || type === '*/*' || type === 'application/*');
}
