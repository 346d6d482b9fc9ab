// Logging in to registries whose policy is `share`, with the configured credentials, for
// clients that send none: the proxy answers upstream's challenge itself (a Bearer token from the
// challenge's realm, or Basic), caches the token per origin and scope until it expires, and
// retries. Only GET and HEAD are retried; only the registry's own origin ever gets the
// credentials (redirect targets never do: fetch.ts drops Authorization across origins), and the
// realm must be https. Credentials are read when a login needs them: a password file is read
// again each time (rotated secrets), a docker credential helper is run (expiring tokens, ECR).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import type { UpstreamRequest, UpstreamResponse } from './types.ts';
import { LoginError } from './errors.ts';
import { requestToken, type Send } from './token-response.ts';

/** Where a registry's credentials come from (config `upstream.credentials`, validated there). */
export interface CredentialSettings {
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly passwordFile?: string | undefined;
  readonly helper?: string | undefined;
}

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** The credentials the proxy logs in with for a registry host and port; undefined: it does not. */
export type CredentialsOf = (host: string, port: number) => CredentialSettings | undefined;

export type { Send } from './token-response.ts';

export class SharedLogin {
  readonly #credentialsOf: CredentialsOf;
  readonly #tokens = new LRUCache<string, string>({ max: 10_000, ttl: 60_000 });

  constructor(credentialsOf: CredentialsOf) {
    this.#credentialsOf = credentialsOf;
  }

  /** Sends `request`, logging in for it first or after a challenge when its registry shares. */
  async send(request: UpstreamRequest, send: Send): Promise<UpstreamResponse> {
    const settings = this.#settingsFor(request);
    if (!settings) return send(request);
    // A client asking a token server itself gets a token of the configured account, as with
    // rpardini's proxy (which adds Basic credentials to Docker Hub's token requests).
    if (isTokenPath(request.path)) {
      const credentials = await this.#credentialsFor(request, settings);
      return send(withAuthorization(request, basicOf(credentials)));
    }
    const cached = this.#tokens.get(tokenKey(request.origin, scopeOf(request.path)));
    const first = cached ? withAuthorization(request, cached) : request;
    const response = await send(first);
    if (response.statusCode !== 401) return response;
    const challenge = response.headers['www-authenticate'];
    if (typeof challenge !== 'string') return response;
    const authorization = await this.#login(request, challenge, settings, send);
    if (authorization === undefined) return response;
    await response.body.dump();
    return send(withAuthorization(request, authorization));
  }

  /** The credential settings when the proxy logs in for this request: GET/HEAD, no client credential. */
  #settingsFor(request: UpstreamRequest): CredentialSettings | undefined {
    if (request.method !== 'GET' && request.method !== 'HEAD') return undefined;
    if (request.headers['authorization'] !== undefined || request.body) return undefined;
    const url = new URL(request.origin);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return this.#credentialsOf(url.hostname.replace(/^\[|\]$/g, ''), port);
  }

  async #credentialsFor(request: UpstreamRequest, settings: CredentialSettings): Promise<Credentials> {
    try {
      return await readCredentials(settings, new URL(request.origin).host);
    } catch (error) {
      throw new LoginError(request.origin, (error as NodeJS.ErrnoException).code ?? (error as Error).message);
    }
  }

  async #login(
    request: UpstreamRequest,
    challenge: string,
    settings: CredentialSettings,
    send: Send,
  ): Promise<string | undefined> {
    const parsed = parseChallenge(challenge);
    if (!parsed) return undefined;
    const basic = basicOf(await this.#credentialsFor(request, settings));
    const scope = parsed.params['scope'] ?? '';
    const key = tokenKey(request.origin, scope);
    if (parsed.scheme === 'basic') {
      this.#tokens.set(key, basic, { ttl: 3_600_000 });
      return basic;
    }
    const realm = URL.parse(parsed.params['realm'] ?? '');
    if (realm?.protocol !== 'https:') return undefined;
    const token = await requestToken(send, realm, parsed.params, basic);
    if (!token) return undefined;
    this.#tokens.set(key, token.authorization, { ttl: token.ttlMs });
    return token.authorization;
  }
}

interface Challenge {
  readonly scheme: string;
  readonly params: Record<string, string>;
}

