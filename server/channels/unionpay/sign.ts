/**
 * UnionPay ACP 5.1.0 signatures (signMethod 01) and the response/notify verification by
 * `signPubKeyCert` chained to the configured middle and root certificates (protocols/unionpay.md).
 */
import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import { MalformedMessageError, SignatureError } from '../../errors.ts';

/** The CN's third `@` part of every UnionPay signing certificate (CertUtil's ifValidateCNName). */
export const UNIONPAY_CN_ORG = '中国银联股份有限公司';

/** Official filterBlank: empty values dropped, the rest trimmed. */
export function filterBlank(fields: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) {
    const t = v?.trim();
    if (t) out[k] = t;
  }
  return out;
}

/** The signed string: every field but `signature`, sorted by key (Java TreeMap order), raw `k=v` joined by `&`. */
export function signString(fields: Record<string, string>): string {
  return Object.keys(fields)
    .filter((k) => k !== 'signature')
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${k}=${fields[k]}`)
    .join('&');
}

/** What RSA actually signs: the lowercase hex SHA-256 of the signed string (SHA-256 is applied twice). */
export const signDigest = (fields: Record<string, string>): string =>
  crypto.createHash('sha256').update(signString(fields), 'utf8').digest('hex');

/** certId: the signing certificate's serial in decimal (BigInteger.toString(10)); parseInt would lose precision above 2^53. */
export const certIdOf = (cert: X509Certificate): string => BigInt(`0x${cert.serialNumber}`).toString(10);

/**
 * Signs a request: blanks filtered, certId and signMethod set first (both are signed), then
 * base64 SHA256withRSA over the hex digest.
 */
export function signRequest(fields: Record<string, string | undefined>, key: KeyObject, certId: string): Record<string, string> {
  const signed = filterBlank({ ...fields, certId, signMethod: '01' });
  delete signed.signature;
  signed.signature = crypto.createSign('RSA-SHA256').update(signDigest(signed), 'utf8').sign(key, 'base64');
  return signed;
}

/** Verifies `signature` of `fields` with `publicKey` by the double-hash rule. */
export function verifySignature(fields: Record<string, string>, publicKey: KeyObject): boolean {
  const sig = fields.signature;
  if (!sig || !/^[A-Za-z0-9+/]+={0,2}$/.test(sig)) return false;
  return crypto.createVerify('RSA-SHA256').update(signDigest(fields), 'utf8').verify(publicKey, sig, 'base64');
}

/** The configured trust anchors: UnionPay's root and middle (intermediate) certificates. */
export interface TrustAnchors {
  root: X509Certificate;
  middle: X509Certificate;
}

/** Unix seconds → whether `cert` is valid then. */
function validAt(cert: X509Certificate, nowMs: number): boolean {
  return Date.parse(cert.validFrom) <= nowMs && nowMs <= Date.parse(cert.validTo);
}

/** The subject CN (Node prints the subject one attribute per line). */
export function commonNameOf(cert: X509Certificate): string {
  return cert.subject.split('\n').filter((l) => l.startsWith('CN=')).at(-1)?.slice(3) ?? '';
}

/**
 * Chain leaf → middle → root (signatures and issuer names, no revocation), every certificate
 * valid at `nowMs`. Throws SignatureError saying which link failed.
 */
export function checkChain(leaf: X509Certificate, trust: TrustAnchors, nowMs: number): void {
  if (!leaf.checkIssued(trust.middle) || !leaf.verify(trust.middle.publicKey)) throw new SignatureError('UnionPay signPubKeyCert is not issued by the configured middle_cert');
  if (!trust.middle.checkIssued(trust.root) || !trust.middle.verify(trust.root.publicKey)) throw new SignatureError('UnionPay middle_cert is not issued by the configured root_cert');
  for (const [what, cert] of [['signPubKeyCert', leaf], ['middle_cert', trust.middle], ['root_cert', trust.root]] as const) {
    if (!validAt(cert, nowMs)) throw new SignatureError(`UnionPay ${what} is not valid now (valid ${cert.validFrom} – ${cert.validTo})`);
  }
}

/** The CN of a UnionPay signing certificate is `…@中国银联股份有限公司@…`: checked in every mode (the simulator's leaf has it too). */
export function checkCommonName(leaf: X509Certificate): void {
  if (commonNameOf(leaf).split('@')[2] !== UNIONPAY_CN_ORG) throw new SignatureError('UnionPay signPubKeyCert is not a UnionPay signing certificate (CN)');
}

/** Chain-checked leaves by their exact PEM and the anchors they chained to (CertUtil's verifyCerts510 cache). */
const verifiedLeaves = new Map<string, X509Certificate>();
const MAX_CACHED = 200;

/**
 * Verifies a sync response or notify: signPubKeyCert parsed, chained to `trust`, valid at
 * `nowMs`, CN checked, then the signature over all fields but `signature` (signPubKeyCert
 * included, its line endings as received). Throws SignatureError.
 */
export function verifyMessage(fields: Record<string, string>, trust: TrustAnchors, nowMs: number = Date.now()): void {
  const pem = fields.signPubKeyCert;
  if (!pem) throw new SignatureError('UnionPay message carries no signPubKeyCert');
  if (!fields.signature) throw new SignatureError('UnionPay message carries no signature');
  const cacheKey = `${trust.root.fingerprint256}|${trust.middle.fingerprint256}|${pem}`;
  let leaf = verifiedLeaves.get(cacheKey);
  if (!leaf) {
    try {
      leaf = new X509Certificate(pem);
    } catch {
      throw new SignatureError('UnionPay signPubKeyCert is not a certificate');
    }
    checkChain(leaf, trust, nowMs);
    checkCommonName(leaf);
    if (verifiedLeaves.size >= MAX_CACHED) verifiedLeaves.clear();
    verifiedLeaves.set(cacheKey, leaf);
  } else if (!validAt(leaf, nowMs) || !validAt(trust.middle, nowMs) || !validAt(trust.root, nowMs)) {
    // Cached chains still expire.
    checkChain(leaf, trust, nowMs);
  }
  if (!verifySignature(fields, leaf.publicKey)) throw new SignatureError('UnionPay signature does not verify with signPubKeyCert');
}

/**
 * A sync answer (back trans, query): raw `k=v&k=v`, NOT URL-encoded. Split on `&` only outside
 * `{…}` and `[…]`, each pair on its first `=` (SDKUtil.parseQString). A repeated key or a pair
 * without `=` is malformed.
 */
export function parseRawResponse(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  const add = (pair: string) => {
    if (pair === '') return;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new MalformedMessageError('UnionPay answer has a field without a name or =');
    const key = pair.slice(0, eq);
    if (Object.hasOwn(out, key)) throw new MalformedMessageError(`UnionPay answer repeats field ${key.slice(0, 40)}`);
    out[key] = pair.slice(eq + 1);
  };
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' || c === '[') depth++;
    else if ((c === '}' || c === ']') && depth > 0) depth--;
    else if (c === '&' && depth === 0) {
      add(text.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw new MalformedMessageError('UnionPay answer has an unbalanced { or [');
  add(text.slice(start));
  return out;
}

/** Writes fields the way UnionPay answers (raw, unencoded): for the simulator and tests. */
export const rawResponseOf = (fields: Record<string, string>): string =>
  Object.entries(fields).map(([k, v]) => `${k}=${v}`).join('&');

/**
 * Signs a message as UnionPay does (answers and notifies, for the simulator and tests):
 * signPubKeyCert set first (it is signed, with its line endings), then the signature.
 */
export function signAsUnionpay(fields: Record<string, string>, key: KeyObject, signPubKeyCert: string): Record<string, string> {
  const out: Record<string, string> = { ...fields, signMethod: fields.signMethod ?? '01', signPubKeyCert };
  delete out.signature;
  out.signature = crypto.createSign('RSA-SHA256').update(signDigest(out), 'utf8').sign(key, 'base64');
  return out;
}
