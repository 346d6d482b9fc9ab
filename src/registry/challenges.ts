// What upstream asks clients to authenticate with (its WWW-Authenticate challenge), remembered
// per registry so that, while it cannot be reached, the proxy can ask the same. A client told to
// authenticate fetches a token, which tokens.ts answers offline with a placeholder that carries
// its credential's grants; a client told nothing goes on anonymously and is refused private
// content it may have. Kept only when the token realm is a host the proxy intercepts (and so
// answers offline): with any other realm, clients are better off anonymous. Memory only.

/** Registries remembered: far more than any proxy intercepts; bounds a hostile upstream. */
const MAX_HOSTS = 1000;

interface Challenge {
  readonly scheme: string;
  readonly params: ReadonlyMap<string, string>;
}

export class Challenges {
  readonly #byHost = new Map<string, Challenge>();
  readonly #intercepts: (host: string, port: number) => boolean;

  /** `intercepts`: whether the proxy answers for `host:port` (its token realm, offline). */
  constructor(intercepts: (host: string, port: number) => boolean) {
    this.#intercepts = intercepts;
  }

  /** Upstream `host` answered a 401 with this WWW-Authenticate. */
  remember(host: string, header: string): void {
    const challenge = parseChallenge(header);
    if (challenge === undefined || !this.#answerable(challenge)) return;
    if (!this.#byHost.has(host) && this.#byHost.size >= MAX_HOSTS) return;
    this.#byHost.set(host, challenge);
  }

  /** The challenge for the /v2/ ping: no scope, as registries send it there. */
  forPing(host: string): string | undefined {
    const challenge = this.#byHost.get(host);
    return challenge && format(challenge, undefined);
  }

  /** The challenge for a request about `name`, with its pull scope. */
  forRepository(host: string, name: string): string | undefined {
    const challenge = this.#byHost.get(host);
    return challenge && format(challenge, `repository:${name}:pull`);
  }

  #answerable({ scheme, params }: Challenge): boolean {
    if (scheme === 'basic') return true;
    const realm = URL.parse(params.get('realm') ?? '');
    if (scheme !== 'bearer' || realm === null || realm.protocol !== 'https:') return false;
    const port = realm.port === '' ? 443 : Number(realm.port);
    return this.#intercepts(realm.hostname.replace(/^\[|\]$/g, ''), port);
  }
}

/** `Bearer realm="…",service="…"` (RFC 9110 §11.6.1, one challenge, quoted or token values). */
function parseChallenge(header: string): Challenge | undefined {
  const match = /^\s*(Bearer|Basic)\b\s*(.*)$/i.exec(header);
  if (!match?.[1]) return undefined;
  const params = new Map<string, string>();
  for (const [, key = '', quoted, token] of (match[2] ?? '').matchAll(
    /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))/g,
  )) {
    params.set(key.toLowerCase(), quoted === undefined ? (token ?? '') : quoted.replace(/\\(.)/g, '$1'));
  }
  return { scheme: match[1].toLowerCase(), params };
}

function format({ scheme, params }: Challenge, scope: string | undefined): string {
  if (scheme === 'basic') return `Basic realm="${params.get('realm') ?? 'registry'}"`;
  const fields = [
    ['realm', params.get('realm')],
    ['service', params.get('service')],
    ['scope', scope],
  ];
  const text = fields
    .filter((field): field is [string, string] => field[1] !== undefined)
    .map(([key, value]) => `${key}="${value.replace(/["\\]/g, '\\$&')}"`)
    .join(',');
  return `Bearer ${text}`;
}
