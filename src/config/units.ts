// Parsers for the human units used in config.yaml and environment variables: sizes
// ("32GiB", "32g", "500MB") and durations ("10s", "5m", "60d", "250ms"). Pure, no I/O.

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** Bytes from "32GiB", "32g" (nginx style, binary), "500MB" (decimal) or a plain number. */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input);
  if (!match) return undefined;
  const factor = SIZE_UNITS[(match[2] ?? '').toLowerCase()];
  if (factor === undefined) return undefined;
  return Math.round(Number(match[1]) * factor);
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Milliseconds from "250ms", "10s", "5m", "1h", "60d". A bare number is not accepted: say the unit. */
export function parseDuration(input: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(input);
  if (!match) return undefined;
  const factor = DURATION_UNITS[(match[2] ?? '').toLowerCase()];
  return factor === undefined ? undefined : Math.round(Number(match[1]) * factor);
}
