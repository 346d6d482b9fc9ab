// ConfigError: every problem found in a configuration, each with the path of the key it is about
// and, for a key of a YAML file, its line.

export interface ConfigIssue {
  /** Dotted path of the key, e.g. `upstream.caFiles.0`, or the environment variable's name. */
  readonly path: string;
  /** What was expected and what was found; may run over several lines (a YAML code frame). */
  readonly message: string;
  /** The key's path as a list, to find its line in the file. */
  readonly at?: readonly PropertyKey[];
  /** Line of the key in the YAML file, when it came from one. */
  readonly line?: number;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  /** The file, or "the environment". */
  readonly source: string;
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[], options?: ErrorOptions) {
    // `  line 12: limits.idleTimeout: <message>`; a code frame under it, indented further.
    const lines = issues.map((issue) => {
      const line = issue.line === undefined ? '' : `line ${issue.line}: `;
      const path = issue.path === '' ? '' : `${issue.path}: `;
      return `  ${line}${path}${issue.message.replaceAll('\n', '\n    ')}`;
    });
    super(`invalid configuration in ${source}:\n${lines.join('\n')}`, options);
    this.name = 'ConfigError';
    this.source = source;
    this.issues = issues;
  }
}
