// Sets of IP networks written as CIDRs ("10.0.0.0/8", "fd00:ec2::254/128", or a bare address),
// matched with node:net's BlockList. IPv4-mapped IPv6 addresses (::ffff:169.254.169.254) are
// matched as the IPv4 address they carry, so a mapped form cannot slip past an IPv4 rule. Pure.
import net from 'node:net';

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** `a.b.c.d/n`, `v6/n` or a bare address (a single host); undefined when malformed. */
export function parseCidr(input: string): Cidr | undefined {
  const [rawAddress = '', rawPrefix, ...rest] = input.trim().split('/');
  if (rest.length > 0) return undefined;
  const address = unmapIpv4(rawAddress.replace(/^\[|\]$/g, '').toLowerCase());
  const version = net.isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  if (rawPrefix !== undefined && !/^\d{1,3}$/.test(rawPrefix)) return undefined;
  const prefix = rawPrefix === undefined ? max : Number(rawPrefix);
  if (prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export function formatCidr(cidr: Cidr): string {
  return `${cidr.address}/${cidr.prefix}`;
}

export class NetworkList {
  readonly #list = new net.BlockList();
  readonly size: number;

  constructor(cidrs: readonly Cidr[]) {
    for (const cidr of cidrs) this.#list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    this.size = cidrs.length;
  }

  /** Whether `address` (an IP literal) is in one of the networks; false for anything else. */
  has(address: string): boolean {
    const plain = unmapIpv4(address.toLowerCase().replace(/%.*$/, ''));
    const version = net.isIP(plain);
    if (version === 0) return false;
    return this.#list.check(plain, version === 4 ? 'ipv4' : 'ipv6');
  }
}

const LOOPBACK = new NetworkList([
  { address: '127.0.0.0', prefix: 8, family: 'ipv4' },
  { address: '::1', prefix: 128, family: 'ipv6' },
]);

export function isLoopback(address: string): boolean {
  return LOOPBACK.has(address);
}

/** `::ffff:1.2.3.4` and `::ffff:102:304` → `1.2.3.4`; anything else unchanged. */
export function unmapIpv4(address: string): string {
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (dotted?.[1] && net.isIPv4(dotted[1])) return dotted[1];
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex?.[1] && hex[2] && net.isIPv6(address)) {
    const high = parseInt(hex[1], 16);
    const low = parseInt(hex[2], 16);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  return address;
}
