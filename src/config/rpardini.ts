// The environment variables of rpardini/docker-registry-proxy, so that its manifests keep working:
// those with the same meaning here set a key (load.ts applies them, under pullthrough's own names),
// and those with none are named at start, once each, with what to use instead.
// README "Migrating from rpardini/docker-registry-proxy" lists them for operators.
import path from 'node:path';
import type { Notice } from '../log.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** An environment variable and the key it sets. */
export interface EnvKey {
  readonly env: string;
  readonly key: readonly string[];
  /** `nginx-time`: nginx's durations (`60`, `60s`, `10m`, `2w`), made into pullthrough's. */
  readonly kind: 'string' | 'boolean' | 'list' | 'nginx-time';
  /** What a boolean sets the key to, when that is not the boolean itself. */
  readonly as?: (value: boolean) => unknown;
  /** Applies only when this holds of the environment (otherwise it is reported as ignored). */
  readonly when?: { readonly test: (env: Env) => boolean; readonly otherwise: string };
}

const TRUE = new Set(['true', '1', 'yes', 'on']);

const manifestCacheOn = {
  test: (env: Env) => TRUE.has((env['ENABLE_MANIFEST_CACHE'] ?? '').toLowerCase()),
  otherwise: 'it takes effect only with ENABLE_MANIFEST_CACHE=true, as in rpardini',
};

/** rpardini's variables that set a key; applied before pullthrough's own, which win. */
export const RPARDINI_ENV_KEYS: readonly EnvKey[] = [
  { env: 'CACHE_MAX_SIZE', key: ['cache', 'maxSize'], kind: 'string' },
  { env: 'CACHE_INACTIVE', key: ['cache', 'inactive'], kind: 'nginx-time' },
  // rpardini's switch: tags served from the cache for its default tier, 1h.
  { env: 'ENABLE_MANIFEST_CACHE', key: ['cache', 'tagTtl'], kind: 'boolean', as: (on) => (on ? '1h' : '0s') },
  // Its default tier is every tag here: there are no tiers.
  { env: 'MANIFEST_CACHE_DEFAULT_TIME', key: ['cache', 'tagTtl'], kind: 'nginx-time', when: manifestCacheOn },
  { env: 'VERIFY_SSL', key: ['upstream', 'verifyTls'], kind: 'boolean' },
  { env: 'ALLOW_PUSH', key: ['allowPush'], kind: 'boolean' },
  { env: 'CLIENT_HEADER_TIMEOUT', key: ['limits', 'headersTimeout'], kind: 'nginx-time' },
  { env: 'KEEPALIVE_TIMEOUT', key: ['limits', 'idleTimeout'], kind: 'nginx-time' },
  { env: 'PROXY_CONNECT_TIMEOUT', key: ['upstream', 'connectTimeout'], kind: 'nginx-time' },
  { env: 'PROXY_READ_TIMEOUT', key: ['upstream', 'bodyTimeout'], kind: 'nginx-time' },
  // Its CONNECT module's idle limit between reads on either side: a tunnel's idle time.
  { env: 'PROXY_CONNECT_READ_TIMEOUT', key: ['limits', 'tunnelIdleTimeout'], kind: 'nginx-time' },
  { env: 'DISABLE_IPV6', key: ['proxy', 'ipv6'], kind: 'boolean', as: (disabled) => !disabled },
];

/** rpardini's variables that load.ts reads itself (lists of hosts and credentials). */
const READ_BY_LOAD = [
  'REGISTRIES',
  'AUTH_REGISTRIES',
  'AUTH_REGISTRIES_DELIMITER',
  'AUTH_REGISTRY_DELIMITER',
];

const NO_TIERS =
  'tags are not sorted into tiers here: every tag is served for cache.tagTtl ' +
  '(MANIFEST_CACHE_DEFAULT_TIME), then revalidated with a HEAD, which Docker Hub does not count as a pull';
const NO_DEBUG_IMAGE = 'there is no debug image: LOG_LEVEL=debug logs every request and what the cache did';
const CA_FILES =
  'the CA is ca.crt and ca.key in ca.dir (PULLTHROUGH_CA_DIR): put both there under those names';

