import { BlockList } from 'node:net';
import { embeddedIPv4, familyOf, parseCidr, type Cidr } from './address';

/**
 * The JSON Schema annotation (`true`) on a param holding a URL that a service fetches under this
 * policy: the manager refuses, at create, a URL whose host is a refused IP address.
 */
export const EGRESS_URL_KEYWORD = 'x-vigil-egress-url';

/** The variable that lists the ranges a deployment lets http-poll reach despite the policy. */
export const ALLOW_VARIABLE = 'HTTP_POLL_ALLOW_CIDRS';

/**
 * Where a request from inside the deployment must not go unless allowed: the hosts beside it
 * (the manager, the broker, the database, other containers), the cloud metadata service
 * (169.254.169.254), and ranges no public endpoint lives in. The first range that holds an
 * address names it in the refusal, so the narrower ones come first.
 */
const REFUSED: readonly (readonly [cidr: string, what: string])[] = [
  ['0.0.0.0/8', 'unspecified, "this network"'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'carrier-grade NAT'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local, cloud metadata'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', '6to4 relay'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/96', 'IPv4-compatible, deprecated'],
  ['::ffff:0:0:0/96', 'IPv4-translated'],
  ['64:ff9b:1::/48', 'local-use NAT64'],
  ['100::/64', 'discard-only'],
  ['2001::/32', 'Teredo'],
  ['2001:db8::/32', 'documentation'],
  ['2002::/16', '6to4'],
  ['3fff::/20', 'documentation'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local, deprecated'],
  ['ff00::/8', 'multicast'],
];

/** Why an address is refused. */
export interface Refusal {
  readonly address: string;
  /** The IPv4 address `address` stands for, when it is IPv4-mapped or NAT64. */
  readonly ipv4?: string;
  /** The refused range that holds it, and what that range is. */
  readonly range: string;
  readonly what: string;
}

/** One sentence: the address, the range that holds it, and how to allow it. */
export function describeRefusal(refusal: Refusal): string {
  const address = refusal.ipv4 ? `${refusal.address} (IPv4 ${refusal.ipv4})` : refusal.address;
  return `${address} is in ${refusal.range} (${refusal.what}); list a range holding it in ${ALLOW_VARIABLE} to allow it`;
}

const refusedRanges = REFUSED.map(([text, what]) => {
  const cidr = parseCidr(text);
  return { range: text, what, list: blockList([cidr]) };
});

function blockList(cidrs: readonly Cidr[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  return list;
}

/**
 * Which addresses outgoing requests may reach: anything but the refused ranges, and within
 * those, what the allow-list holds. An IPv4-mapped or NAT64 address is judged as the IPv4
 * address it reaches.
 */
export class EgressPolicy {
  private readonly allowed: BlockList;

  constructor(allow: readonly Cidr[] = []) {
    this.allowed = blockList(allow);
  }

  /** Why `address` (an IP address) is refused, or undefined if it may be reached. */
  refusal(address: string): Refusal | undefined {
    // A zone (`fe80::1%eth0`) says which interface, not which host.
    const plain = address.replace(/%.*$/, '');
    const family = familyOf(plain);
    if (!family) throw new Error(`not an IP address: ${JSON.stringify(address)}`);
    const ipv4 = embeddedIPv4(plain);
    const judged = ipv4 ?? plain;
    const judgedFamily = ipv4 ? 'ipv4' : family;
    if (this.allowed.check(judged, judgedFamily) || this.allowed.check(plain, family)) return undefined;
    const refused = refusedRanges.find(({ list }) => list.check(judged, judgedFamily));
    if (!refused) return undefined;
    return { address, ...(ipv4 ? { ipv4 } : {}), range: refused.range, what: refused.what };
  }
}

/**
 * Why the URL's host, when it is an IP address written out, is refused; undefined for a host
 * name (judged only when it is resolved) and for a string that is no URL.
 */
export function literalRefusal(policy: EgressPolicy, url: string): Refusal | undefined {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return undefined;
  }
  const address = host.startsWith('[') ? host.slice(1, -1) : host;
  return familyOf(address) ? policy.refusal(address) : undefined;
}
