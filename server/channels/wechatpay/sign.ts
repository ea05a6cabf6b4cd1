/**
 * WeChat Pay API v3 signatures and encryption: the request Authorization header, the signed
 * headers of responses and notifies (SHA256withRSA, PKCS#1 v1.5), the 5-minute timestamp window,
 * AEAD_AES_256_GCM notify resources, and the JSAPI paySign. node:crypto only.
 * Sources: pay.weixin.qq.com/doc/v3/merchant/4012365336 (签名生成), 4013053249 (应答与回调验签),
 * 4012071382 (回调报文解密), 4012365341 (JSAPI 调起支付签名), and the official wechatpay-go
 * validators (core/auth/validators), whose golden vectors our tests use.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { MalformedMessageError, SignatureError } from '../../errors.ts';
import { nowSeconds, randomId } from '../../crypto.ts';

export const AUTH_SCHEMA = 'WECHATPAY2-SHA256-RSA2048';
/** WeChat Pay refuses (and its SDKs reject) a timestamp 5 minutes or more away from now. */
export const TIMESTAMP_WINDOW_S = 300;
/** WeChat sends probe messages whose signature starts so; they must fail verification. */
export const SIGNTEST_PREFIX = 'WECHATPAY/SIGNTEST/';

/** A nonce_str: 32 random base62 characters (WeChat allows up to 32). */
export const newNonce = (length = 32): string => randomId(length);

// --- messages ----------------------------------------------------------------------------------

/** What a request is signed over: `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n` (a GET has an empty body). */
export function requestMessage(method: string, pathWithQuery: string, timestamp: string, nonce: string, body: string): string {
  return `${method.toUpperCase()}\n${pathWithQuery}\n${timestamp}\n${nonce}\n${body}\n`;
}

/** What a response or notify is signed over: `TIMESTAMP\nNONCE\nBODY\n`. */
export function responseMessage(timestamp: string, nonce: string, body: string): string {
  return `${timestamp}\n${nonce}\n${body}\n`;
}

/** SHA256withRSA (PKCS#1 v1.5) of a UTF-8 message, base64. */
export function signSha256Rsa(message: string, privateKey: KeyObject): string {
  return crypto.createSign('RSA-SHA256').update(message, 'utf8').sign(privateKey, 'base64');
}

/** Verifies a base64 SHA256withRSA signature; anything malformed is simply not valid. */
export function verifySha256Rsa(message: string, signature: string, publicKey: KeyObject): boolean {
  if (!signature || signature.length > 2048 || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return false;
  try {
    return crypto.createVerify('RSA-SHA256').update(message, 'utf8').verify(publicKey, signature, 'base64');
  } catch {
    return false;
  }
}

export const withinWindow = (timestamp: number, now: number): boolean => Math.abs(now - timestamp) < TIMESTAMP_WINDOW_S;

// --- requests (merchant → WeChat Pay) ----------------------------------------------------------

export interface AuthorizationParams {
  mchid: string;
  nonce_str: string;
  signature: string;
  timestamp: string;
  serial_no: string;
}

/** The Authorization header of one request, signed with the merchant API private key. */
export function buildAuthorization(opts: {
  mchid: string; serialNo: string; privateKey: KeyObject; method: string; pathWithQuery: string; body: string;
  timestamp?: string; nonce?: string;
}): string {
  const timestamp = opts.timestamp ?? String(nowSeconds());
  const nonce = opts.nonce ?? newNonce();
  const signature = signSha256Rsa(requestMessage(opts.method, opts.pathWithQuery, timestamp, nonce, opts.body), opts.privateKey);
  return `${AUTH_SCHEMA} mchid="${opts.mchid}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${opts.serialNo}"`;
}

const AUTH_FIELDS = ['mchid', 'nonce_str', 'signature', 'timestamp', 'serial_no'] as const;

/**
 * Parses an Authorization header (the simulator's side). The pairs may come in any order; a
 * missing, repeated or unknown pair, or another scheme, makes the header unusable (undefined).
 */
export function parseAuthorization(header: string | undefined): AuthorizationParams | undefined {
  if (!header || header.length > 4096) return undefined;
  const m = /^(\S+)\s+(.*)$/s.exec(header.trim());
  if (!m || m[1] !== AUTH_SCHEMA) return undefined;
  const out: Partial<Record<(typeof AUTH_FIELDS)[number], string>> = {};
  // Values are digits, hex, base62 or base64: none holds a comma or a quote.
  for (const part of m[2]!.split(',')) {
    const pair = /^\s*([a-z_]+)="([^"]*)"\s*$/.exec(part);
    if (!pair) return undefined;
    const key = pair[1] as (typeof AUTH_FIELDS)[number];
    if (!AUTH_FIELDS.includes(key) || out[key] !== undefined) return undefined;
    out[key] = pair[2]!;
  }
  return AUTH_FIELDS.every((k) => out[k]) ? (out as AuthorizationParams) : undefined;
}

