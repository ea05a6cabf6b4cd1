/**
 * A minimal X.509 v3 certificate builder (DER by hand, signed SHA256withRSA with node:crypto):
 * node:crypto reads certificates but cannot issue them, and the simulator needs its own
 * root → middle → signing-leaf chain with UnionPay's CN form, plus the merchants' signing certs.
 */
import crypto, { type KeyObject } from 'node:crypto';
import net from 'node:net';

// --- DER ---------------------------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const seq = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const explicit = (n: number, inner: Buffer) => tlv(0xa0 + n, inner);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);

/** A non-negative INTEGER (a leading zero byte keeps it positive). */
function integer(value: bigint): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let b = Buffer.from(hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(unixSeconds: number): Buffer {
  const iso = new Date(unixSeconds * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const year = Number(iso.slice(0, 4));
  return year < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, 'ascii')) : tlv(0x18, Buffer.from(`${iso}Z`, 'ascii'));
}

const NAME_OIDS: Record<string, string> = { C: '2.5.4.6', O: '2.5.4.10', OU: '2.5.4.11', CN: '2.5.4.3' };

/** A distinguished name from [attribute, value] pairs in order; C is PrintableString, the rest UTF8String. */
function name(rdns: ReadonlyArray<readonly [keyof typeof NAME_OIDS, string]>): Buffer {
  return seq(...rdns.map(([attr, value]) => set(seq(oid(NAME_OIDS[attr]!), attr === 'C' ? tlv(0x13, Buffer.from(value, 'ascii')) : tlv(0x0c, Buffer.from(value, 'utf8'))))));
}

const SHA256_WITH_RSA = seq(oid('1.2.840.113549.1.1.11'), tlv(0x05));

// --- certificates ------------------------------------------------------------------------------

export type DistinguishedName = ReadonlyArray<readonly ['C' | 'O' | 'OU' | 'CN', string]>;

export interface CertificateSpec {
  serial: bigint;
  subject: DistinguishedName;
  issuer: DistinguishedName;
  /** Unix seconds. */
  notBefore: number;
  notAfter: number;
  publicKey: KeyObject;
  /** The issuer's private key (the subject's own for a self-signed root). */
  issuerKey: KeyObject;
  /** A CA may sign certificates (basicConstraints CA, keyCertSign); a leaf only signs messages. */
  ca: boolean;
  /** subjectAltName entries (a TLS server certificate names its hosts here; IP hosts can only be named here). */
  altNames?: { dns?: readonly string[]; ip?: readonly string[] };
}

/** subjectAltName GeneralNames: dNSName [2] IA5String, iPAddress [7] the 4 or 16 address bytes. */
function altNamesExtension(alt: NonNullable<CertificateSpec['altNames']>): Buffer {
  const names = [
    ...(alt.dns ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...(alt.ip ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  return seq(oid('2.5.29.17'), octets(seq(...names)));
}

function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!net.isIPv6(ip) || ip.includes('.')) throw new RangeError(`not an IPv4 or plain IPv6 address: ${ip}`);
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/** Issues a certificate; returns its PEM with `eol` line endings (UnionPay sends CRLF). */
export function issueCertificate(spec: CertificateSpec, eol: '\n' | '\r\n' = '\n'): string {
  const keyUsage = spec.ca ? Buffer.from([0x06]) : Buffer.from([0xc0]); // keyCertSign|cRLSign, or digitalSignature|nonRepudiation
  const extensions = seq(
    seq(oid('2.5.29.19'), bool(true), octets(spec.ca ? seq(bool(true)) : seq())),
    seq(oid('2.5.29.15'), bool(true), octets(bits(keyUsage, spec.ca ? 1 : 6))),
    ...(spec.altNames ? [altNamesExtension(spec.altNames)] : []),
  );
  const tbs = seq(
    explicit(0, integer(2n)),
    integer(spec.serial),
    SHA256_WITH_RSA,
    name(spec.issuer),
    seq(time(spec.notBefore), time(spec.notAfter)),
    name(spec.subject),
    spec.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, extensions),
  );
  const signature = crypto.sign('sha256', tbs, spec.issuerKey);
  const der = seq(tbs, SHA256_WITH_RSA, bits(signature));
  return pemOf(der, eol);
}

export function pemOf(der: Buffer, eol: '\n' | '\r\n' = '\n'): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return ['-----BEGIN CERTIFICATE-----', ...lines, '-----END CERTIFICATE-----'].join(eol) + eol;
}

/** A random positive serial of `bytes` bytes (UnionPay's are 5 bytes: certIds of 11–12 digits). */
export function randomSerial(bytes = 5): bigint {
  const b = crypto.randomBytes(bytes);
  b[0] = (b[0]! & 0x7f) | 0x10;
  return BigInt(`0x${b.toString('hex')}`);
}
