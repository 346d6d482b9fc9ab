// @ts-check
// Numbers as people read them: sizes in binary units, ratios as percentages, times as "ago".

/** @param {number | null | undefined} bytes */
export function size(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** @param {number | null | undefined} ratio 0..1 */
export function percent(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '–';
  return `${(ratio * 100).toFixed(ratio >= 0.995 || ratio === 0 ? 0 : 1)} %`;
}

/**
 * @param {number} numerator
 * @param {number} denominator
 */
export function ratio(numerator, denominator) {
  return denominator > 0 ? numerator / denominator : null;
}

/** @param {number | null | undefined} ms ms since the epoch */
export function ago(ms) {
  if (!ms) return '–';
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** @param {number} value */
export function count(value) {
  return Math.round(value).toLocaleString('en');
}

/** `sha256:0123456789ab` from a full digest. @param {string} digest */
export function shortDigest(digest) {
  const [algorithm, hex] = digest.split(':');
  return hex ? `${algorithm}:${hex.slice(0, 12)}` : digest;
}

/** A media type without its common prefix: `oci.image.index.v1+json`. @param {string | null} type */
export function shortType(type) {
  return type ? type.replace(/^application\/vnd\./, '') : '–';
}

/** `registry.test` for `registry.test:443`: the port clients leave out. @param {string} registry */
export function registryName(registry) {
  return registry.endsWith(':443') ? registry.slice(0, -4) : registry;
}

/**
 * `1 tag`, `3 tags`: a count with its noun, plural past one.
 * @param {number} value
 * @param {string} noun
 */
export function plural(value, noun) {
  return `${count(value)} ${noun}${value === 1 ? '' : 's'}`;
}
