import net from 'node:net';

/**
 * Which IP addresses a webhook may connect to (SSRF, DESIGN §4). The delivery client applies
 * this to the address it actually connects to, after DNS, so a name that is re-pointed at an
 * internal address after the endpoint was registered (DNS rebinding) is still refused.
 */

export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'unique_local'
  | 'cgnat'
  | 'link_local'
  | 'metadata'
  | 'multicast'
  | 'unspecified'
  | 'reserved';

/** Who is asking: the endpoint's mode and the operator's CHECKSTAND_ALLOW_PRIVATE_WEBHOOKS. */
export interface AddressPolicy {
  livemode: boolean;
  allowPrivate: boolean;
}

type Range = [prefix: number[], bits: number, cls: AddressClass];

// First match wins, so the single metadata addresses come before the ranges holding them.
const v4Ranges: Range[] = [
  [[169, 254, 169, 254], 32, 'metadata'], // AWS, GCP, Azure, OpenStack, Oracle
  [[169, 254, 170, 2], 32, 'metadata'], // AWS ECS task credentials
  [[169, 254, 170, 23], 32, 'metadata'], // AWS EKS pod identity
  [[100, 100, 100, 200], 32, 'metadata'], // Alibaba Cloud
  [[192, 0, 0, 192], 32, 'metadata'], // Oracle Cloud (classic)
  [[0], 8, 'unspecified'], // "this network"; 0.0.0.0 reaches the local host on Linux
  [[127], 8, 'loopback'],
  [[10], 8, 'private'],
  [[172, 16], 12, 'private'],
  [[192, 168], 16, 'private'],
  [[100, 64], 10, 'cgnat'],
  [[169, 254], 16, 'link_local'],
  [[192, 0, 0], 24, 'reserved'], // IETF protocol assignments
  [[192, 0, 2], 24, 'reserved'], // documentation
  [[198, 51, 100], 24, 'reserved'],
  [[203, 0, 113], 24, 'reserved'],
  [[192, 88, 99], 24, 'reserved'], // deprecated 6to4 relays
  [[198, 18], 15, 'reserved'], // benchmarking
  [[224], 4, 'multicast'],
  [[240], 4, 'reserved'], // reserved, and 255.255.255.255 broadcast
];

const v6Ranges: Range[] = [
  [[0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54], 128, 'metadata'], // fd00:ec2::254, AWS over IPv6
  [[], 128, 'unspecified'], // ::
  [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128, 'loopback'], // ::1
  [[], 96, 'reserved'], // IPv4-compatible (deprecated); the two above are inside it
  [[0, 0x64, 0xff, 0x9b, 0, 1], 48, 'private'], // local-use NAT64 (RFC 8215)
  [[1, 0, 0, 0, 0, 0, 0, 0], 64, 'reserved'], // discard-only
  [[0x20, 0x01, 0x0d, 0xb8], 32, 'reserved'], // documentation
  [[0x20, 0x01, 0x00], 23, 'reserved'], // IETF protocol assignments (Teredo, ORCHID, benchmarking)
  [[0x3f, 0xff, 0x00], 20, 'reserved'], // documentation (RFC 9637)
  [[0xfc], 7, 'unique_local'],
  [[0xfe, 0x80], 10, 'link_local'],
  [[0xfe, 0xc0], 10, 'private'], // site-local (deprecated)
  [[0xff], 8, 'multicast'],
];

function matches(bytes: Uint8Array, prefix: number[], bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const take = Math.min(8, bits - i);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((bytes[i / 8] & mask) !== ((prefix[i / 8] ?? 0) & mask)) return false;
  }
  return true;
}

function parseV4(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.').map(Number));
}

/** 16 bytes of a valid IPv6 text (with `::` and a trailing dotted quad allowed). */
function parseV6(ip: string): Uint8Array {
  let text = ip;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    tail.push(...parseV4(dotted[1]));
    text = text.slice(0, -dotted[1].length) + '0:0'; // stand-in groups, replaced below
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').filter((g) => g !== '') : []);
  const left = groups(head);
  const right = groups(rest);
  const all = rest === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    const v = parseInt(g, 16);
    bytes[i * 2] = v >> 8;
    bytes[i * 2 + 1] = v & 0xff;
  });
  if (tail.length) bytes.set(tail, 12);
  return bytes;
}

function classifyV4(bytes: Uint8Array): AddressClass {
  for (const [prefix, bits, cls] of v4Ranges) if (matches(bytes, prefix, bits)) return cls;
  return 'public';
}

function classifyV6(bytes: Uint8Array): AddressClass {
  // Addresses that carry an IPv4 address are judged by it: IPv4-mapped (::ffff:a.b.c.d, what a
  // dual-stack socket reports), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
  if (matches(bytes, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 96)) return classifyV4(bytes.subarray(12));
  if (matches(bytes, [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], 96)) return classifyV4(bytes.subarray(12));
  if (matches(bytes, [0x20, 0x02], 16)) return classifyV4(bytes.subarray(2, 6));
  for (const [prefix, bits, cls] of v6Ranges) if (matches(bytes, prefix, bits)) return cls;
  // Only 2000::/3 is assigned as global unicast; everything else is reserved space.
  return matches(bytes, [0x20], 3) ? 'public' : 'reserved';
}

/** What kind of address `ip` is (IPv4, IPv6, IPv6 with a zone id); null when it is not an IP address. */
export function classifyAddress(ip: string): AddressClass | null {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const noZone = bare.replace(/%.*$/, '');
  const family = net.isIP(noZone);
  if (family === 4) return classifyV4(parseV4(noZone));
  if (family === 6) return classifyV6(parseV6(noZone.toLowerCase()));
  return null;
}

/**
 * Whether a webhook of this mode may connect to an address of this class. Test mode may reach
 * loopback (a developer's own machine); private networks need the operator's setting in either
 * mode. Link-local, metadata, multicast, unspecified and reserved addresses are never reached:
 * cloud credential services live at link-local addresses, and the rest is not a web server.
 */
export function isAddressAllowed(cls: AddressClass, policy: AddressPolicy): boolean {
  switch (cls) {
    case 'public':
      return true;
    case 'loopback':
      return !policy.livemode || policy.allowPrivate;
    case 'private':
    case 'unique_local':
    case 'cgnat':
      return policy.allowPrivate;
    case 'link_local':
    case 'metadata':
    case 'multicast':
    case 'unspecified':
    case 'reserved':
      return false;
  }
}

/** Human words for an error message. */
export function describeClass(cls: AddressClass): string {
  return cls.replace('_', '-');
}

// Names that are, by definition, the local host or a metadata service, refused without asking DNS.
const loopbackNames = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback']);
const metadataNames = new Set(['metadata.google.internal', 'metadata', 'instance-data', 'instance-data.ec2.internal']);

/**
 * The class of a URL host (as the WHATWG parser normalised it) when it can be told without DNS:
 * an IP literal or a well-known name. null for an ordinary name, which is checked at connect time.
 */
export function classifyHost(hostname: string): AddressClass | null {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (loopbackNames.has(host) || host.endsWith('.localhost')) return 'loopback';
  if (metadataNames.has(host)) return 'metadata';
  return classifyAddress(host);
}
