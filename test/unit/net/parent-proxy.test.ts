import { describe, expect, it } from 'vitest';
import { effectiveConfig } from '../../../src/config/effective.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { bypassesParent, parseProxyUrl, resolveParentProxy } from '../../../src/net/parent-proxy.ts';

const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;

describe('parent proxy settings', () => {
  it('reads http://[user:pass@]host:port, decoding escaped credentials', () => {
    expect(parseProxyUrl('http://proxy.corp:3128')).toEqual({
      host: 'proxy.corp',
      port: 3128,
      authorization: undefined,
    });
    expect(parseProxyUrl('http://me%40corp:p%3Ass@10.0.0.1:8080/')).toEqual({
      host: '10.0.0.1',
      port: 8080,
      authorization: basic('me@corp:p:ss'),
    });
    expect(parseProxyUrl('http://[fd00::1]:3128')?.host).toBe('fd00::1');
    expect(parseProxyUrl('http://proxy.corp')?.port).toBe(80);
    expect(parseProxyUrl('https://proxy.corp:3128')).toBeUndefined();
    expect(parseProxyUrl('socks5://proxy.corp:1080')).toBeUndefined();
    expect(parseProxyUrl('proxy.corp:3128')).toBeUndefined();
    expect(parseProxyUrl('http://proxy.corp:3128/path')).toBeUndefined();
  });

  it('takes upstream.proxy; the environment only when proxyFromEnv is on', () => {
    const env = { HTTPS_PROXY: 'http://env:3128', NO_PROXY: 'internal.corp, .svc,10.1.2.3,*.local:5000' };
    expect(resolveParentProxy({ proxy: null, proxyFromEnv: false }, env)).toBeUndefined();
    expect(resolveParentProxy({ proxy: 'http://conf:1', proxyFromEnv: true }, env)).toMatchObject({
      host: 'conf',
      noProxy: [],
    });
    expect(resolveParentProxy({ proxy: null, proxyFromEnv: true }, env)).toEqual({
      host: 'env',
      port: 3128,
      authorization: undefined,
      noProxy: ['internal.corp', '.svc', '10.1.2.3', '*.local:5000'],
    });
    expect(
      resolveParentProxy({ proxy: null, proxyFromEnv: true }, { http_proxy: 'http://low:8' })?.host,
    ).toBe('low');
    expect(resolveParentProxy({ proxy: null, proxyFromEnv: true }, {})).toBeUndefined();
    expect(() =>
      resolveParentProxy({ proxy: null, proxyFromEnv: true }, { HTTPS_PROXY: 'nonsense' }),
    ).toThrow('HTTPS_PROXY is not an http://[user:pass@]host:port URL');
  });

  it('NO_PROXY: names and their subdomains, IP literals, ports, and *', () => {
    const parent = resolveParentProxy(
      { proxy: null, proxyFromEnv: true },
      { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'internal.corp,.svc,10.1.2.3,*.local:5000' },
    );
    if (!parent) throw new Error('expected a parent');
    expect(bypassesParent(parent, 'internal.corp', 443)).toBe(true);
    expect(bypassesParent(parent, 'registry.internal.corp', 443)).toBe(true);
    expect(bypassesParent(parent, 'notinternal.corp', 443)).toBe(false);
    expect(bypassesParent(parent, 'a.svc', 443)).toBe(true);
    expect(bypassesParent(parent, '10.1.2.3', 443)).toBe(true);
    expect(bypassesParent(parent, 'reg.local', 5000)).toBe(true);
    expect(bypassesParent(parent, 'reg.local', 443)).toBe(false);
    expect(bypassesParent(parent, 'registry-1.docker.io', 443)).toBe(false);
    expect(bypassesParent({ ...parent, noProxy: ['*'] }, 'anything', 1)).toBe(true);
  });

  it('the config refuses a bad URL and config check masks its password', () => {
    expect(() => parseConfig({ upstream: { proxy: 'proxy:3128' } }, {}, 't', '/')).toThrow(
      'is not an http://[user:pass@]host:port URL',
    );
    const config = parseConfig({ upstream: { proxy: 'http://corp:s3cret@proxy.corp:3128' } }, {}, 't', '/');
    expect(config.upstream.proxy).toBe('http://corp:s3cret@proxy.corp:3128');
    const written = effectiveConfig(config) as { upstream: { proxy: string; proxyFromEnv: boolean } };
    expect(written.upstream).toMatchObject({
      proxy: 'http://corp:[masked]@proxy.corp:3128',
      proxyFromEnv: false,
    });
  });
});