/**
 * The first Bearer or Basic challenge of a WWW-Authenticate header, with its auth-params. A header
 * may hold several challenges (`Bearer realm="a",service="b", Basic realm="c"`): commas separate
 * both challenges and parameters, and a new challenge starts at a token not followed by `=`
 * (RFC 9110 §11.6.1). Each challenge keeps its own parameters.
 */
export function parseChallenge(
  header: string,
): { scheme: 'bearer' | 'basic'; params: Record<string, string> } | undefined {
  const found = parseChallenges(header).find((c) => c.scheme === 'bearer' || c.scheme === 'basic');
  return found && { scheme: found.scheme as 'bearer' | 'basic', params: found.params };
}

// One step of a WWW-Authenticate header: a parameter (name `=` quoted-string or bare value) or a
// scheme with its optional token68 (`Negotiate abc==`). Sticky: each step starts where the last ended.
const TCHARS = "[!#$%&'*+.^_`|~0-9a-z-]+";
const CHALLENGE_PART = new RegExp(
  `[\\s,]*(?:(${TCHARS})\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^\\s,"]+))` +
    `|(${TCHARS})(?:\\s+[a-z0-9._~+/-]+=*(?=\\s*(?:,|$)))?)`,
  'giy',
);

/** Every challenge of a WWW-Authenticate header, schemes lower-cased; stops at what it cannot read. */
function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  CHALLENGE_PART.lastIndex = 0;
  for (let part = CHALLENGE_PART.exec(header); part; part = CHALLENGE_PART.exec(header)) {
    const [, name, quoted, bare, scheme] = part;
    const current = challenges.at(-1);
    if (scheme !== undefined) challenges.push({ scheme: scheme.toLowerCase(), params: {} });
    else if (name !== undefined && current !== undefined)
      current.params[name.toLowerCase()] = quoted?.replace(/\\(.)/g, '$1') ?? bare ?? '';
  }
  return challenges;
}

/** The token scope a registry asks for on this path: `repository:<name>:pull`, or none. */
export function scopeOf(path: string): string {
  const match = /^\/v2\/(.+?)\/(?:blobs|manifests|tags|referrers)\//.exec(path);
  return match?.[1] ? `repository:${match[1]}:pull` : '';
}

function basicOf(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/** A token server's endpoint, asked by the client itself (distribution token auth's query). */
function isTokenPath(path: string): boolean {
  const query = URL.parse(path, 'https://x')?.searchParams;
  return query !== undefined && (query.has('service') || query.has('scope'));
}

function tokenKey(origin: string, scope: string): string {
  return `${origin} ${scope}`;
}

function withAuthorization(request: UpstreamRequest, authorization: string): UpstreamRequest {
  return { ...request, headers: { ...request.headers, authorization } };
}

/** Reads the configured credentials now: a password, a password file, or a credential helper. */
export async function readCredentials(settings: CredentialSettings, host: string): Promise<Credentials> {
  if (settings.helper !== undefined) return runHelper(settings.helper, host);
  if (settings.passwordFile !== undefined) {
    const text = await readFile(settings.passwordFile, 'utf8');
    return { username: settings.username ?? '', password: text.split(/\r?\n/)[0] ?? '' };
  }
  return { username: settings.username ?? '', password: settings.password ?? '' };
}

/** docker-credential-helpers protocol: `<helper> get`, the server on stdin, JSON {Username, Secret} out. */
function runHelper(helper: string, host: string): Promise<Credentials> {
  return new Promise((resolve, reject) => {
    const child = execFile(helper, ['get'], { timeout: 30_000, maxBuffer: 1024 * 1024 }, (error, stdout) => {
      if (error) {
        // The helper's output may hold a secret: only its exit is reported.
        reject(new Error(`credential helper ${helper} failed (${error.code ?? error.signal ?? 'error'})`));
        return;
      }
      try {
        const parsed = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
        if (typeof parsed.Username !== 'string' || typeof parsed.Secret !== 'string')
          throw new Error('fields');
        resolve({ username: parsed.Username, password: parsed.Secret });
      } catch {
        reject(new Error(`credential helper ${helper} did not print {"Username","Secret"} JSON`));
      }
    });
    // A helper that exits without reading stdin must not turn into an unhandled EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(host);
  });
}
