// How a schema issue reads to an operator: the key's path, what was expected and what was found,
// in the words of YAML ("a mapping", "a list", "true or false"), never zod's own wording. Values
// under secret keys (passwords, passphrases, tokens) are described by their kind, never echoed.
import type { z } from 'zod';
import type { ConfigIssue } from './errors.ts';
import { objectAt } from './walk.ts';

const SECRET_KEY = /password|passphrase|token|secret/i;

/** `value` as the message shows it: `"nope"`, `3128`, `true`, `a list`, `a mapping`, `nothing`. */
export function describeValue(value: unknown, secret = false): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (secret) return typeof value === 'string' ? 'a string' : `a ${typeof value}`;
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return `a ${typeof value}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  array: 'a list',
};

/**
 * One issue of `schema` in the config's language. `fromEnv` names the variable that set a key,
 * so that an issue with it says where the value came from.
 */
export function describeIssue(
  issue: z.core.$ZodIssue,
  schema: z.ZodType,
  fromEnv: ReadonlyMap<string, string>,
): ConfigIssue {
  const dotted = issue.path.map(String).join('.');
  const envName = [...fromEnv].find(([key]) => dotted === key || dotted.startsWith(`${key}.`))?.[1];
  const secret = issue.path.some((part) => typeof part === 'string' && SECRET_KEY.test(part));
  return {
    path: envName ? `${dotted} (from ${envName})` : dotted,
    message: messageOf(issue, schema, secret),
    // An unknown key is on its own line, not its mapping's.
    at: issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys.slice(0, 1)] : issue.path,
  };
}

function messageOf(issue: z.core.$ZodIssue, schema: z.ZodType, secret: boolean): string {
  const found = 'input' in issue ? describeValue(issue.input, secret) : undefined;
  switch (issue.code) {
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      return found === undefined ? `missing: expected ${expected}` : `expected ${expected}, found ${found}`;
    }
    case 'invalid_value':
      return `expected one of ${issue.values.map(String).join(', ')}, found ${found ?? 'nothing'}`;
    case 'too_small':
    case 'too_big':
      return boundMessage(issue, found);
    case 'unrecognized_keys':
      return unknownKeysMessage(issue.keys, keysAt(schema, issue.path));
    case 'invalid_union': {
      const kinds = issue.errors
        .flat()
        .flatMap((inner) => (inner.code === 'invalid_type' ? [inner.expected] : []));
      const expected = [...new Set(kinds)].map((kind) => EXPECTED[kind] ?? kind).join(' or ');
      return `expected ${expected || 'another kind of value'}, found ${found ?? 'nothing'}`;
    }
    case 'custom':
      return issue.message; // written by schema.ts in these words already
    default:
      return `${found ?? 'this value'} is not valid here`;
  }
}

function boundMessage(
  issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig,
  found: string | undefined,
): string {
  const small = issue.code === 'too_small';
  const limit = small ? issue.minimum : issue.maximum;
  if (issue.origin === 'string' && small && Number(limit) === 1) return 'must not be empty';
  const what = issue.origin === 'array' ? 'a list' : issue.origin === 'string' ? 'a string' : 'a number';
  const unit = issue.origin === 'array' ? ' entries' : issue.origin === 'string' ? ' characters' : '';
  const bound = `${small ? 'at least' : 'at most'} ${String(limit)}${unit}`;
  return `expected ${what} of ${bound}, found ${found ?? 'nothing'}`;
}

function unknownKeysMessage(keys: readonly string[], known: readonly string[] | undefined): string {
  const list = keys.map((key) => `"${key}"`).join(', ');
  const hints = keys.flatMap((key) => {
    const close = known?.find((candidate) => isClose(key, candidate));
    return close ? [`"${close}"`] : [];
  });
  if (hints.length > 0)
    return `unknown key${keys.length > 1 ? 's' : ''} ${list} (did you mean ${hints.join(', ')}?)`;
  const here = known && known.length > 0 ? ` (keys here: ${known.join(', ')})` : '';
  return `unknown key${keys.length > 1 ? 's' : ''} ${list}${here}`;
}

/** A likely typo: the same but for case, or at most two edits apart (for names of 4+ letters). */
function isClose(typed: string, known: string): boolean {
  if (typed.toLowerCase() === known.toLowerCase()) return true;
  return typed.length >= 4 && editDistance(typed.toLowerCase(), known.toLowerCase()) <= 2;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The keys a mapping at `path` of `schema` takes. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  const node = objectAt(schema, path);
  return node ? Object.keys(node.shape) : undefined;
}
