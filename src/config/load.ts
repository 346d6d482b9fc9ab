// Reads a configuration: config.yaml (optional) + environment variables over it, validated by
// schema.ts into one frozen Config. Every problem is reported at once, by path, as a ConfigError.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { DEFAULT_REGISTRIES, configSchema, type Config } from './schema.ts';

type Env = Readonly<Record<string, string | undefined>>;
type Raw = Record<string, unknown>;

/**
 * Environment variables and the key each one sets. The rpardini/docker-registry-proxy names are
 * accepted with the same meaning, so existing manifests keep working.
 */
interface EnvKey {
  readonly env: string;
  readonly key: readonly string[];
  readonly kind: 'string' | 'boolean' | 'list';
  /** What a boolean sets the key to, when that is not the boolean itself. */
  readonly as?: (value: boolean) => unknown;
}

const ENV_KEYS: readonly EnvKey[] = [
  { env: 'PULLTHROUGH_LISTEN', key: ['listen'], kind: 'string' },
  { env: 'PULLTHROUGH_CA_DIR', key: ['ca', 'dir'], kind: 'string' },
  { env: 'CA_KEY_PASSPHRASE', key: ['ca', 'passphrase'], kind: 'string' },
  { env: 'CA_KEY_PASSPHRASE_FILE', key: ['ca', 'passphraseFile'], kind: 'string' },
  { env: 'PULLTHROUGH_CACHE_DIR', key: ['cache', 'dir'], kind: 'string' },
  { env: 'CACHE_MAX_SIZE', key: ['cache', 'maxSize'], kind: 'string' },
  { env: 'CACHE_INACTIVE', key: ['cache', 'inactive'], kind: 'string' },
  // rpardini's switch: tags served from the cache for its default tier, 1h.
  { env: 'ENABLE_MANIFEST_CACHE', key: ['cache', 'tagTtl'], kind: 'boolean', as: (on) => (on ? '1h' : '0s') },
  { env: 'VERIFY_SSL', key: ['upstream', 'verifyTls'], kind: 'boolean' },
  { env: 'ALLOW_PUSH', key: ['allowPush'], kind: 'boolean' },
  { env: 'LOG_LEVEL', key: ['log', 'level'], kind: 'string' },
  { env: 'PULLTHROUGH_SHUTDOWN_TIMEOUT', key: ['shutdownTimeout'], kind: 'string' },
  { env: 'PULLTHROUGH_HTPASSWD', key: ['proxy', 'htpasswd'], kind: 'string' },
  { env: 'PULLTHROUGH_ALLOW_CLIENTS', key: ['proxy', 'allowClients'], kind: 'list' },
];

/** Environment variables that give registries a policy (added to `registries` when absent). */
const POLICY_ENV: ReadonlyArray<readonly [string, 'share' | 'no-cache']> = [
  ['SHARE_REGISTRIES', 'share'],
  ['NO_CACHE_REGISTRIES', 'no-cache'],
];

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

export interface LoadOptions {
  /** Path of config.yaml; when undefined only defaults and the environment apply. */
  readonly file?: string | undefined;
  readonly env?: Env;
}

export async function loadConfig(options: LoadOptions = {}): Promise<Config> {
  const env = options.env ?? process.env;
  let raw: unknown = {};
  if (options.file !== undefined) {
    let text: string;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new ConfigError(options.file, [{ path: '', message: `cannot read the file (${reason})` }]);
    }
    raw = parseYamlText(text, options.file);
  }
  const baseDir = options.file === undefined ? process.cwd() : path.dirname(path.resolve(options.file));
  const config = parseConfig(raw, env, options.file ?? 'the environment', baseDir);
  return deepFreeze(await resolveSecrets(config, options.file ?? 'the environment'));
}

function parseYamlText(text: string, file: string): unknown {
  try {
    return parseYaml(text) ?? {};
  } catch (error) {
    const message = error instanceof YAMLParseError ? error.message.split('\n')[0] : String(error);
    throw new ConfigError(file, [{ path: '', message: `not valid YAML: ${message}` }]);
  }
}

