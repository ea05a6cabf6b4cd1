/**
 * Alipay certificate mode (公钥证书模式), which fund-out APIs (alipay.fund.trans.*) require.
 * Requests stay RSA2-signed with the app private key and carry two more signed common params,
 * `app_cert_sn` and `alipay_root_cert_sn`; responses carry `alipay_cert_sn` beside `sign` and are
 * verified with the public key of the Alipay certificate of that SN.
 *
 * SN (as alipay-sdk-nodejs-all src/antcertutil.ts): md5_hex(issuerDN + decimal(serial)), where
 * issuerDN is the issuer's attributes in REVERSE order written `CN=…,OU=…,O=…,C=…`. The root SN
 * is the `_`-joined SNs of the certificates of the root bundle whose signature algorithm is an
 * RSA one (OID 1.2.840.113549.1.1.*); the bundle also holds SM2 certificates, which are skipped.
 *
 * node:crypto reads certificates but does not expose the issuer's attributes as typed values nor
 * the signature algorithm, so the few DER fields needed are read here.
 */
import crypto, { type KeyObject } from 'node:crypto';

// --- a minimal DER reader ---------------------------------------------------------------------

interface Tlv { tag: number; start: number; body: Buffer; end: number }

function readTlv(buf: Buffer, at: number): Tlv {
  if (at + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let off = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || off + n > buf.length) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + i]!;
    off += n;
  }
  if (off + len > buf.length) throw new Error('truncated DER');
  return { tag, start: at, body: buf.subarray(off, off + len), end: off + len };
}