/** rpardini's variables with no meaning here, and why. */
const IGNORED: Readonly<Record<string, string>> = {
  MANIFEST_CACHE_PRIMARY_REGEX: NO_TIERS,
  MANIFEST_CACHE_PRIMARY_TIME: NO_TIERS,
  MANIFEST_CACHE_SECONDARY_REGEX: NO_TIERS,
  MANIFEST_CACHE_SECONDARY_TIME: NO_TIERS,
  SEND_TIMEOUT: 'no equivalent setting: clients are not timed out while they read a response',
  CLIENT_BODY_TIMEOUT: 'no equivalent setting: request bodies are streamed upstream as they come',
  PROXY_SEND_TIMEOUT: 'no equivalent setting: request bodies are streamed upstream as they come',
  PROXY_CONNECT_CONNECT_TIMEOUT: 'tunnels connect within upstream.connectTimeout (PROXY_CONNECT_TIMEOUT)',
  PROXY_CONNECT_SEND_TIMEOUT:
    'a tunnel closes after limits.tunnelIdleTimeout without bytes either way (PROXY_CONNECT_READ_TIMEOUT)',
  PROXY_REQUEST_BUFFERING: 'request bodies are always streamed, over HTTP/1.1 (as with false)',
  CA_SRL_FILE: 'leaf certificates get random serial numbers: there is no serial file',
  DEBUG: NO_DEBUG_IMAGE,
  DEBUG_HUB: NO_DEBUG_IMAGE,
  DEBUG_NGINX: NO_DEBUG_IMAGE,
};

/** The rpardini variables set in `env`: the key each sets here, or why it sets none. */
export function rpardiniEnv(env: Env): {
  mapped: Array<{ env: string; key: string }>;
  ignored: Array<{ env: string; why: string }>;
} {
  const isSet = (name: string) => (env[name] ?? '') !== '';
  const mapped: Array<{ env: string; key: string }> = [];
  const ignored: Array<{ env: string; why: string }> = [];
  for (const entry of RPARDINI_ENV_KEYS) {
    if (!isSet(entry.env)) continue;
    if (entry.when && !entry.when.test(env)) ignored.push({ env: entry.env, why: entry.when.otherwise });
    else mapped.push({ env: entry.env, key: entry.key.join('.') });
  }
  for (const name of READ_BY_LOAD) {
    if (isSet(name))
      mapped.push({ env: name, key: name.startsWith('AUTH') ? 'upstream.credentials' : 'registries' });
  }
  const caDir = caDirOf(env);
  for (const name of ['CA_CRT_FILE', 'CA_KEY_FILE']) {
    if (!isSet(name)) continue;
    if (caDir === undefined) ignored.push({ env: name, why: CA_FILES });
    else mapped.push({ env: name, key: 'ca.dir' });
  }
  for (const [name, why] of Object.entries(IGNORED)) if (isSet(name)) ignored.push({ env: name, why });
  return { mapped, ignored };
}

/** One warning per rpardini variable that is set and means nothing here. */
export function rpardiniNotices(env: Env): Notice[] {
  return rpardiniEnv(env).ignored.map(({ env: name, why }) => ({
    level: 'warn',
    fields: { env: name },
    message: `${name} is ignored: ${why}`,
  }));
}

/**
 * The directory of CA_CRT_FILE and CA_KEY_FILE when they are pullthrough's layout (ca.crt and
 * ca.key side by side), so that ca.dir can point there; undefined otherwise.
 */
export function caDirOf(env: Env): string | undefined {
  const crt = env['CA_CRT_FILE'];
  const key = env['CA_KEY_FILE'];
  if (!crt || !key) return undefined;
  const dir = path.dirname(crt);
  const sameLayout = path.basename(crt) === 'ca.crt' && path.basename(key) === 'ca.key';
  return sameLayout && path.dirname(key) === dir ? dir : undefined;
}

/**
 * nginx's time (`90`, `90s`, `10m`, `2h`, `60d`, `2w`, `1M`, `1y`; a bare number is seconds) in
 * pullthrough's units; anything else is passed on for the schema to refuse by name.
 */
export function fromNginxTime(value: string): string {
  const match = /^\s*(\d+)\s*(ms|s|m|h|d|w|M|y)?\s*$/.exec(value);
  if (!match) return value;
  const amount = Number(match[1]);
  switch (match[2]) {
    case undefined:
      return `${amount}s`;
    case 'w':
      return `${amount * 7}d`;
    case 'M':
      return `${amount * 30}d`;
    case 'y':
      return `${amount * 365}d`;
    default:
      return `${amount}${match[2]}`;
  }
}
