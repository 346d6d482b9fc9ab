import { describe, expect, it } from 'vitest';
import { formatAuthority, normalizeHost, originOf, parseAuthority } from '../../../src/http/destination.ts';

describe('destination', () => {
  it.each([
    ['registry-1.docker.io:443', 'registry-1.docker.io', 443],
    ['Registry.Example.:5000', 'registry.example', 5000],
    ['127.0.0.1:8080', '127.0.0.1', 8080],
    ['[::1]:443', '::1', 443],
  ])('parses %s', (authority, host, port) =>
    expect(parseAuthority(authority)).toEqual({ host, port, scheme: 'https' }),
  );

  it.each([
    'example.com',
    'example.com:',
    'example.com:0',
    'example.com:65536',
    '::1:443',
    '[example.com]:443',
    'a b:443',
    'ex$ample.com:443',
    '-bad.example:443',
    ':443',
  ])('refuses %j', (authority) => expect(parseAuthority(authority)).toBeUndefined());

  it('formats authorities and origins, bracketing IPv6 and omitting default ports', () => {
    expect(formatAuthority({ host: '::1', port: 443 })).toBe('[::1]:443');
    expect(originOf({ host: 'ghcr.io', port: 443, scheme: 'https' })).toBe('https://ghcr.io');
    expect(originOf({ host: 'r.example', port: 5000, scheme: 'https' })).toBe('https://r.example:5000');
    expect(originOf({ host: '::1', port: 80, scheme: 'http' })).toBe('http://[::1]');
    expect(normalizeHost('UPPER.example.')).toBe('upper.example');
  });
});
