// Reads a configuration: config.yaml (optional) + environment variables over it, validated by
// schema.ts into one frozen Config. Every problem is reported at once, by path, as a ConfigError.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { describeIssue } from './issues.ts';
import { caDirOf, fromNginxTime, RPARDINI_ENV_KEYS, type EnvKey } from './rpardini.ts';
import { DEFAULT_REGISTRIES, configSchema, type Config } from './schema.ts';

type Env = Readonly<Record<string, string | undefined>>;
type Raw = Record<string, unknown>;

/**
 * pullthrough's own environment variables and the key each one sets. The rpardini ones
 * (rpardini.ts) are applied first, so these win.
 */
const ENV_KEYS: readonly EnvKey[] = [
  { env: 'PULLTHROUGH_LISTEN', key: ['listen'], kind: 'string' },
  { env: 'PULLTHROUGH_MIRROR_LISTEN', key: ['mirror', 'listen'], kind: 'string' },
  { env: 'PULLTHROUGH_MIRROR_DEFAULT', key: ['mirror', 'default'], kind: 'string' },
  { env: 'PULLTHROUGH_CA_DIR', key: ['ca', 'dir'], kind: 'string' },
  { env: 'CA_KEY_PASSPHRASE', key: ['ca', 'passphrase'], kind: 'string' },
  { env: 'CA_KEY_PASSPHRASE_FILE', key: ['ca', 'passphraseFile'], kind: 'string' },
  { env: 'PULLTHROUGH_CACHE_DIR', key: ['cache', 'dir'], kind: 'string' },
  { env: 'LOG_LEVEL', key: ['log', 'level'], kind: 'string' },
  { env: 'LOG_FORMAT', key: ['log', 'format'], kind: 'string' },
  { env: 'PULLTHROUGH_SHUTDOWN_TIMEOUT', key: ['shutdownTimeout'], kind: 'string' },
  { env: 'PULLTHROUGH_HTPASSWD', key: ['proxy', 'htpasswd'], kind: 'string' },
  { env: 'PULLTHROUGH_ADMIN_TOKEN', key: ['admin', 'token'], kind: 'string' },
  { env: 'PULLTHROUGH_ADMIN_LISTEN', key: ['admin', 'listen'], kind: 'string' },
  { env: 'PULLTHROUGH_REDIS_URL', key: ['cluster', 'redis'], kind: 'string' },
  { env: 'PULLTHROUGH_CLUSTER_ID', key: ['cluster', 'id'], kind: 'string' },
  { env: 'PULLTHROUGH_CLUSTER_ADVERTISE', key: ['cluster', 'advertise'], kind: 'string' },
  { env: 'PULLTHROUGH_CLUSTER_SECRET', key: ['cluster', 'secret'], kind: 'string' },
  { env: 'PULLTHROUGH_ALLOW_CLIENTS', key: ['proxy', 'allowClients'], kind: 'list' },
  { env: 'PULLTHROUGH_WATCH_INTERVAL', key: ['watch', 'interval'], kind: 'string' },
  { env: 'PULLTHROUGH_WATCH_WEBHOOK', key: ['watch', 'webhook'], kind: 'string' },
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
  let lineOf: LineOf | undefined;
  if (options.file !== undefined) {
    let text: string;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new ConfigError(options.file, [{ path: '', message: `cannot read the file (${reason})` }]);
    }
    const yaml = parseYamlText(text, options.file);
    raw = yaml.raw;
    lineOf = yaml.lineOf;
  }
  const baseDir = options.file === undefined ? process.cwd() : path.dirname(path.resolve(options.file));
  const config = withLines(lineOf, () => parseConfig(raw, env, options.file ?? 'the environment', baseDir));
  return deepFreeze(await resolveSecrets(config, options.file ?? 'the environment'));
}

/** The line of the key at a path of the file, when the file has it. */
type LineOf = (at: readonly PropertyKey[]) => number | undefined;

/** The file's value and where its keys are; a syntax error reads with its line and code frame. */
function parseYamlText(text: string, file: string): { raw: unknown; lineOf: LineOf } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((error) => {
        // "<reason> at line 3, column 1:\n\n<frame>\n": the reason, then the frame as it is.
        const [first = '', ...frame] = error.message.split('\n');
        const reason = first.replace(/ at line \d+, column \d+:$/, '');
        const position = error.linePos?.[0];
        return {
          path: position ? `line ${position.line}, column ${position.col}` : '',
          message: [`not valid YAML: ${reason}`, ...frame.filter((line) => line !== '')].join('\n'),
        };
      }),
    );
  }
  return { raw: doc.toJS() ?? {}, lineOf: (at) => lineIn(doc, lineCounter, at) };
}

