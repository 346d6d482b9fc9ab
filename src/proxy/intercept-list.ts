// Which destinations are intercepted (TLS terminated with a leaf from our CA and handed to the
// registry handler) and which are tunnelled untouched: see HostRules for the entry forms.
import { HostRules } from '../http/host-rules.ts';

export class InterceptList {
  readonly #rules: HostRules<true>;

  constructor(patterns: readonly string[]) {
    this.#rules = new HostRules(patterns.map((pattern) => ({ pattern, value: true as const })));
  }

  /** `host` is normalised (lower case, no trailing dot). */
  matches(host: string, port: number): boolean {
    return this.#rules.match(host, port) === true;
  }
}
