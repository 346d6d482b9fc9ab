// Repository filters (`registries[].allow` / `deny`): which repositories of a registry the proxy
// serves at all. Patterns are repository names with `*` globs that match any characters, `/`
// included (`library/*`, `*/crypto-miner*`). Deny wins; a non-empty allow list admits only what
// it matches. Pure: the registry handler refuses, this only decides and names the rule.
import { isName } from '../oci/reference.ts';

/** Why a repository is refused: the list and the pattern (or, for allow, every pattern). */
export interface FilterRefusal {
  readonly rule: 'deny' | 'allow';
  readonly patterns: readonly string[];
}

export interface RepositoryFilterRules {
  readonly allow?: readonly string[] | undefined;
  readonly deny?: readonly string[] | undefined;
}

/** A pattern is a repository name in which any `*` stands for a run of characters. */
export function isRepositoryPattern(pattern: string): boolean {
  if (pattern === '*') return true;
  return pattern.length > 0 && isName(pattern.replaceAll('*', 'x'));
}

export function globMatches(pattern: string, repository: string): boolean {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`).test(repository);
}

/** undefined: the repository may be served; else the rule that refuses it. */
export function refusalOf(rules: RepositoryFilterRules, repository: string): FilterRefusal | undefined {
  const denied = rules.deny?.find((pattern) => globMatches(pattern, repository));
  if (denied !== undefined) return { rule: 'deny', patterns: [denied] };
  const allow = rules.allow ?? [];
  if (allow.length > 0 && !allow.some((pattern) => globMatches(pattern, repository))) {
    return { rule: 'allow', patterns: allow };
  }
  return undefined;
}

/** The refusal in an operator's words, for the client's error message and the log line. */
export function describeRefusal(host: string, repository: string, refusal: FilterRefusal): string {
  return refusal.rule === 'deny'
    ? `repository ${repository} is denied by this proxy (registries[${host}].deny: "${refusal.patterns[0]}")`
    : `repository ${repository} is not allowed by this proxy (registries[${host}].allow: ${refusal.patterns.map((p) => `"${p}"`).join(', ')})`;
}
