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
import type { HostRules } from '../http/host-rules.ts';
import type { UpstreamRequest, UpstreamResponse } from './client.ts';
import { LoginError } from './errors.ts';

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

export type Send = (request: UpstreamRequest) => Promise<UpstreamResponse>;

/** A token response bigger than this is not one. */
const MAX_TOKEN_BODY = 1024 * 1024;
/** distribution's token spec: a token without expires_in lives 60 s. */
const DEFAULT_TOKEN_SECONDS = 60;

export class SharedLogin {
  readonly #credentials: HostRules<CredentialSettings | null>;
  readonly #tokens = new LRUCache<string, string>({ max: 10_000, ttl: 60_000 });

  /** `credentials` maps a share-policy registry to its credentials (null: share, anonymous). */
  constructor(credentials: HostRules<CredentialSettings | null>) {
    this.#credentials = credentials;
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
    return this.#credentials.match(url.hostname.replace(/^\[|\]$/g, ''), port) ?? undefined;
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
    for (const name of ['service', 'scope'] as const) {
      const value = parsed.params[name];
      if (value !== undefined) realm.searchParams.set(name, value);
    }
    const response = await send({
      origin: realm.origin,
      method: 'GET',
      path: `${realm.pathname}${realm.search}`,
      headers: { authorization: basic, accept: 'application/json' },
    });
    const body = await readSmall(response);
    if (response.statusCode !== 200 || body === undefined) return undefined;
    const token = tokenFrom(body);
    if (!token) return undefined;
    const authorization = `Bearer ${token.value}`;
    // Renewed a little early so a request never goes out with a token about to lapse.
    this.#tokens.set(key, authorization, { ttl: Math.max(1, token.seconds - 10) * 1000 });
    return authorization;
  }
}

/** `scheme` and auth-params of a WWW-Authenticate challenge (the first one). */
export function parseChallenge(
  header: string,
): { scheme: 'bearer' | 'basic'; params: Record<string, string> } | undefined {
  const match = /^\s*(bearer|basic)\b(.*)$/i.exec(header);
  if (!match?.[1]) return undefined;
  const params: Record<string, string> = {};
  for (const param of (match[2] ?? '').matchAll(/([a-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/gi)) {
    if (param[1]) params[param[1].toLowerCase()] = (param[2] ?? param[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { scheme: match[1].toLowerCase() as 'bearer' | 'basic', params };
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

async function readSmall(response: UpstreamResponse): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_TOKEN_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tokenFrom(body: string): { value: string; seconds: number } | undefined {
  try {
    const parsed = JSON.parse(body) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const value = [parsed.token, parsed.access_token].find(
      (t): t is string => typeof t === 'string' && t !== '',
    );
    if (!value) return undefined;
    const seconds =
      typeof parsed.expires_in === 'number' && parsed.expires_in > 0
        ? parsed.expires_in
        : DEFAULT_TOKEN_SECONDS;
    return { value, seconds };
  } catch {
    return undefined;
  }
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
