import { describe, expect, it } from 'vitest';
import { DEFAULT_DENY_NETWORKS } from '../../../src/config/schema.ts';
import {
  DestinationGuard,
  DestinationRefusedError,
  ipv4Resolver,
  systemResolver,
} from '../../../src/net/guard.ts';
import { NetworkList, parseCidr, unmapIpv4, type Cidr } from '../../../src/net/networks.ts';

const deny = new NetworkList(DEFAULT_DENY_NETWORKS.map((c) => parseCidr(c) as Cidr));

describe('networks', () => {
  it('parses addresses and CIDRs, refusing malformed ones', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseCidr('[fd00::]/8')).toEqual({ address: 'fd00::', prefix: 8, family: 'ipv6' });
    expect(parseCidr('192.168.1.7')).toEqual({ address: '192.168.1.7', prefix: 32, family: 'ipv4' });
    for (const bad of [
      '10.0.0.0/33',
      '::/129',
      'example.com',
      '10.0.0.0/8/1',
      '10.0.0.0/-1',
      '',
      '1.2.3.4/',
    ]) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });

  it('matches IPv4-mapped IPv6 forms against IPv4 rules', () => {
    for (const address of [
      '169.254.169.254',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '0:0:0:0:0:ffff:a9fe:a9fe',
      'fd00:ec2::254',
      'fe80::1%eth0',
      '100.100.100.200',
      '0.0.0.0',
      '224.0.0.1',
    ]) {
      expect(deny.has(address), address).toBe(true);
    }
    for (const address of ['10.1.2.3', '192.168.0.1', '8.8.8.8', '::1', '127.0.0.1', '2001:db8::1', 'nope']) {
      expect(deny.has(address), address).toBe(false);
    }
    expect(unmapIpv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(unmapIpv4('2001:db8::1')).toBe('2001:db8::1');
  });
});

describe('DestinationGuard', () => {
  const resolve = (host: string) =>
    Promise.resolve(
      (
        {
          'rebind.test': [
            { address: '10.0.0.5', family: 4 as const },
            { address: '169.254.169.254', family: 4 as const },
          ],
          'metadata.test': [{ address: '169.254.169.254', family: 4 as const }],
          'local.test': [{ address: '127.0.0.1', family: 4 as const }],
        } as Record<string, Array<{ address: string; family: 4 | 6 }>>
      )[host] ?? [],
    );
  const guard = new DestinationGuard({ deny, resolve });

  it('keeps only allowed addresses, in order, and refuses a name with none', async () => {
    expect(await guard.addresses('rebind.test', { allowLoopback: false })).toEqual([
      { address: '10.0.0.5', family: 4 },
    ]);
    await expect(guard.addresses('metadata.test', { allowLoopback: true })).rejects.toThrow(
      'metadata.test: resolves to 169.254.169.254, a refused network (proxy.denyNetworks)',
    );
    await expect(guard.addresses('169.254.169.254', { allowLoopback: true })).rejects.toBeInstanceOf(
      DestinationRefusedError,
    );
    await expect(guard.addresses('nothing.test', { allowLoopback: true })).rejects.toThrow('no address');
  });

  it('lets loopback through only when asked to (a client on loopback)', async () => {
    await expect(guard.addresses('local.test', { allowLoopback: false })).rejects.toThrow(
      'resolves to 127.0.0.1, loopback',
    );
    await expect(guard.addresses('::1', { allowLoopback: false })).rejects.toThrow('loopback');
    expect(await guard.addresses('local.test', { allowLoopback: true })).toEqual([
      { address: '127.0.0.1', family: 4 },
    ]);
  });
});

describe('resolvers', () => {
  it('ipv4Resolver (proxy.ipv6: false) gives only the IPv4 addresses of a name', async () => {
    // localhost is in /etc/hosts: no DNS query leaves the machine.
    const all = await systemResolver('localhost');
    const v4 = await ipv4Resolver('localhost');
    expect(v4.length).toBeGreaterThan(0);
    expect(v4.every(({ family }) => family === 4)).toBe(true);
    expect(v4.map(({ address }) => address)).toEqual(
      all.filter(({ family }) => family === 4).map(({ address }) => address),
    );
  });
});
