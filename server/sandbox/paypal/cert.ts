/**
 * A minimal X.509 v3 certificate builder (DER by hand, signed with node:crypto), so the
 * simulator can serve a certificate for its webhook key as PayPal serves one at PAYPAL-CERT-URL.
 * No dependency does this here; it is enough for RSA keys and sha256WithRSAEncryption.
 */
import crypto, { type KeyObject } from 'node:crypto';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n >>= 8;
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]) => tlv(0x31, Buffer.concat(parts));

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [a * 40 + b];
  for (const n of rest) {
    const chunk: number[] = [n & 0x7f];
    let v = Math.floor(n / 128);
    while (v > 0) {
      chunk.unshift(0x80 | (v & 0x7f));
      v = Math.floor(v / 128);
    }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) b = b.subarray(1);
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  // UTCTime until 2049, GeneralizedTime after (RFC 5280 §4.1.2.5).
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'));
}

const name = (cn: string, org: string) =>
  seq(set(seq(oid('2.5.4.6'), tlv(0x13, Buffer.from('US')))), set(seq(oid('2.5.4.10'), tlv(0x0c, Buffer.from(org)))), set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn)))));

const SHA256_RSA = seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));

export interface CertificateRequest {
  subjectKey: KeyObject;
  subject: { cn: string; org?: string };
  /** Who signs: itself when omitted. */
  issuer?: { cn: string; org?: string; key: KeyObject };
  notBefore?: Date;
  notAfter?: Date;
  ca?: boolean;
}

/** A PEM certificate for subjectKey, self-signed unless an issuer is given. */
export function buildCertificate(req: CertificateRequest): string {
  const notBefore = req.notBefore ?? new Date(Date.now() - 86_400_000);
  const notAfter = req.notAfter ?? new Date(Date.now() + 5 * 365 * 86_400_000);
  const subject = name(req.subject.cn, req.subject.org ?? 'Checkstand PayPal sandbox');
  const issuerName = req.issuer ? name(req.issuer.cn, req.issuer.org ?? 'Checkstand PayPal sandbox') : subject;
  const signer = req.issuer?.key ?? undefined;
  const spki = crypto.createPublicKey(req.subjectKey).export({ format: 'der', type: 'spki' });
  const basicConstraints = seq(oid('2.5.29.19'), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq(...(req.ca ? [tlv(0x01, Buffer.from([0xff]))] : []))));
  const extensions = tlv(0xa3, seq(basicConstraints));
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(crypto.randomBytes(16)),
    SHA256_RSA,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    subject,
    spki,
    extensions,
  );
  const signingKey = signer ?? req.subjectKey;
  if (signingKey.type !== 'private') throw new Error('buildCertificate: the signing key must be private');
  const signature = crypto.sign('sha256', tbs, signingKey);
  const der = seq(tbs, SHA256_RSA, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