/** The line of the node at `at`, or of its nearest ancestor in the file (a key that is missing). */
function lineIn(doc: Document, lines: LineCounter, at: readonly PropertyKey[]): number | undefined {
  if (at.some((part) => typeof part === 'symbol')) return undefined;
  for (let depth = at.length; depth > 0; depth -= 1) {
    const node = doc.getIn(at.slice(0, depth) as Array<string | number>, true) as
      { range?: [number, number, number] } | undefined;
    if (node?.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Runs `parse`, adding to each issue of the ConfigError it throws the line of its key. */
function withLines<T>(lineOf: LineOf | undefined, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof ConfigError) || lineOf === undefined) throw error;
    const issues = error.issues.map((issue) => {
      // A key set by the environment is not on any line of the file.
      const line = issue.at && !issue.path.includes('(from ') ? lineOf(issue.at) : undefined;
      return line === undefined ? issue : { ...issue, line };
    });
    throw new ConfigError(error.source, issues, { cause: error.cause });
  }
}

/** Pure: raw YAML value + environment → validated Config with absolute paths. */
export function parseConfig(raw: unknown, env: Env, source: string, baseDir: string): Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(source, [{ path: '', message: 'expected a mapping of keys' }]);
  }
  // Issues found in the environment are kept and reported together with the schema's.
  const issues: ConfigIssue[] = [];
  const { merged, fromEnv } = overlayEnv(raw as Raw, env, issues);
  const config = validate(merged, fromEnv, issues, source);
  const registries = firstPerHost(config.registries);
  checkCredentialHosts(config, registries, fromEnv, source);
  return resolvePaths({ ...config, registries }, baseDir);
}

/**
 * A copy of `raw` with the environment set over it, and which variable set each key (so an
 * issue with that key names the variable). Malformed values are added to `issues`.
 */
function overlayEnv(
  raw: Raw,
  env: Env,
  issues: ConfigIssue[],
): { merged: Raw; fromEnv: Map<string, string> } {
  const merged = structuredClone(raw);
  const fromEnv = new Map<string, string>();
  overlayEnvKeys(merged, env, issues, fromEnv);
  overlayRegistries(merged, env, fromEnv);
  const credentials = parseAuthRegistries(env, issues);
  if (credentials.length > 0) {
    const upstream = (merged['upstream'] ??= {}) as Raw;
    const current = Array.isArray(upstream['credentials']) ? (upstream['credentials'] as unknown[]) : [];
    upstream['credentials'] = [...current, ...credentials];
    fromEnv.set('upstream.credentials', 'AUTH_REGISTRIES');
  }
  return { merged, fromEnv };
}

/** The variables of RPARDINI_ENV_KEYS, then ENV_KEYS, each set at its key. */
function overlayEnvKeys(merged: Raw, env: Env, issues: ConfigIssue[], fromEnv: Map<string, string>): void {
  const caDir = caDirOf(env);
  if (caDir !== undefined) {
    setPath(merged, ['ca', 'dir'], caDir);
    fromEnv.set('ca.dir', 'CA_CRT_FILE');
  }
  for (const { env: name, key, kind, as, when } of [...RPARDINI_ENV_KEYS, ...ENV_KEYS]) {
    const value = env[name];
    if (value === undefined || value === '' || (when && !when.test(env))) continue;
    if (kind === 'boolean') {
      const lower = value.toLowerCase();
      if (!TRUE.has(lower) && !FALSE.has(lower)) {
        issues.push({ path: name, message: `"${value}" is not true or false` });
        continue;
      }
      setPath(merged, key, as ? as(TRUE.has(lower)) : TRUE.has(lower));
    } else if (kind === 'list') {
      setPath(merged, key, value.split(/[\s,]+/).filter(Boolean));
    } else if (kind === 'nginx-time') {
      setPath(merged, key, fromNginxTime(value));
    } else {
      setPath(merged, key, value);
    }
    fromEnv.set(key.join('.'), name);
  }
}

/** REGISTRIES appends hosts; the POLICY_ENV variables give hosts a policy (appending them too). */
function overlayRegistries(merged: Raw, env: Env, fromEnv: Map<string, string>): void {
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
}

/** The schema over the merged value; throws with its issues and the environment's, all at once. */
function validate(
  merged: Raw,
  fromEnv: ReadonlyMap<string, string>,
  issues: ConfigIssue[],
  source: string,
): Config {
  const result = configSchema.safeParse(merged, { reportInput: true });
  if (!result.success)
    issues.push(...result.error.issues.map((issue) => describeIssue(issue, configSchema, fromEnv)));
  if (issues.length > 0 || !result.success) throw new ConfigError(source, issues);
  return result.data;
}

/** Credentials are only ever sent to a configured registry: one for any other host is a mistake. */
function checkCredentialHosts(
  config: Config,
  registries: readonly { host: string }[],
  fromEnv: ReadonlyMap<string, string>,
  source: string,
): void {
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
}

/** Relative paths are relative to the config file's directory (or the working directory). */
function resolvePaths(config: Config, baseDir: string): Config {
  const resolve = (p: string) => path.resolve(baseDir, p);
  return {
    ...config,
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
    mirror: {
      ...config.mirror,
      tls: config.mirror.tls && {
        cert: resolve(config.mirror.tls.cert),
        key: resolve(config.mirror.tls.key),
      },
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
