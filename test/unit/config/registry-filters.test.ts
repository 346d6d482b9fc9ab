import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.ts';
import { Registries } from '../../../src/config/registries.ts';
import { globMatches, isRepositoryPattern, refusalOf } from '../../../src/config/repository-filter.ts';
import { ConfigError } from '../../../src/config/errors.ts';

describe('repository filters', () => {
  it('a * matches any characters, / included, and nothing else is special', () => {
    expect(globMatches('library/*', 'library/nginx')).toBe(true);
    expect(globMatches('library/*', 'library/a/b')).toBe(true);
    expect(globMatches('library/*', 'libraryx/nginx')).toBe(false);
    expect(globMatches('*/crypto-miner*', 'evil/crypto-miner-2')).toBe(true);
    expect(globMatches('*/crypto-miner*', 'a/b/crypto-miner')).toBe(true);
    expect(globMatches('*/crypto-miner*', 'crypto-miner')).toBe(false);
    expect(globMatches('my.org/app', 'myxorg/app')).toBe(false);
    expect(globMatches('*', 'anything/at/all')).toBe(true);
  });

  it('deny wins over allow; a non-empty allow list admits only what it matches', () => {
    const rules = { allow: ['library/*', 'myorg/*'], deny: ['*/crypto-miner*'] };
    expect(refusalOf(rules, 'library/nginx')).toBeUndefined();
    expect(refusalOf(rules, 'myorg/deep/app')).toBeUndefined();
    expect(refusalOf(rules, 'library/crypto-miner')).toEqual({ rule: 'deny', patterns: ['*/crypto-miner*'] });
    expect(refusalOf(rules, 'other/app')).toEqual({ rule: 'allow', patterns: ['library/*', 'myorg/*'] });
    expect(refusalOf({}, 'any/thing')).toBeUndefined();
    expect(refusalOf({ allow: [] }, 'any/thing')).toBeUndefined();
    expect(refusalOf({ deny: ['x/*'] }, 'y/z')).toBeUndefined();
  });

  it('patterns are repository names with * in them', () => {
    expect(isRepositoryPattern('library/*')).toBe(true);
    expect(isRepositoryPattern('*')).toBe(true);
    expect(isRepositoryPattern('*/crypto-miner*')).toBe(true);
    expect(isRepositoryPattern('Library/Nginx')).toBe(false);
    expect(isRepositoryPattern('a//b')).toBe(false);
    expect(isRepositoryPattern('')).toBe(false);
  });

  it('the config refuses a bad pattern with its path', () => {
    try {
      parseConfig({ registries: [{ host: 'ghcr.io', deny: ['ok/*', 'Bad Pattern'] }] }, {}, 't', '/');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
        'registries.0.deny.1: "Bad Pattern" is not a repository glob (e.g. library/*, myorg/*, */crypto-miner*)',
      ]);
    }
  });

  it('is answered per registry, naming the rule', () => {
    const config = parseConfig(
      {
        registries: [{ host: 'docker.io', allow: ['library/*'], deny: ['*/crypto-miner*'] }, 'ghcr.io'],
      },
      {},
      't',
      '/',
    );
    const registries = new Registries(config);
    const hub = { host: 'registry-1.docker.io', port: 443, scheme: 'https' } as const;
    const ghcr = { host: 'ghcr.io', port: 443, scheme: 'https' } as const;
    expect(registries.refusal(hub, 'library/nginx')).toBeUndefined();
    expect(registries.refusal(hub, 'library/crypto-miner')).toBe(
      'repository library/crypto-miner is denied by this proxy (registries[docker.io].deny: "*/crypto-miner*")',
    );
    expect(registries.refusal(hub, 'someone/app')).toBe(
      'repository someone/app is not allowed by this proxy (registries[docker.io].allow: "library/*")',
    );
    expect(registries.refusal(ghcr, 'someone/crypto-miner')).toBeUndefined();
  });
});

describe('serveStaleOn', () => {
  it('reads YAML numbers as causes, defaults to today’s behaviour, and refuses unknown causes', () => {
    const config = parseConfig(
      { registries: [{ host: 'a.io', serveStaleOn: ['unreachable', 401, '404'] }, 'b.io'] },
      {},
      't',
      '/',
    );
    const registries = new Registries(config);
    const of = (host: string) => [...registries.freshness({ host, port: 443, scheme: 'https' }).serveStaleOn];
    expect(of('a.io')).toEqual(['unreachable', '401', '404']);
    expect(of('b.io')).toEqual(['unreachable', '5xx', '429']);
    expect(() => parseConfig({ registries: [{ host: 'a.io', serveStaleOn: [500] }] }, {}, 't', '/')).toThrow(
      ConfigError,
    );
  });
});
