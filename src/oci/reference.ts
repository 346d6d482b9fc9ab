// Repository names, tags and digests as the distribution spec defines them. Pure, no I/O.
// Spec: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests

/** `<name>`: path components of lower-case alphanumerics joined by `.`, `_`, `__` or dashes. */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** `algorithm:encoded` (OCI image-spec descriptor.md#digests). */
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const KNOWN_DIGESTS: Readonly<Record<string, RegExp>> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/** Names longer than this are refused by real registries too (distribution caps at 255). */
export const MAX_NAME_LENGTH = 255;

export function isName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

export function isTag(reference: string): boolean {
  return TAG.test(reference);
}

/** A well-formed digest whose algorithm we know and whose encoded part has its exact form. */
export function isDigest(reference: string): boolean {
  if (!DIGEST.test(reference)) return false;
  const [algorithm = '', encoded = ''] = reference.split(':', 2);
  return KNOWN_DIGESTS[algorithm]?.test(encoded) ?? false;
}