export type AuthorizationCheck = 'ok' | 'bad_timestamp' | 'expired' | 'bad_signature';

/** Checks a parsed Authorization against the request and the merchant's public key. */
export function verifyAuthorization(
  auth: AuthorizationParams,
  request: { method: string; pathWithQuery: string; body: string },
  merchantPublicKey: KeyObject,
  now = nowSeconds(),
): AuthorizationCheck {
  if (!/^\d{1,12}$/.test(auth.timestamp)) return 'bad_timestamp';
  if (!withinWindow(Number(auth.timestamp), now)) return 'expired';
  const message = requestMessage(request.method, request.pathWithQuery, auth.timestamp, auth.nonce_str, request.body);
  return verifySha256Rsa(message, auth.signature, merchantPublicKey) ? 'ok' : 'bad_signature';
}

// --- responses and notifies (WeChat Pay → merchant) --------------------------------------------

/** The four headers WeChat Pay signs a response or a notify with, for a body signed by the platform key. */
export function signedHeaders(body: string, platformPrivateKey: KeyObject, serial: string, timestamp = String(nowSeconds()), nonce = newNonce()): Record<string, string> {
  return {
    'Wechatpay-Timestamp': timestamp,
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': signSha256Rsa(responseMessage(timestamp, nonce, body), platformPrivateKey),
    'Wechatpay-Serial': serial,
    // Real WeChat Pay names the algorithm too; verifiers ignore it.
    'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
  };
}

/** Finds the verification key a Wechatpay-Serial names (public key id or platform certificate serial), valid at `now`. */
export type VerificationKeyLookup = (serial: string, now: number) => KeyObject | undefined;

const printable = (s: string) => s.slice(0, 64).replace(/[^\x20-\x7e]/g, '?');

/**
 * Verifies the signed headers of a response or notify over its exact body bytes. Throws a
 * SignatureError naming the reason: a missing header, a WECHATPAY/SIGNTEST/ probe, a timestamp 5
 * minutes or more away, a serial that names no configured key, or a signature that fails.
 * `headers` keys must be lower case (as Node and fetch give them).
 */
export function verifySignedMessage(
  headers: Record<string, string | undefined>,
  body: string,
  keyFor: VerificationKeyLookup,
  now = nowSeconds(),
): void {
  const need = (name: string): string => {
    const v = headers[name.toLowerCase()]?.trim();
    if (!v) throw new SignatureError(`WeChat Pay message lacks the ${name} header`);
    return v;
  };
  const timestamp = need('Wechatpay-Timestamp');
  const nonce = need('Wechatpay-Nonce');
  const signature = need('Wechatpay-Signature');
  const serial = need('Wechatpay-Serial');
  // WeChat's probes must be refused before anything else (their docs: 验签探测).
  if (signature.startsWith(SIGNTEST_PREFIX)) throw new SignatureError('WeChat Pay signature probe (WECHATPAY/SIGNTEST/) refused');
  if (!/^\d{1,12}$/.test(timestamp)) throw new SignatureError('Wechatpay-Timestamp is not a unix timestamp');
  if (!withinWindow(Number(timestamp), now)) throw new SignatureError('Wechatpay-Timestamp is 5 minutes or more away from now');
  const key = keyFor(serial, now);
  if (!key) throw new SignatureError(`Wechatpay-Serial ${printable(serial)} names no usable key in the config (wechatpay_public_key_id or platform_certificates)`);
  if (!verifySha256Rsa(responseMessage(timestamp, nonce, body), signature, key)) {
    throw new SignatureError(`WeChat Pay signature does not verify with the key ${printable(serial)}`);
  }
}

// --- AEAD_AES_256_GCM resources ----------------------------------------------------------------

export interface EncryptedResource {
  ciphertext: string;
  nonce: string;
  associated_data?: string;
}

