// Back-off of failing mirrors: a mirror that failed (no answer, 5xx, 429, wrong bytes) is skipped
// for a while, twice as long after each failure in a row up to a cap, and tried again by one
// request when that time is up (the others keep skipping it meanwhile). Keyed by origin: a host
// that is down is down for every registry it mirrors. Pure state over an injected clock.

export interface BackoffOptions {
  readonly now: () => number;
  /** Skipped this long after a first failure. */
  readonly firstMs: number;
  /** The longest a failing mirror is skipped between two tries. */
  readonly maxMs: number;
}

interface State {
  failures: number;
  until: number;
}

export class Backoff {
  readonly #options: BackoffOptions;
  readonly #states = new Map<string, State>();

  constructor(options: BackoffOptions) {
    this.#options = options;
  }

  /**
   * Whether `key` may be asked now. When its back-off is over, the caller is its one try: the
   * next back-off is reserved at once, so concurrent requests do not all pile onto it.
   */
  available(key: string): boolean {
    const state = this.#states.get(key);
    if (!state) return true;
    const now = this.#options.now();
    if (now < state.until) return false;
    state.until = now + this.#delay(state.failures);
    return true;
  }

  /** `key` failed: skipped from now on for its next back-off. Returns it, and whether `key` was up. */
  failed(key: string): { readonly backoffMs: number; readonly wasUp: boolean } {
    const state = this.#states.get(key) ?? { failures: 0, until: 0 };
    state.failures += 1;
    const backoffMs = this.#delay(state.failures);
    state.until = this.#options.now() + backoffMs;
    this.#states.set(key, state);
    return { backoffMs, wasUp: state.failures === 1 };
  }

  /** `key` answered: asked again on every request. Returns whether it was backing off. */
  succeeded(key: string): boolean {
    return this.#states.delete(key);
  }

  #delay(failures: number): number {
    return Math.min(this.#options.firstMs * 2 ** Math.max(0, failures - 1), this.#options.maxMs);
  }
}
