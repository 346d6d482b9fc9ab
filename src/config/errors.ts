// ConfigError: every problem found in a configuration, each with the path of the key it is about.

export interface ConfigIssue {
  /** Dotted path of the key, e.g. `upstream.caFiles.0`, or the environment variable's name. */
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[], options?: ErrorOptions) {
    const lines = issues.map((issue) => `  ${issue.path || '(root)'}: ${issue.message}`);
    super(`invalid configuration in ${source}:\n${lines.join('\n')}`, options);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}