const TAG_BYTES = 16;

/** AES-GCM with the key's own size (WeChat uses 256; the Go SDK's own test vector uses a 16-byte key). */
function gcmAlgorithm(key: KeyObject | Buffer): crypto.CipherGCMTypes {
  const size = Buffer.isBuffer(key) ? key.length : key.symmetricKeySize;
  if (size === 32) return 'aes-256-gcm';
  if (size === 16) return 'aes-128-gcm';
  if (size === 24) return 'aes-192-gcm';
  throw new RangeError('AES-GCM keys are 16, 24 or 32 bytes');
}

/**
 * Decrypts a notify resource: key = APIv3 key, IV = nonce, AAD = associated_data, ciphertext =
 * base64(ciphertext ‖ 16-byte tag). A resource of the wrong shape (missing fields, bad base64,
 * shorter than a tag) is a MalformedMessageError; one that does not authenticate (wrong APIv3
 * key, altered bytes) is a SignatureError: GCM's tag is what authenticates the content.
 */
export function decryptResource(resource: EncryptedResource, key: KeyObject | Buffer): string {
  const { ciphertext, nonce } = resource;
  const aad = resource.associated_data ?? '';
  if (typeof ciphertext !== 'string' || typeof nonce !== 'string' || typeof aad !== 'string') {
    throw new MalformedMessageError('WeChat Pay resource lacks ciphertext or nonce');
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(ciphertext) || ciphertext.length % 4 !== 0) throw new MalformedMessageError('WeChat Pay resource ciphertext is not base64');
  if (nonce.length < 1 || nonce.length > 64) throw new MalformedMessageError('WeChat Pay resource nonce has an unusable length');
  const raw = Buffer.from(ciphertext, 'base64');
  if (raw.length < TAG_BYTES) throw new MalformedMessageError('WeChat Pay resource ciphertext is shorter than its tag');
  try {
    const decipher = crypto.createDecipheriv(gcmAlgorithm(key), key, Buffer.from(nonce, 'utf8'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(0, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new SignatureError('WeChat Pay resource does not decrypt: wrong apiv3_key, or the ciphertext was altered');
  }
}

/** Encrypts a notify resource as WeChat Pay does (the simulator's side); returns base64(ct ‖ tag). */
export function encryptResource(plaintext: string, key: KeyObject | Buffer, nonce: string, associatedData: string): string {
  const cipher = crypto.createCipheriv(gcmAlgorithm(key), key, Buffer.from(nonce, 'utf8'), { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([ct, cipher.getAuthTag()]).toString('base64');
}

// --- JSAPI (WeixinJSBridge getBrandWCPayRequest) -----------------------------------------------

export interface JsapiPayParams {
  appId: string;
  timeStamp: string;
  nonceStr: string;
  package: string;
  signType: 'RSA';
  paySign: string;
}

/** paySign is over `appId\ntimeStamp\nnonceStr\npackage\n`. */
export function jsapiPaySignMessage(appId: string, timeStamp: string, nonceStr: string, pkg: string): string {
  return `${appId}\n${timeStamp}\n${nonceStr}\n${pkg}\n`;
}

/** The parameters the payer's page hands to getBrandWCPayRequest, signed with the merchant key. */
export function jsapiPayParams(appId: string, prepayId: string, privateKey: KeyObject, timeStamp = String(nowSeconds()), nonceStr = newNonce()): JsapiPayParams {
  const pkg = `prepay_id=${prepayId}`;
  return { appId, timeStamp, nonceStr, package: pkg, signType: 'RSA', paySign: signSha256Rsa(jsapiPaySignMessage(appId, timeStamp, nonceStr, pkg), privateKey) };
}

export function verifyJsapiPaySign(params: Partial<Record<keyof JsapiPayParams, string>>, merchantPublicKey: KeyObject): boolean {
  const { appId, timeStamp, nonceStr, package: pkg, signType, paySign } = params;
  if (!appId || !timeStamp || !nonceStr || !pkg || !paySign || signType !== 'RSA') return false;
  return verifySha256Rsa(jsapiPaySignMessage(appId, timeStamp, nonceStr, pkg), paySign, merchantPublicKey);
}

// --- APP (the WeChat OpenSDK's PayReq) ----------------------------------------------------------

/** The seven PayReq fields of a v3 APP payment, with the names WeChat's doc uses (iOS: `package`; Android: packageValue). */
export interface AppPayParams {
  appid: string;
  partnerid: string;
  prepayid: string;
  package: 'Sign=WXPay';
  noncestr: string;
  timestamp: string;
  sign: string;
}

/**
 * sign is over `appid\ntimestamp\nnoncestr\nprepayid\n`: four lines, each ending in \n, the last
 * too (pay.weixin.qq.com/wiki/doc/api_external/ch/apis/chapter4_1_29.shtml). A v3 prepay is
 * always signed so: SHA256withRSA with the merchant API key, never v2's MD5/HMAC over sorted params.
 */
export function appPaySignMessage(appid: string, timestamp: string, noncestr: string, prepayid: string): string {
  return `${appid}\n${timestamp}\n${noncestr}\n${prepayid}\n`;
}

/** What the merchant's app passes to PayReq for a prepay_id, signed with the merchant key (timestamp: 10-digit seconds). */
export function appPayParams(
  appid: string, partnerid: string, prepayid: string, privateKey: KeyObject, timestamp = String(nowSeconds()), noncestr = newNonce(),
): AppPayParams {
  return { appid, partnerid, prepayid, package: 'Sign=WXPay', noncestr, timestamp, sign: signSha256Rsa(appPaySignMessage(appid, timestamp, noncestr, prepayid), privateKey) };
}

/** Checks a PayReq's sign as the WeChat client does, with the merchant's API public key. */
export function verifyAppPaySign(params: Partial<Record<keyof AppPayParams, string>>, merchantPublicKey: KeyObject): boolean {
  const { appid, timestamp, noncestr, prepayid, sign } = params;
  if (!appid || !timestamp || !noncestr || !prepayid || !sign) return false;
  return verifySha256Rsa(appPaySignMessage(appid, timestamp, noncestr, prepayid), sign, merchantPublicKey);
}

// --- keys ----------------------------------------------------------------------------------------
// WeChat Pay hands out PEM files: apiclient_key.pem (PKCS#8), pub_key.pem (SPKI), and platform
// certificates (X.509). A bare base64 body is accepted too, as some consoles copy it so.

function pemBody(text: string, label: string): string {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN ')) return trimmed;
  const body = trimmed.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('not PEM or base64');
  return `-----BEGIN ${label}-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----`;
}

function requireRsa2048(key: KeyObject): KeyObject {
  if (key.asymmetricKeyType !== 'rsa') throw new Error('not an RSA key');
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new Error('RSA key shorter than 2048 bits');
  return key;
}

/** An RSA private key from PEM (PKCS#8 or PKCS#1) or a bare PKCS#8 base64 body. */
export function loadPrivateKey(text: string): KeyObject {
  const key = crypto.createPrivateKey(pemBody(text, 'PRIVATE KEY'));
  if (key.type !== 'private') throw new Error('not a private key');
  return requireRsa2048(key);
}

/** An RSA public key from PEM (SPKI or PKCS#1) or a bare SPKI base64 body; a private key is refused. */
export function loadPublicKey(text: string): KeyObject {
  // createPublicKey would happily derive a public key from a pasted private one.
  if (/PRIVATE KEY-----/.test(text)) throw new Error('a private key where a public key belongs');
  const key = crypto.createPublicKey(pemBody(text, 'PUBLIC KEY'));
  if (key.type !== 'public') throw new Error('not a public key');
  return requireRsa2048(key);
}

export interface PlatformCertificate {
  serialNo: string;
  publicKey: KeyObject;
  /** Unix seconds of the certificate's validity. */
  notBefore: number;
  notAfter: number;
}

/** A platform certificate (X.509 PEM): its serial (upper-case hex, as Wechatpay-Serial carries it) and key. */
export function loadCertificate(text: string): PlatformCertificate {
  const cert = new crypto.X509Certificate(pemBody(text, 'CERTIFICATE'));
  return {
    serialNo: cert.serialNumber.toUpperCase(),
    publicKey: requireRsa2048(cert.publicKey),
    notBefore: Math.floor(Date.parse(cert.validFrom) / 1000),
    notAfter: Math.floor(Date.parse(cert.validTo) / 1000),
  };
}

/** PKCS#8 / SPKI PEM text of a key. */
export function pemOf(key: KeyObject): string {
  return (key.type === 'private' ? key.export({ format: 'pem', type: 'pkcs8' }) : key.export({ format: 'pem', type: 'spki' })).toString();
}
