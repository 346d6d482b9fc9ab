// Which destinations are intercepted (TLS terminated with a leaf from our CA and handed to the
// registry handler) and which are tunnelled untouched. Entries are `host`, `host:port` or
// `*.domain[:port]`; an entry without a port matches port 443 only, so a registry on another
// port is intercepted only on the port that is listed.

/** Docker Hub is reached under three names; `docker.io` in the list stands for all of them. */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  'docker.io': ['registry-1.docker.io', 'index.docker.io', 'auth.docker.io'],
};

interface Rule {
  readonly host: string; // exact host, or the suffix ".domain" for a wildcard
  readonly wildcard: boolean;
  readonly port: number;
}

export class InterceptList {
  readonly #rules: readonly Rule[];

  /** `entries` are validated by the config schema; malformed ones are ignored here. */
  constructor(entries: readonly string[]) {
    const rules: Rule[] = [];
    for (const entry of entries) {
      const match = /^(\*\.)?([^:]+)(?::(\d+))?$/.exec(entry.toLowerCase());
      if (!match?.[2]) continue;
      const port = match[3] === undefined ? 443 : Number(match[3]);
      const wildcard = match[1] !== undefined;
      for (const host of wildcard ? [match[2]] : (ALIASES[match[2]] ?? [match[2]])) {
        rules.push({ host: wildcard ? `.${host}` : host, wildcard, port });
      }
    }
    this.#rules = rules;
  }

  /** `host` is normalised (lower case, no trailing dot). */
  matches(host: string, port: number): boolean {
    return this.#rules.some(
      (rule) => rule.port === port && (rule.wildcard ? host.endsWith(rule.host) : host === rule.host),
    );
  }
}
