import { describe, expect, it } from 'vitest';
import { HostRules } from '../../../src/http/host-rules.ts';
import { InterceptList } from '../../../src/proxy/intercept-list.ts';

describe('InterceptList', () => {
  const list = new InterceptList([
    'docker.io',
    'ghcr.io',
    'registry.example:5000',
    '*.corp.example',
    '*.alt.example:8443',
  ]);

  it('expands docker.io to the three Docker Hub hosts', () => {
    for (const host of ['registry-1.docker.io', 'index.docker.io', 'auth.docker.io'])
      expect(list.matches(host, 443)).toBe(true);
    expect(list.matches('docker.io', 443)).toBe(false);
    expect(list.matches('production.cloudflare.docker.com', 443)).toBe(false);
  });

  it('matches an entry without a port on 443 only', () => {
    expect(list.matches('ghcr.io', 443)).toBe(true);
    expect(list.matches('ghcr.io', 8443)).toBe(false);
  });

  it('matches an entry with a port on that port only', () => {
    expect(list.matches('registry.example', 5000)).toBe(true);
    expect(list.matches('registry.example', 443)).toBe(false);
  });

  it('matches wildcards on subdomains, not on the apex nor look-alikes', () => {
    expect(list.matches('a.corp.example', 443)).toBe(true);
    expect(list.matches('a.b.corp.example', 443)).toBe(true);
    expect(list.matches('corp.example', 443)).toBe(false);
    expect(list.matches('evilcorp.example', 443)).toBe(false);
    expect(list.matches('x.alt.example', 8443)).toBe(true);
    expect(list.matches('x.alt.example', 443)).toBe(false);
  });
});

describe('HostRules', () => {
  it('prefers an exact rule to a wildcard, whatever the order', () => {
    const rules = new HostRules([
      { pattern: '*.corp.example', value: 'wildcard' },
      { pattern: 'registry.corp.example', value: 'exact' },
      { pattern: 'docker.io', value: 'hub' },
    ]);
    expect(rules.match('registry.corp.example', 443)).toBe('exact');
    expect(rules.match('other.corp.example', 443)).toBe('wildcard');
    expect(rules.match('auth.docker.io', 443)).toBe('hub');
    expect(rules.match('ghcr.io', 443)).toBeUndefined();
  });
});
