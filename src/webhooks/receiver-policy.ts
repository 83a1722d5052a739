import { BlockList, isIP } from 'node:net';

/**
 * Which receiver URLs Barge may call (SSRF): the operator's choice, from the configuration.
 *
 * - https only, unless `webhooks.allowHttp`; no credentials in the URL; at most 2,048 characters.
 * - When `webhooks.allowedHosts` is set, the host must be one of them (`*.example.com` matches
 *   its subdomains).
 * - Every address the host resolves to must be public: loopback, private, link-local (cloud
 *   metadata at 169.254.169.254 and fd00:ec2::254 included), carrier-grade NAT, multicast,
 *   reserved, documentation, benchmarking and unspecified (0.0.0.0, ::) ranges are refused,
 *   IPv4 addresses inside IPv6 (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible, NAT64 64:ff9b::/96,
 *   6to4 2002::/16) by the IPv4 they carry, unless the address lies in one of
 *   `webhooks.allowedNetworks`.
 *
 * The check runs when an endpoint is created or changed and again at each delivery, after DNS
 * resolution; the delivery then connects to the very address that was checked (sender.ts), so
 * a name that resolves differently the second time (DNS rebinding) gains nothing.
 */

export interface ReceiverPolicyConfig {
  allowedNetworks: readonly string[];
  allowedHosts: readonly string[];
  allowHttp: boolean;
}

export const MAX_RECEIVER_URL_LENGTH = 2_048;

/** A receiver URL or address Barge will not call; `message` says why, for the tenant. */
export class ReceiverRefused extends Error {}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to its addresses (dns.lookup in production, a fake in tests). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** Special-purpose IPv4 ranges (IANA registry, RFC 6890 and successors) no receiver may be in. */
const NON_PUBLIC_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network", 0.0.0.0 included
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT (and Alibaba's metadata at 100.100.100.200)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata at 169.254.169.254
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast included
];

/** ...and IPv6 ones (those carrying an IPv4 address are unwrapped first, see embeddedIPv4). */
const NON_PUBLIC_V6: [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, ...)
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (fd00:ec2::254, AWS's metadata, included)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const nonPublic = new BlockList();
for (const [net, prefix] of NON_PUBLIC_V4) nonPublic.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of NON_PUBLIC_V6) nonPublic.addSubnet(net, prefix, 'ipv6');

/** The 16 bytes of an IPv6 address (isIP(address) === 6). */
function ipv6Bytes(address: string): number[] {
  let text = address;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    tail.push(...dotted[1].split('.').map(Number));
    text = text.slice(0, -dotted[1].length) + '0:0';
  }
  const [head, rest] = text.split('::');
  const groups = (part: string | undefined) => (part ? part.split(':').filter((g) => g !== '') : []);
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const zeros = 8 - left.length - right.length;
  const all = [...left, ...Array<string>(rest === undefined ? 0 : zeros).fill('0'), ...right];
  const bytes = all.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if it carries one. */
export function embeddedIPv4(address: string): string | null {
  if (isIP(address) !== 6) return null;
  const b = ipv6Bytes(address);
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const v4 = (at: number) => b.slice(at, at + 4).join('.');
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(12); // ::ffff:a.b.c.d
  if (zero(0, 12) && !zero(12, 16) && !(zero(12, 15) && b[15] === 1)) return v4(12); // ::a.b.c.d
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return v4(12); // 64:ff9b::/96
  if (b[0] === 0x20 && b[1] === 0x02) return v4(2); // 2002:aabb:ccdd::/48
  return null;
}

export class ReceiverPolicy {
  private readonly allowed = new BlockList();

  constructor(private readonly config: ReceiverPolicyConfig) {
    for (const entry of config.allowedNetworks) {
      const [net, prefixText] = entry.split('/');
      const family = isIP(net);
      if (family === 0)
        throw new ReceiverRefused(`webhooks.allowedNetworks: "${entry}" is not an IP network`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText);
      if (prefix > (family === 4 ? 32 : 128)) {
        throw new ReceiverRefused(`webhooks.allowedNetworks: "${entry}" has a bad prefix length`);
      }
      this.allowed.addSubnet(net, prefix, type);
    }
  }

  /** The URL if its form is acceptable (scheme, credentials, length, allowed host); else ReceiverRefused. */
  parse(raw: string): URL {
    if (raw.length > MAX_RECEIVER_URL_LENGTH) {
      throw new ReceiverRefused(`The URL is longer than ${MAX_RECEIVER_URL_LENGTH} characters.`);
    }
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ReceiverRefused('The URL is not a valid absolute URL.');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.config.allowHttp)) {
      throw new ReceiverRefused(
        this.config.allowHttp ? 'The URL must use http or https.' : 'The URL must use https.',
      );
    }
    if (url.username || url.password) throw new ReceiverRefused('The URL must not carry credentials.');
    if (!url.hostname) throw new ReceiverRefused('The URL has no host.');
    const host = hostOf(url);
    if (this.config.allowedHosts.length > 0 && !this.config.allowedHosts.some((p) => hostMatches(p, host))) {
      throw new ReceiverRefused(`The host ${host} is not one this server delivers webhooks to.`);
    }
    return url;
  }

  /** Why Barge may not connect to `address`, or null when it may. */
  refusal(address: string): string | null {
    const family = isIP(address);
    if (family === 0) return `${address} is not an IP address`;
    const carried = embeddedIPv4(address);
    const checked = carried ?? address;
    const type = carried || family === 4 ? 'ipv4' : 'ipv6';
    if (this.allowed.check(checked, type)) return null;
    if (nonPublic.check(checked, type)) {
      return `${address}${carried ? ` (IPv4 ${carried})` : ''} is a loopback, private, link-local or reserved address`;
    }
    return null;
  }

  /**
   * The addresses to connect to for `url`: its IP, or every address its host resolves to,
   * all of which must be allowed (one bad answer refuses the lot: it could be the one used).
   */
  async resolve(url: URL, resolver: Resolver): Promise<ResolvedAddress[]> {
    const host = hostOf(url);
    const literal = isIP(host);
    let addresses: ResolvedAddress[];
    if (literal) {
      addresses = [{ address: host, family: literal as 4 | 6 }];
    } else {
      try {
        addresses = await resolver(host);
      } catch (err) {
        throw new ReceiverRefused(`The host ${host} could not be resolved (${(err as Error).message}).`);
      }
      if (addresses.length === 0) throw new ReceiverRefused(`The host ${host} has no addresses.`);
    }
    for (const { address } of addresses) {
      const why = this.refusal(address);
      if (why) {
        throw new ReceiverRefused(
          literal
            ? `Webhooks may not be sent to ${why}.`
            : `The host ${host} resolves to ${why}; webhooks may not be sent there.`,
        );
      }
    }
    return addresses;
  }
}

/** The URL's host without IPv6 brackets or a trailing dot. */
export function hostOf(url: URL): string {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  return p.startsWith('*.') ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p;
}