function children(body: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < body.length;) {
    const t = readTlv(body, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

function oidOf(body: Buffer): string {
  const first = body[0]!;
  const parts = [Math.floor(first / 40), first % 40];
  let v = 0;
  for (let i = 1; i < body.length; i++) {
    v = v * 128 + (body[i]! & 0x7f);
    if (!(body[i]! & 0x80)) { parts.push(v); v = 0; }
  }
  return parts.join('.');
}

/** The short names @fidm/x509 (which the official SDK uses) gives; other attributes get ''. */
const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU',
  '1.2.840.113549.1.9.1': 'E',
};

function stringOf(t: Tlv): string {
  switch (t.tag) {
    case 0x1e: { // BMPString: UTF-16BE
      const b = Buffer.from(t.body);
      b.swap16();
      return b.toString('utf16le');
    }
    case 0x14: // T61String: treated as Latin-1
      return t.body.toString('latin1');
    default: // UTF8String, PrintableString, IA5String, …
      return t.body.toString('utf8');
  }
}

export interface CertificateFields {
  /** Issuer attributes in certificate order. */
  issuer: Array<{ shortName: string; value: string }>;
  serial: bigint;
  signatureOid: string;
}

/** Reads issuer, serial and signature algorithm from one DER certificate. */
export function certificateFields(der: Buffer): CertificateFields {
  const cert = readTlv(der, 0);
  const [tbs, sigAlg] = children(cert.body);
  if (!tbs || !sigAlg) throw new Error('not a certificate');
  const fields = children(tbs.body);
  let i = 0;
  if (fields[0]?.tag === 0xa0) i = 1; // [0] version
  const serialTlv = fields[i]!;
  const issuerTlv = fields[i + 2]!;
  if (serialTlv.tag !== 0x02 || issuerTlv.tag !== 0x30) throw new Error('not a certificate');
  const serial = BigInt(`0x${serialTlv.body.toString('hex') || '0'}`);
  const issuer: CertificateFields['issuer'] = [];
  for (const rdn of children(issuerTlv.body)) {
    for (const atv of children(rdn.body)) {
      const [type, value] = children(atv.body);
      if (!type || !value) continue;
      issuer.push({ shortName: SHORT_NAMES[oidOf(type.body)] ?? '', value: stringOf(value) });
    }
  }
  const [algOid] = children(sigAlg.body);
  return { issuer, serial, signatureOid: algOid ? oidOf(algOid.body) : '' };
}

const PEM_RE = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle, as DER, in order. */
export function pemCertificates(pem: string): Buffer[] {
  return [...pem.matchAll(PEM_RE)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

/** The SN of one certificate: md5_hex(reversed issuer DN + decimal serial). */
export function certSnOf(der: Buffer): string {
  const { issuer, serial } = certificateFields(der);
  const dn = [...issuer].reverse().map((a) => `${a.shortName}=${a.value}`).join(',');
  return crypto.createHash('md5').update(dn + serial.toString(10), 'utf8').digest('hex');
}

/** The SN of a PEM holding one certificate (the app cert, the Alipay public cert). */
export function certSn(pem: string): string {
  const [der] = pemCertificates(pem);
  if (!der) throw new Error('no certificate in PEM');
  return certSnOf(der);
}

/** The root SN: the `_`-joined SNs of the bundle's RSA-signed certificates. */
export function rootCertSn(pem: string): string {
  const sns = pemCertificates(pem)
    .filter((der) => certificateFields(der).signatureOid.startsWith('1.2.840.113549.1.1'))
    .map(certSnOf);
  if (sns.length === 0) throw new Error('no RSA certificate in the root bundle');
  return sns.join('_');
}

/** The public key of a certificate PEM. */
export function certPublicKey(pem: string): KeyObject {
  return new crypto.X509Certificate(pem).publicKey;
}

/** What certificate mode adds to a credential: the two request SNs and the Alipay cert's key by SN. */
export interface AlipayCertMode {
  appCertSn: string;
  alipayRootCertSn: string;
  /** SN of the Alipay public certificate; responses name it as `alipay_cert_sn`. */
  alipayCertSn: string;
  alipayCertPublicKey: KeyObject;
}

/**
 * Parses the three certificates of certificate mode and checks them against each other: the app
 * certificate must hold the public key of the app private key, and the Alipay certificate must be
 * issued by a certificate of the root bundle's chain (checked by signature, not by name).
 * Throws an Error whose message names the field.
 */
export function parseCertMode(input: { appCert: string; alipayPublicCert: string; alipayRootCert: string; appPrivateKey: KeyObject }): AlipayCertMode {
  const read = (pem: string, field: string) => {
    try {
      const der = pemCertificates(pem);
      if (der.length === 0) throw new Error('no certificate');
      return der.map((d) => ({ der: d, x509: new crypto.X509Certificate(d) }));
    } catch {
      throw new Error(`${field} must be a PEM certificate (-----BEGIN CERTIFICATE-----)`);
    }
  };
  const app = read(input.appCert, 'app_cert')[0]!;
  const alipayCerts = read(input.alipayPublicCert, 'alipay_public_cert');
  const roots = read(input.alipayRootCert, 'alipay_root_cert');
  if (!app.x509.publicKey.equals(crypto.createPublicKey(input.appPrivateKey))) {
    throw new Error("app_cert does not hold the public key of private_key (use the app's own certificate, appCertPublicKey_<app id>.crt)");
  }
  // alipayCertPublicKey_RSA2.crt holds the Alipay leaf first and its issuing CA after it.
  const leaf = alipayCerts[0]!;
  const chain = [...alipayCerts.slice(1), ...roots];
  if (!chain.some((c) => leaf.x509.checkIssued(c.x509) && leaf.x509.verify(c.x509.publicKey))) {
    throw new Error('alipay_public_cert is not issued by a certificate of alipay_root_cert or its own chain');
  }
  let alipayRootCertSn: string;
  try {
    alipayRootCertSn = rootCertSn(input.alipayRootCert);
  } catch {
    throw new Error('alipay_root_cert holds no RSA certificate');
  }
  return {
    appCertSn: certSnOf(app.der),
    alipayRootCertSn,
    alipayCertSn: certSnOf(leaf.der),
    alipayCertPublicKey: leaf.x509.publicKey,
  };
}

/** The two signed common params certificate mode adds to every request. */
export const certModeParams = (m: Pick<AlipayCertMode, 'appCertSn' | 'alipayRootCertSn'>) => ({
  app_cert_sn: m.appCertSn,
  alipay_root_cert_sn: m.alipayRootCertSn,
});

/**
 * The key to verify a cert-mode response with: its `alipay_cert_sn` must be the configured Alipay
 * certificate's. An unknown SN (Alipay rotated its certificate) is refused rather than trusted;
 * the operator uploads the new alipayCertPublicKey_RSA2.crt.
 */
export function responseKeyFor(m: AlipayCertMode, alipayCertSnInResponse: string | undefined): KeyObject | undefined {
  return alipayCertSnInResponse === m.alipayCertSn ? m.alipayCertPublicKey : undefined;
}
