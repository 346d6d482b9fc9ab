import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.ts';
import { loadConfig, parseConfig } from '../../../src/config/load.ts';
import { rpardiniEnv, rpardiniNotices } from '../../../src/config/rpardini.ts';
import { DEFAULT_REGISTRIES } from '../../../src/config/schema.ts';
import { tempDir } from '../../helpers/tmp.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('the shipped config.yaml parses and states exactly the embedded defaults', async () => {
    const shipped = await loadConfig({ file: path.join(ROOT, 'config.yaml'), env: {} });
    const embedded = parseConfig({}, {}, 'defaults', ROOT);
    expect(shipped).toEqual(embedded);
    expect(shipped.listen).toEqual({ host: '0.0.0.0', port: 3128 });
    expect(shipped.ca.dir).toBe(path.join(ROOT, 'ca'));
    expect(shipped.cache.dir).toBe(path.join(ROOT, 'cache'));
    expect(shipped.registries).toEqual(DEFAULT_REGISTRIES.map((host) => ({ host })));
    expect(shipped.upstream.connectTimeout).toBe(10_000);
    expect(shipped.cache.maxSize).toBe(32 * 1024 ** 3);
    expect(Object.isFrozen(shipped.upstream)).toBe(true);
  });

  it('fails on an unknown key with its path, listing every problem at once', () => {
    const issues = issuesOf(() =>
      parseConfig(
        { upstream: { verifyTLS: true }, cache: { maxSize: 'lots' }, listen: ':99999' },
        {},
        't',
        '/',
      ),
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        'upstream: unknown key "verifyTLS" (did you mean "verifyTls"?)',
        'cache.maxSize: "lots" is not a size (e.g. 500MiB, 32GiB, 32g)',
        'listen: ":99999" is not host:port (e.g. 0.0.0.0:3128, [::]:3128)',
      ]),
    );
    expect(issues).toHaveLength(3);
  });

  it('rejects bad registry entries by index', () => {
    const issues = issuesOf(() =>
      parseConfig({ registries: ['ok.example', 'https://nope', 'a:70000'] }, {}, 't', '/'),
    );
    expect(issues).toEqual([
      'registries.1.host: "https://nope" is not a host, host:port or *.domain entry',
      'registries.2.host: "a:70000" is not a host, host:port or *.domain entry',
    ]);
  });

  it('applies rpardini-compatible environment variables over the file', () => {
    const config = parseConfig(
      { registries: ['ghcr.io', 'docker.io', 'quay.io'] },
      {
        REGISTRIES: 'registry.example:5000  *.corp.example',
        VERIFY_SSL: 'false',
        ALLOW_PUSH: 'no',
        CACHE_MAX_SIZE: '10g',
        ENABLE_MANIFEST_CACHE: 'true',
        AUTH_REGISTRIES: 'auth.docker.io:user:pa:ss quay.io:bot:secret',
        PULLTHROUGH_LISTEN: '[::]:3129',
      },
      't',
      '/etc/pullthrough',
    );
    expect(config.registries.map((r) => r.host)).toEqual([
      'ghcr.io',
      'docker.io',
      'quay.io',
      'registry.example:5000',
      '*.corp.example',
    ]);
    expect(config.upstream.verifyTls).toBe(false);
    expect(config.allowPush).toBe(false);
    expect(config.cache.maxSize).toBe(10 * 1024 ** 3);
    expect(config.cache.tagTtl).toBe(3_600_000);
    expect(config.listen).toEqual({ host: '::', port: 3129 });
    expect(config.upstream.credentials).toEqual([
      // Docker Hub's credentials, given for its token host as rpardini's README says.
      { host: 'docker.io', username: 'user', password: 'pa:ss' },
      { host: 'quay.io', username: 'bot', password: 'secret' },
    ]);
  });

  it('refuses credentials for a host that is not intercepted, and a credential without a source', () => {
    const issues = issuesOf(() =>
      parseConfig(
        {
          registries: ['ghcr.io'],
          upstream: { credentials: [{ host: 'ghcr.io', username: 'u' }] },
        },
        {},
        't',
        '/',
      ),
    );
    expect(issues).toEqual(['upstream.credentials.0: give exactly one of password, passwordFile or helper']);
    const notListed = issuesOf(() =>
      parseConfig({ registries: ['ghcr.io'] }, { AUTH_REGISTRIES: 'quay.io:bot:secret' }, 't', '/'),
    );
    expect(notListed).toEqual([
      'upstream.credentials.0.host (from AUTH_REGISTRIES): "quay.io" is not in registries',
    ]);
  });

  it('SHARE_REGISTRIES and NO_CACHE_REGISTRIES set policies, adding hosts that are not listed', () => {
    const config = parseConfig(
      { registries: [{ host: 'ghcr.io', tagTtl: '5m' }, 'quay.io'] },
      { SHARE_REGISTRIES: 'ghcr.io', NO_CACHE_REGISTRIES: 'quay.io secret.example' },
      't',
      '/',
    );
    expect(config.registries).toEqual([
      { host: 'ghcr.io', tagTtl: 300_000, policy: 'share' },
      { host: 'quay.io', policy: 'no-cache' },
      { host: 'secret.example', policy: 'no-cache' },
    ]);
  });

  it('reads proxy access settings from the environment and checks CIDRs', () => {
    const config = parseConfig(
      {},
      {
        PULLTHROUGH_ALLOW_CLIENTS: '10.0.0.0/8, fd00::/8 192.168.1.7',
        PULLTHROUGH_HTPASSWD: 'users.htpasswd',
      },
      't',
      '/etc/pullthrough',
    );
    expect(config.proxy.allowClients).toEqual(['10.0.0.0/8', 'fd00::/8', '192.168.1.7/32']);
    expect(config.proxy.htpasswd).toBe('/etc/pullthrough/users.htpasswd');
    expect(config.proxy.denyNetworks).toContain('169.254.0.0/16');
    expect(config.proxy.connectPorts).toEqual([443]);
    const issues = issuesOf(() =>
      parseConfig({ proxy: { allowClients: ['10.0.0.0/33', 'nope'] } }, {}, 't', '/'),
    );
    expect(issues).toEqual([
      'proxy.allowClients.0: "10.0.0.0/33" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)',
      'proxy.allowClients.1: "nope" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)',
    ]);
  });

  it('reads the admin token from the environment; off by default, and never a short one', () => {
    expect(parseConfig({}, {}, 't', '/').admin.token).toBeNull();
    const token = 'a'.repeat(32);
    expect(parseConfig({}, { PULLTHROUGH_ADMIN_TOKEN: token }, 't', '/').admin.token).toBe(token);
    expect(issuesOf(() => parseConfig({ admin: { token: 'short' } }, {}, 't', '/'))).toEqual([
      'admin.token: expected a string of at least 16 characters, found a string',
    ]);
  });

  it('reads the watch settings: hourly by default, 0 turns it off, the webhook must be a URL', () => {
    const defaults = parseConfig({}, {}, 't', '/').watch;
    expect(defaults).toEqual({
      interval: 3_600_000,
      window: 7 * 86_400_000,
      ratePerSecond: 1,
      webhook: null,
    });
    const env = { PULLTHROUGH_WATCH_INTERVAL: '0', PULLTHROUGH_WATCH_WEBHOOK: 'https://hooks.example/T/B/x' };
    const fromEnv = parseConfig({}, env, 't', '/').watch;
    expect(fromEnv.interval).toBe(0);
    expect(fromEnv.webhook).toBe('https://hooks.example/T/B/x');
    expect(parseConfig({ watch: { interval: '30s' } }, {}, 't', '/').watch.interval).toBe(30_000);
    expect(
      issuesOf(() => parseConfig({ watch: { webhook: 'ftp://x', ratePerSecond: 0 } }, {}, 't', '/')),
    ).toEqual([
      'watch.ratePerSecond: expected a number of at least 0.01, found 0',
      'watch.webhook: "ftp://x" is not an http:// or https:// URL',
    ]);
  });

  it('REGISTRIES adds to the defaults when the file lists none', () => {
    const config = parseConfig({}, { REGISTRIES: 'registry.example' }, 't', '/');
    expect(config.registries.map((r) => r.host)).toEqual([...DEFAULT_REGISTRIES, 'registry.example']);
  });

  it('takes per-registry freshness settings; the first entry for a host wins', () => {
    const config = parseConfig(
      { registries: [{ host: 'docker.io', tagTtl: '10m', maxStale: '7d' }, 'ghcr.io', 'docker.io'] },
      {},
      't',
      '/',
    );
    expect(config.registries).toEqual([
      { host: 'docker.io', tagTtl: 600_000, maxStale: 7 * 86_400_000 },
      { host: 'ghcr.io' },
    ]);
  });

  it('lists per-registry setting problems by path', () => {
    const issues = issuesOf(() =>
      parseConfig(
        {
          registries: [
            { host: 'x.io', tagTtl: 'soon' },
            { host: 'y.io', bogus: 1 },
          ],
        },
        {},
        't',
        '/',
      ),
    );
    expect(issues).toEqual([
      'registries.0.tagTtl: "soon" is not a duration (e.g. 250ms, 10s, 5m, 1h, 7d)',
      'registries.1: unknown key "bogus" (keys here: host, tagTtl, maxStale, policy, maxSize, allow, deny, serveStaleOn, mirrors)',
    ]);
  });

  it("keeps a registry's settings when REGISTRIES repeats its host", () => {
    const config = parseConfig(
      { registries: [{ host: 'quay.io', tagTtl: '1m' }] },
      { REGISTRIES: 'quay.io' },
      't',
      '/',
    );
    expect(config.registries).toEqual([{ host: 'quay.io', tagTtl: 60_000 }]);
  });

  it('honours AUTH_REGISTRIES delimiters and never echoes a password in an error', () => {
    const config = parseConfig(
      {},
      {
        AUTH_REGISTRIES: 'gcr.io:::_json_key:::{"a":"b c"};;;quay.io:::u:::p',
        AUTH_REGISTRIES_DELIMITER: ';;;',
        AUTH_REGISTRY_DELIMITER: ':::',
      },
      't',
      '/',
    );
    expect(config.upstream.credentials).toEqual([
      { host: 'gcr.io', username: '_json_key', password: '{"a":"b c"}' },
      { host: 'quay.io', username: 'u', password: 'p' },
    ]);
    const issues = issuesOf(() => parseConfig({}, { AUTH_REGISTRIES: 'quay.io:onlyuser-hunter2' }, 't', '/'));
    expect(issues.join('\n')).not.toContain('hunter2');
  });

  it('names the environment variable a bad value came from', () => {
    const issues = issuesOf(() =>
      parseConfig({}, { VERIFY_SSL: 'perhaps', CACHE_MAX_SIZE: 'huge' }, 't', '/'),
    );
    expect(issues).toEqual([
      'VERIFY_SSL: "perhaps" is not true or false',
      'cache.maxSize (from CACHE_MAX_SIZE): "huge" is not a size (e.g. 500MiB, 32GiB, 32g)',
    ]);
  });

  it('maps ENABLE_MANIFEST_CACHE onto cache.tagTtl and refuses a non-boolean', () => {
    expect(parseConfig({}, { ENABLE_MANIFEST_CACHE: 'no' }, 't', '/').cache.tagTtl).toBe(0);
    expect(issuesOf(() => parseConfig({}, { ENABLE_MANIFEST_CACHE: 'maybe' }, 't', '/'))).toEqual([
      'ENABLE_MANIFEST_CACHE: "maybe" is not true or false',
    ]);
  });

  it('resolves relative paths against the config file directory', () => {
    const config = parseConfig(
      { ca: { dir: 'my-ca' }, upstream: { caFiles: ['/abs.pem', 'rel.pem'] } },
      {},
      't',
      '/srv/pt',
    );
    expect(config.ca.dir).toBe('/srv/pt/my-ca');
    expect(config.upstream.caFiles).toEqual(['/abs.pem', '/srv/pt/rel.pem']);
  });

  it('reports an unreadable file and a document that is not a mapping in one line each', async () => {
    await expect(loadConfig({ file: '/nonexistent/config.yaml', env: {} })).rejects.toThrow(
      /cannot read the file \(ENOENT\)/,
    );
    expect(issuesOf(() => parseConfig(['a list'], {}, 't', '/'))).toEqual([': expected a mapping of keys']);
  });

  it('shows invalid YAML with its line, column and code frame', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'listen: 1\ncache:\n\tdir: x\n');
    const error = await loadConfig({ file, env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(
      `invalid configuration in ${file}:\n` +
        '  line 3, column 1: not valid YAML: Tabs are not allowed as indentation\n' +
        '    cache:\n' +
        '    \tdir: x\n' +
        '    ^',
    );
    await writeFile(file, 'log: {level: info}\nlog: {level: debug}\n');
    await expect(loadConfig({ file, env: {} })).rejects.toThrow(
      /line 2, column 1: not valid YAML: Map keys must be unique\n/,
    );
  });

  it("speaks the config's language: path, line, what was expected, what was found", async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'config.yaml');
    await writeFile(
      file,
      [
        'listen: 3128',
        'log:',
        '  level: verbose',
        'limits:',
        '  maxConnections: 0',
        '  maxHeaders: 1.5',
        '  idleTimout: 5m',
        '  headersTimeout: 30',
        'upstream:',
        '  verifyTls: "yes"',
        '  caFiles: a.pem',
        '  credentials:',
        '    - {host: quay.io, username: u, password: 12345}',
        'ca:',
        'cache: {dir: "", maxSize: [1]}',
        'proxy: {connectPorts: [443, 70000], allowClients: [10.0.0.0/33]}',
        'registries:',
        '  - quay.io',
        '  - {hots: x.io}',
        'bogus: 1',
        '',
      ].join('\n'),
    );
    const error = await loadConfig({ file, env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const lines = (error as ConfigError).issues.map(
      (issue) => `${issue.line ?? '-'} ${issue.path}: ${issue.message}`,
    );
    expect(lines.sort()).toEqual(
      [
        '1 listen: 3128 is not host:port (e.g. 0.0.0.0:3128, [::]:3128)',
        '3 log.level: expected one of fatal, error, warn, info, debug, trace, silent, found "verbose"',
        '5 limits.maxConnections: expected a number of at least 1, found 0',
        '6 limits.maxHeaders: expected a whole number, found 1.5',
        '7 limits: unknown key "idleTimout" (did you mean "idleTimeout"?)',
        '8 limits.headersTimeout: 30 is not a duration (e.g. 250ms, 10s, 5m, 1h, 7d)',
        '10 upstream.verifyTls: expected true or false, found "yes"',
        '11 upstream.caFiles: expected a list, found "a.pem"',
        '13 upstream.credentials.0.password: expected a string, found a number',
        '14 ca: expected a mapping (key: value), found an empty value',
        '15 cache.dir: must not be empty',
        '15 cache.maxSize: a list is not a size (e.g. 500MiB, 32GiB, 32g)',
        '16 proxy.connectPorts.1: expected a number of at most 65535, found 70000',
        '16 proxy.allowClients.0: "10.0.0.0/33" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)',
        '19 registries.1.host: missing: expected a host, host:port or *.domain entry',
        '19 registries.1: unknown key "hots" (did you mean "host"?)',
        '20 : unknown key "bogus" (keys here: listen, registries, mirror, ca, cache, storage, upstream, access, proxy, limits, admin, watch, cluster, allowPush, log, shutdownTimeout)',
      ].sort(),
    );
    // Never zod's own words, never a secret.
    const message = (error as Error).message;
    expect(message).not.toMatch(/Invalid input|Invalid option|Too small|Too big|received/);
    expect(message).not.toContain('12345');
    expect(message).toContain(`  line 7: limits: unknown key "idleTimout" (did you mean "idleTimeout"?)\n`);
  });
});

