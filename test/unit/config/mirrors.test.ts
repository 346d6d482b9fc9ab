import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { parseMirrorLocation } from '../../../src/config/mirrors.ts';
import { Registries } from '../../../src/config/registries.ts';

describe('registries[].mirrors', () => {
  it('reads locations as hosts.toml and registries.conf write them', () => {
    expect(parseMirrorLocation('mirror.gcr.io')).toEqual({
      origin: 'https://mirror.gcr.io',
      name: 'mirror.gcr.io:443',
      prefix: '',
    });
    expect(parseMirrorLocation('http://Cache.internal:5000/')).toEqual({
      origin: 'http://cache.internal:5000',
      name: 'cache.internal:5000',
      prefix: '',
    });
    expect(parseMirrorLocation('registry.site:8443/docker.io')).toEqual({
      origin: 'https://registry.site:8443',
      name: 'registry.site:8443',
      prefix: 'docker.io',
    });
    expect(parseMirrorLocation('[::1]:5000')?.origin).toBe('https://[::1]:5000');
    for (const bad of ['', 'ftp://x', 'host:99999', 'a b', 'http://', 'host?ns=x']) {
      expect(parseMirrorLocation(bad), bad).toBeUndefined();
    }
  });

  it('takes bare strings and {host, tags, ns}, and names the registry for ?ns=', () => {
    const config = parseConfig(
      {
        registries: [
          {
            host: 'docker.io',
            mirrors: ['registry.site.internal', { host: 'http://cache:5000', tags: true, ns: true }],
          },
          'ghcr.io',
        ],
      },
      {},
      't',
      '/',
    );
    const registries = new Registries(config);
    const chain = registries.mirrors({ host: 'registry-1.docker.io', port: 443, scheme: 'https' });
    expect(chain).toEqual({
      registry: 'registry-1.docker.io:443',
      ns: 'docker.io',
      mirrors: [
        {
          origin: 'https://registry.site.internal',
          name: 'registry.site.internal:443',
          prefix: '',
          tags: false,
          ns: false,
        },
        { origin: 'http://cache:5000', name: 'cache:5000', prefix: '', tags: true, ns: true },
      ],
    });
    expect(registries.mirrors({ host: 'ghcr.io', port: 443, scheme: 'https' })).toBeUndefined();
  });

  it('refuses a malformed mirror and unknown keys, with their path', () => {
    try {
      parseConfig(
        { registries: [{ host: 'docker.io', mirrors: ['ftp://nope', { host: 'a.io', resolve: true }] }] },
        {},
        't',
        '/',
      );
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const issues = (error as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
      expect(issues[0]).toMatch(/^registries\.0\.mirrors\.0\.host: "ftp:\/\/nope" is not a mirror/);
      expect(issues[1]).toMatch(/^registries\.0\.mirrors\.1: unknown key "resolve"/);
    }
  });

  it("the README's example parses: docker.io, then a site-local registry, a pullthrough and mirror.gcr.io", async () => {
    const readme = await readFile(path.join(import.meta.dirname, '../../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Mirror chains'));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const config = parseConfig(parse(example) as Record<string, unknown>, {}, 't', '/');
    const chain = new Registries(config).mirrors({
      host: 'registry-1.docker.io',
      port: 443,
      scheme: 'https',
    });
    expect(chain?.mirrors.map((m) => [m.origin, m.tags, m.ns])).toEqual([
      ['https://registry.site.internal:5000', false, false],
      ['http://cache.site.internal:5000', false, true],
      ['https://mirror.gcr.io', true, false],
    ]);
  });

  it('names each registry mirror at start, and warns of tags over plain HTTP', () => {
    const config = parseConfig(
      { registries: [{ host: 'docker.io', mirrors: ['a.io', { host: 'http://b.io:5000', tags: true }] }] },
      {},
      't',
      '/',
    );
    expect(new Registries(config).notices()).toEqual([
      {
        level: 'info',
        fields: { host: 'docker.io', mirrors: ['a.io', 'http://b.io:5000 (tags)'] },
        message: 'registry mirrors',
      },
      {
        level: 'warn',
        fields: { host: 'docker.io', mirror: 'http://b.io:5000' },
        message: 'mirror resolves tags over plain HTTP: the network path can change what a tag names',
      },
    ]);
  });
});
