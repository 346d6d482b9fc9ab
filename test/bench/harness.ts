// Repetition and reporting for `npm run bench`: warm-up + runs, median with min–max, the table
// printed to the terminal and the same table as Markdown for README quotes. Knows nothing about
// proxies or registries; scenarios (scenarios/*.ts) hand it numbers.

export interface Counts {
  readonly warmup: number;
  readonly runs: number;
}

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly values: readonly number[];
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error('no values to summarize');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, values };
}

/**
 * Runs each measured side `warmup` times unrecorded, then `runs` times recorded, alternating the
 * sides within each round so that drift (page cache, CPU frequency, other load) hits both alike.
 */
export async function alternate<K extends string>(
  counts: Counts,
  sides: Record<K, () => Promise<number>>,
): Promise<Record<K, Summary>> {
  const keys = Object.keys(sides) as K[];
  const values = Object.fromEntries(keys.map((key) => [key, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < counts.warmup + counts.runs; round++) {
    for (const key of keys) {
      const value = await sides[key]();
      if (round >= counts.warmup) values[key].push(value);
    }
  }
  return Object.fromEntries(keys.map((key) => [key, summarize(values[key])])) as Record<K, Summary>;
}

export interface Row {
  readonly scenario: string;
  readonly pullthrough: string;
  readonly reference: string;
  readonly ratio: string;
  readonly target: string;
  /** Whether the figure meets the target; a miss is reported, never a failure of the run. */
  readonly met: boolean | undefined;
  /** Set when the scenario could not run or gave a wrong answer: the only failures. */
  readonly error?: string;
}

const MB = 1e6;

/** `1,987 (1,950–2,010) MB/s` from bytes per second. */
export function rate(summary: Summary): string {
  const f = (value: number) => Math.round(value / MB).toLocaleString('en-US');
  return `${f(summary.median)} (${f(summary.min)}–${f(summary.max)}) MB/s`;
}

export function ratio(pullthrough: Summary, reference: Summary): string {
  return `${(pullthrough.median / reference.median).toFixed(2)}×`;
}

const HEADER = ['scenario', 'pullthrough median (min–max)', 'reference median (min–max)', 'ratio', 'target'];

function cells(row: Row): string[] {
  const verdict = row.error !== undefined ? 'FAILED' : row.met === false ? 'missed' : row.met ? 'met' : '';
  return [
    row.scenario,
    row.error !== undefined ? `error: ${row.error}` : row.pullthrough,
    row.reference,
    row.ratio,
    verdict ? `${row.target} (${verdict})` : row.target,
  ];
}

/** A plain-text table with aligned columns, for the terminal. */
export function textTable(rows: readonly Row[]): string {
  const lines = [HEADER, ...rows.map(cells)];
  const widths = HEADER.map((_, i) => Math.max(...lines.map((line) => [...(line[i] ?? '')].length)));
  const pad = (line: string[]) => line.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ');
  return [pad(HEADER), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((row) => pad(cells(row)))]
    .map((line) => line.trimEnd())
    .join('\n');
}

/** The same table in Markdown (escaped pipes); prettier aligns it when the file is written. */
export function markdownTable(rows: readonly Row[]): string {
  const line = (items: string[]) => `| ${items.map((item) => item.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(HEADER), line(HEADER.map(() => '---')), ...rows.map((row) => line(cells(row)))].join('\n');
}
