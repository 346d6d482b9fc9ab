// Rules keyed by destination: entries are `host`, `host:port` or `*.domain[:port]`, and an entry
// without a port matches port 443 only (a registry on another port matches only on the port
// that is listed). Used for the intercept list and for per-registry settings.

/** Docker Hub is reached under three names; `docker.io` stands for all of them. */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  'docker.io': ['registry-1.docker.io', 'index.docker.io', 'auth.docker.io'],
};

interface Rule<T> {
  readonly host: string; // exact host, or the suffix ".domain" for a wildcard
  readonly wildcard: boolean;
  readonly port: number;
  readonly value: T;
}

export class HostRules<T> {
  readonly #exact: ReadonlyArray<Rule<T>>;
  readonly #wildcards: ReadonlyArray<Rule<T>>;

  /** Patterns are validated by the config schema; malformed ones are ignored here. */
  constructor(entries: ReadonlyArray<{ readonly pattern: string; readonly value: T }>) {
    const rules: Array<Rule<T>> = [];
    for (const { pattern, value } of entries) {
      const match = /^(\*\.)?([^:]+)(?::(\d+))?$/.exec(pattern.toLowerCase());
      if (!match?.[2]) continue;
      const port = match[3] === undefined ? 443 : Number(match[3]);
      const wildcard = match[1] !== undefined;
      for (const host of wildcard ? [match[2]] : (ALIASES[match[2]] ?? [match[2]])) {
        rules.push({ host: wildcard ? `.${host}` : host, wildcard, port, value });
      }
    }
    this.#exact = rules.filter((rule) => !rule.wildcard);
    this.#wildcards = rules.filter((rule) => rule.wildcard);
  }

  /** The value of the first exact rule for `host:port`, else of the first matching wildcard. */
  match(host: string, port: number): T | undefined {
    const exact = this.#exact.find((rule) => rule.port === port && host === rule.host);
    if (exact) return exact.value;
    return this.#wildcards.find((rule) => rule.port === port && host.endsWith(rule.host))?.value;
  }
}
