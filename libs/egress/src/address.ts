import { isIPv4, isIPv6 } from 'node:net';

export type Family = 'ipv4' | 'ipv6';

/** A range of addresses, e.g. `10.0.0.0/8`. */
export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: Family;
}

/** The family of an IP address without a zone (`fe80::1%eth0` is none), or undefined. */
export function familyOf(address: string): Family | undefined {
  if (isIPv4(address)) return 'ipv4';
  if (isIPv6(address) && !address.includes('%')) return 'ipv6';
  return undefined;
}

/**
 * Parses `a.b.c.d/n` or `x:y::/n` strictly: the prefix length is required, and no bit may be set
 * past it (`10.1.2.3/8` is an error, not `10.0.0.0/8`: the writer meant one of the two).
 */
export function parseCidr(text: string): Cidr {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const address = match?.[1] ?? '';
  const family = familyOf(address);
  if (!match || !family) throw new Error(`"${text}" is not a CIDR like 10.0.0.0/8 or fd00::/8`);
  const prefix = Number(match[2]);
  const bits = family === 'ipv4' ? 32 : 128;
  if (prefix > bits) throw new Error(`"${text}": an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} prefix is at most /${bits}`);
  const bytes = toBytes(address);
  for (let bit = prefix; bit < bits; bit++) {
    if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) throw new Error(`"${text}" has bits set past /${prefix}`);
  }
  return { address, prefix, family };
}

/**
 * The IPv4 address an IPv6 address stands for, when it is IPv4-mapped (`::ffff:10.0.0.1`, which
 * a dual-stack socket connects to 10.0.0.1) or NAT64 with the well-known prefix
 * (`64:ff9b::10.0.0.1`, which a NAT64 gateway translates to it).
 */
export function embeddedIPv4(address: string): string | undefined {
  if (familyOf(address) !== 'ipv6') return undefined;
  const b = toBytes(address);
  const zeros = (from: number, to: number) => b.slice(from, to).every((byte) => byte === 0);
  const mapped = zeros(0, 10) && b[10] === 0xff && b[11] === 0xff;
  const nat64 = b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12);
  return mapped || nat64 ? b.slice(12).join('.') : undefined;
}

/** The bytes of a valid IPv4 or IPv6 address (4 or 16). */
function toBytes(address: string): number[] {
  if (isIPv4(address)) return address.split('.').map(Number);
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const zeros = Array<string>(8 - before.length - after.length).fill('0');
  return [...before, ...zeros, ...after].flatMap((group) => {
    const value = parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}