describe('rpardini/docker-registry-proxy environment variables', () => {
  it('map onto the keys with the same meaning, in nginx time units', () => {
    const env = {
      CLIENT_HEADER_TIMEOUT: '60s',
      KEEPALIVE_TIMEOUT: '300',
      PROXY_CONNECT_TIMEOUT: '1m',
      PROXY_READ_TIMEOUT: '900s',
      PROXY_CONNECT_READ_TIMEOUT: '2w',
      DISABLE_IPV6: 'true',
      ENABLE_MANIFEST_CACHE: 'true',
      MANIFEST_CACHE_DEFAULT_TIME: '10m',
      CA_CRT_FILE: '/secrets/ca/ca.crt',
      CA_KEY_FILE: '/secrets/ca/ca.key',
    };
    const config = parseConfig({}, env, 't', '/');
    expect(config.limits.headersTimeout).toBe(60_000);
    expect(config.limits.idleTimeout).toBe(300_000);
    expect(config.upstream.connectTimeout).toBe(60_000);
    expect(config.upstream.bodyTimeout).toBe(900_000);
    expect(config.limits.tunnelIdleTimeout).toBe(14 * 86_400_000);
    expect(config.proxy.ipv6).toBe(false);
    expect(config.cache.tagTtl).toBe(600_000);
    expect(config.ca.dir).toBe('/secrets/ca');
    expect(
      rpardiniEnv(env)
        .mapped.map(({ env: name, key }) => `${name} → ${key}`)
        .sort(),
    ).toEqual([
      'CA_CRT_FILE → ca.dir',
      'CA_KEY_FILE → ca.dir',
      'CLIENT_HEADER_TIMEOUT → limits.headersTimeout',
      'DISABLE_IPV6 → proxy.ipv6',
      'ENABLE_MANIFEST_CACHE → cache.tagTtl',
      'KEEPALIVE_TIMEOUT → limits.idleTimeout',
      'MANIFEST_CACHE_DEFAULT_TIME → cache.tagTtl',
      'PROXY_CONNECT_READ_TIMEOUT → limits.tunnelIdleTimeout',
      'PROXY_CONNECT_TIMEOUT → upstream.connectTimeout',
      'PROXY_READ_TIMEOUT → upstream.bodyTimeout',
    ]);
    expect(rpardiniEnv(env).ignored).toEqual([]);
  });

  it("lose to pullthrough's own variables, and name themselves in errors", () => {
    const config = parseConfig(
      {},
      { CA_CRT_FILE: '/a/ca.crt', CA_KEY_FILE: '/a/ca.key', PULLTHROUGH_CA_DIR: '/b' },
      't',
      '/',
    );
    expect(config.ca.dir).toBe('/b');
    expect(parseConfig({}, { DISABLE_IPV6: 'false' }, 't', '/').proxy.ipv6).toBe(true);
    expect(
      issuesOf(() => parseConfig({}, { KEEPALIVE_TIMEOUT: '1h30m', DISABLE_IPV6: 'v4' }, 't', '/')),
    ).toEqual([
      'DISABLE_IPV6: "v4" is not true or false',
      'limits.idleTimeout (from KEEPALIVE_TIMEOUT): "1h30m" is not a duration (e.g. 250ms, 10s, 5m, 1h, 7d)',
    ]);
  });

  it('warn once each about those that mean nothing here, saying why', () => {
    const env = {
      MANIFEST_CACHE_PRIMARY_REGEX: '(stable|nightly)',
      MANIFEST_CACHE_PRIMARY_TIME: '10m',
      MANIFEST_CACHE_SECONDARY_REGEX: '(.*)',
      MANIFEST_CACHE_SECONDARY_TIME: '60d',
      MANIFEST_CACHE_DEFAULT_TIME: '1h', // without ENABLE_MANIFEST_CACHE=true: no effect in rpardini either
      SEND_TIMEOUT: '60s',
      CLIENT_BODY_TIMEOUT: '60s',
      PROXY_SEND_TIMEOUT: '60s',
      PROXY_CONNECT_CONNECT_TIMEOUT: '60s',
      PROXY_CONNECT_SEND_TIMEOUT: '60s',
      PROXY_REQUEST_BUFFERING: 'false',
      CA_SRL_FILE: '/ca/ca.srl',
      CA_CRT_FILE: '/ca/my.crt',
      CA_KEY_FILE: '/ca/ca.key',
      DEBUG: 'true',
      DEBUG_HUB: 'true',
      DEBUG_NGINX: 'true',
      UNRELATED: 'x',
      SEND_TIMEOUT_EMPTY: '',
    };
    const notices = rpardiniNotices(env);
    expect(notices.map((notice) => notice.fields['env']).sort()).toEqual(
      Object.keys(env)
        .filter((name) => !name.startsWith('UNRELATED') && !name.endsWith('_EMPTY'))
        .sort(),
    );
    for (const notice of notices) {
      expect(notice.level).toBe('warn');
      expect(notice.message).toMatch(new RegExp(`^${String(notice.fields['env'])} is ignored: .{20,}`));
    }
    const config = parseConfig({}, env, 't', '/');
    expect(config.cache.tagTtl).toBe(0);
    expect(config.ca.dir).toBe('/ca');
    expect(rpardiniNotices({ SEND_TIMEOUT: '' })).toEqual([]);
  });
});