/** Pure: raw YAML value + environment → validated Config with absolute paths. */
export function parseConfig(raw: unknown, env: Env, source: string, baseDir: string): Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(source, [{ path: '', message: 'expected a mapping of keys' }]);
  }
  const merged = structuredClone(raw) as Raw;
  const issues: ConfigIssue[] = [];
  const fromEnv = new Map<string, string>();
  for (const { env: name, key, kind, as } of ENV_KEYS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (kind === 'boolean') {
      const lower = value.toLowerCase();
      if (!TRUE.has(lower) && !FALSE.has(lower)) {
        issues.push({ path: name, message: `"${value}" is not true or false` });
        continue;
      }
      setPath(merged, key, as ? as(TRUE.has(lower)) : TRUE.has(lower));
    } else if (kind === 'list') {
      setPath(merged, key, value.split(/[\s,]+/).filter(Boolean));
    } else {
      setPath(merged, key, value);
    }
    fromEnv.set(key.join('.'), name);
  }
  const extraRegistries = (env['REGISTRIES'] ?? '').split(/\s+/).filter(Boolean);
  if (extraRegistries.length > 0) {
    const current = merged['registries'];
    const base: unknown[] = Array.isArray(current) ? (current as unknown[]) : [...DEFAULT_REGISTRIES];
    merged['registries'] = [...base, ...extraRegistries];
    fromEnv.set('registries', 'REGISTRIES');
  }
  for (const [name, policy] of POLICY_ENV) {
    const hosts = (env[name] ?? '').split(/\s+/).filter(Boolean);
    if (hosts.length === 0) continue;
    merged['registries'] = withPolicy(merged['registries'], hosts, policy);
    fromEnv.set('registries', name);
  }
  const credentials = parseAuthRegistries(env, issues);
  if (credentials.length > 0) {
    const upstream = (merged['upstream'] ??= {}) as Raw;
    const current = Array.isArray(upstream['credentials']) ? (upstream['credentials'] as unknown[]) : [];
    upstream['credentials'] = [...current, ...credentials];
    fromEnv.set('upstream.credentials', 'AUTH_REGISTRIES');
  }

  const result = configSchema.safeParse(merged);
  if (!result.success) issues.push(...result.error.issues.map((issue) => describeIssue(issue, fromEnv)));
  if (issues.length > 0 || !result.success) throw new ConfigError(source, issues);

  const config = result.data;
  const registries = firstPerHost(config.registries);
  const credentialIssues = config.upstream.credentials.flatMap((credential, index) =>
    registries.some((registry) => registry.host === credentialHost(credential.host))
      ? []
      : [
          {
            path: `upstream.credentials.${index}.host${fromEnv.has('upstream.credentials') ? ' (from AUTH_REGISTRIES)' : ''}`,
            message: `"${credential.host}" is not in registries`,
          },
        ],
  );
  if (credentialIssues.length > 0) throw new ConfigError(source, credentialIssues);
  const resolve = (p: string) => path.resolve(baseDir, p);
  return {
    ...config,
    registries,
    ca: {
      ...config.ca,
      dir: resolve(config.ca.dir),
      passphraseFile: config.ca.passphraseFile === null ? null : resolve(config.ca.passphraseFile),
    },
    cache: { ...config.cache, dir: resolve(config.cache.dir) },
    upstream: {
      ...config.upstream,
      caFiles: config.upstream.caFiles.map(resolve),
      credentials: config.upstream.credentials.map((credential) => ({
        ...credential,
        host: credentialHost(credential.host),
        ...(credential.passwordFile === undefined ? {} : { passwordFile: resolve(credential.passwordFile) }),
      })),
    },
    proxy: {
      ...config.proxy,
      htpasswd: config.proxy.htpasswd === null ? null : resolve(config.proxy.htpasswd),
    },
  };
}

/** Docker Hub's credentials are given for its token host (rpardini: auth.docker.io); they are Docker Hub's. */
const DOCKER_HUB_NAMES = new Set(['auth.docker.io', 'registry-1.docker.io', 'index.docker.io']);

function credentialHost(host: string): string {
  return DOCKER_HUB_NAMES.has(host) ? 'docker.io' : host;
}

/** `registries` with `policy` set on each of `hosts`, appending the hosts not listed yet. */
function withPolicy(current: unknown, hosts: readonly string[], policy: string): unknown[] {
  const list: unknown[] = Array.isArray(current) ? [...(current as unknown[])] : [...DEFAULT_REGISTRIES];
  for (const host of hosts) {
    const index = list.findIndex(
      (entry) => (typeof entry === 'string' ? entry : (entry as Raw | null)?.['host']) === host,
    );
    const entry = list[index];
    if (index === -1) list.push({ host, policy });
    else list[index] = typeof entry === 'string' ? { host, policy } : { ...(entry as Raw), policy };
  }
  return list;
}

/** One entry per host, the first one (a file's settings beat a bare repeat in REGISTRIES). */
function firstPerHost<T extends { host: string }>(entries: readonly T[]): T[] {
  const seen = new Map<string, T>();
  for (const entry of entries) if (!seen.has(entry.host)) seen.set(entry.host, entry);
  return [...seen.values()];
}

/** `AUTH_REGISTRIES="host:user:pass other:user:pass"`, delimiters as in rpardini's proxy. */
function parseAuthRegistries(env: Env, issues: ConfigIssue[]): Raw[] {
  const value = env['AUTH_REGISTRIES'];
  if (!value) return [];
  const entryDelimiter = env['AUTH_REGISTRIES_DELIMITER'] || ' ';
  const fieldDelimiter = env['AUTH_REGISTRY_DELIMITER'] || ':';
  const out: Raw[] = [];
  for (const entry of value.split(entryDelimiter).filter((e) => e.trim() !== '')) {
    const [host, username, ...rest] = entry.trim().split(fieldDelimiter);
    if (!host || !username || rest.length === 0) {
      // The entry holds a password: never echo it back.
      issues.push({
        path: 'AUTH_REGISTRIES',
        message: `an entry for "${host ?? ''}" is not host${fieldDelimiter}user${fieldDelimiter}password`,
      });
      continue;
    }
    out.push({ host, username, password: rest.join(fieldDelimiter) });
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue, fromEnv: ReadonlyMap<string, string>): ConfigIssue {
  const dotted = issue.path.map(String).join('.');
  const envName = [...fromEnv].find(([key]) => dotted === key || dotted.startsWith(`${key}.`))?.[1];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys')
    message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return { path: envName ? `${dotted} (from ${envName})` : dotted, message };
}

async function resolveSecrets(config: Config, source: string): Promise<Config> {
  if (config.ca.passphraseFile === null) return config;
  try {
    const text = await readFile(config.ca.passphraseFile, 'utf8');
    return { ...config, ca: { ...config.ca, passphrase: text.split(/\r?\n/)[0] ?? '' } };
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError(source, [
      { path: 'ca.passphraseFile', message: `cannot read ${config.ca.passphraseFile} (${reason})` },
    ]);
  }
}

function setPath(target: Raw, key: readonly string[], value: unknown): void {
  let node = target;
  for (const part of key.slice(0, -1)) {
    const next = node[part];
    node =
      typeof next === 'object' && next !== null && !Array.isArray(next) ? (next as Raw) : (node[part] = {});
  }
  node[key[key.length - 1] ?? ''] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
