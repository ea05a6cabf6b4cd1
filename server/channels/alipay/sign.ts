/**
 * Alipay OpenAPI (gateway.do) RSA2 signatures: requests, notifies and returns (form parameters)
 * and responses (raw JSON bytes). RSA PKCS#1 v1.5 with SHA-256, base64.
 * Source: opendocs.alipay.com/common/02kf5q (signing) and /02mse7 (verifying), and the official
 * alipay-sdk (v4) util.ts / alipay.ts, which our tests use as the reference implementation.
 */
import crypto, { type KeyObject } from 'node:crypto';

export type AlipayParams = Record<string, string | undefined>;

/**
 * The string a request is signed over: every parameter but `sign`, sorted by key (ASCII), as
 * `k=v` joined by `&`, values not URL-encoded. Empty values are dropped (Alipay's gateway and
 * Java SDK do; the Node SDK does not, so we never send an empty parameter).
 */
export function requestSignContent(params: AlipayParams): string {
  return joinSorted(params, (k) => k !== 'sign', true);
}

/**
 * The string a notify or a browser return is signed over ("V1" rule): as for a request, but
 * `sign_type` is dropped too. With dropEmpty false, empty values stay in, as the Node SDK's
 * checkNotifySign and the Java SDK's getSignCheckContentV1 keep them.
 */
export function notifySignContent(params: AlipayParams, dropEmpty = true): string {
  return joinSorted(params, (k) => k !== 'sign' && k !== 'sign_type', dropEmpty);
}

function joinSorted(params: AlipayParams, keep: (key: string) => boolean, dropEmpty: boolean): string {
  return Object.keys(params)
    .filter((k) => k !== '' && keep(k) && params[k] !== undefined && !(dropEmpty && params[k] === ''))
    .sort() // UTF-16 code unit order, which is ASCII order for Alipay's parameter names
    .map((k) => `${k}=${params[k]}`)
    .join('&');
}

/** RSA-SHA256 (PKCS#1 v1.5) signature of content, base64. */
export function signRsa2(content: string, privateKey: KeyObject): string {
  return crypto.createSign('RSA-SHA256').update(content, 'utf8').sign(privateKey, 'base64');
}

/** Verifies an RSA-SHA256 signature; a malformed signature is simply not valid. */
export function verifyRsa2(content: string, signature: string, publicKey: KeyObject): boolean {
  if (!signature || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return false;
  try {
    return crypto.createVerify('RSA-SHA256').update(content, 'utf8').verify(publicKey, signature, 'base64');
  } catch {
    return false;
  }
}

export function signRequest(params: AlipayParams, appPrivateKey: KeyObject): string {
  return signRsa2(requestSignContent(params), appPrivateKey);
}

export function verifyRequest(params: AlipayParams, appPublicKey: KeyObject): boolean {
  return verifyRsa2(requestSignContent(params), params.sign ?? '', appPublicKey);
}

/** Signs a notify or return (what Alipay does with its own private key). */
export function signNotify(params: AlipayParams, alipayPrivateKey: KeyObject): string {
  return signRsa2(notifySignContent(params), alipayPrivateKey);
}

/**
 * Verifies a notify or return with the Alipay public key. Alipay sends no empty fields, but
 * should one come, the signature may cover it or not depending on Alipay's side: both forms
 * are tried, each a full signature check.
 */
export function verifyNotify(params: AlipayParams, alipayPublicKey: KeyObject): boolean {
  const sign = params.sign ?? '';
  if (verifyRsa2(notifySignContent(params, true), sign, alipayPublicKey)) return true;
  const hasEmpty = Object.entries(params).some(([k, v]) => v === '' && k !== 'sign' && k !== 'sign_type');
  return hasEmpty && verifyRsa2(notifySignContent(params, false), sign, alipayPublicKey);
}

// ---------------------------------------------------------------------------------------------
// Responses: `{"alipay_trade_query_response":{…},"sign":"…"}`. The signature covers the exact
// bytes of the response value, from its `{` to its matching `}`; re-serializing would change
// them (Alipay writes `\/`, key order and spacing are its own).

/** A response split into the exact bytes that were signed and the signature beside them. */
export interface RawSignedResponse {
  /** Which top-level key held the response (`<method>_response` or `error_response`). */
  key: string;
  /** The raw JSON text of the response object, byte for byte as received. */
  body: string;
  /** The `sign` value, if the response carried one. */
  sign?: string;
  /** Certificate mode: the SN of the Alipay certificate whose key signed the response. */
  certSn?: string;
}

/**
 * Finds the response object in a raw gateway answer by scanning the top-level JSON members
 * (strings and nesting honoured), so a `"sign"` or a `}` inside a value cannot shift the span.
 * Throws SyntaxError when the text is not a JSON object or holds none of the wanted keys.
 */
export function readSignedResponse(raw: string, responseKeys: readonly string[]): RawSignedResponse {
  JSON.parse(raw); // the whole answer must be well-formed before we trust any span of it
  const members = topLevelMembers(raw);
  const key = responseKeys.find((k) => members.has(k));
  if (!key) throw new SyntaxError(`response holds none of ${responseKeys.join(', ')}`);
  const span = members.get(key)!;
  const body = raw.slice(span.start, span.end);
  if (!body.startsWith('{')) throw new SyntaxError(`${key} is not a JSON object`);
  const signSpan = members.get('sign');
  const sign = signSpan ? JSON.parse(raw.slice(signSpan.start, signSpan.end)) : undefined;
  if (sign !== undefined && typeof sign !== 'string') throw new SyntaxError('sign is not a string');
  const certSnSpan = members.get('alipay_cert_sn');
  const certSn = certSnSpan ? JSON.parse(raw.slice(certSnSpan.start, certSnSpan.end)) : undefined;
  if (certSn !== undefined && typeof certSn !== 'string') throw new SyntaxError('alipay_cert_sn is not a string');
  return { key, body, sign, ...(certSn !== undefined ? { certSn } : {}) };
}

/** Verifies a response by the raw-substring rule. */
export function verifyResponse(response: RawSignedResponse, alipayPublicKey: KeyObject): boolean {
  return response.sign !== undefined && verifyRsa2(response.body, response.sign, alipayPublicKey);
}

/** JSON written like Alipay's gateway: `/` escaped as `\/` (valid JSON; `/` only occurs in strings). */
export function alipayJson(value: unknown): string {
  return JSON.stringify(value).replace(/\//g, '\\/');
}

/**
 * A signed gateway answer, as Alipay writes it: the response object, then "sign"; in certificate
 * mode `alipay_cert_sn` between them (the order of Alipay's own answers, e.g.
 * cloud.tencent.com/developer/article/2337896).
 */
export function signResponse(responseKey: string, response: Record<string, unknown>, alipayPrivateKey: KeyObject, alipayCertSn?: string): string {
  const body = alipayJson(response);
  const certSn = alipayCertSn ? `"alipay_cert_sn":${JSON.stringify(alipayCertSn)},` : '';
  return `{${JSON.stringify(responseKey)}:${body},${certSn}"sign":${JSON.stringify(signRsa2(body, alipayPrivateKey))}}`;
}

interface Span { start: number; end: number }

function topLevelMembers(raw: string): Map<string, Span> {
  const members = new Map<string, Span>();
  let i = skipSpace(raw, 0);
  if (raw[i] !== '{') throw new SyntaxError('response is not a JSON object');
  i = skipSpace(raw, i + 1);
  if (raw[i] === '}') return members;
  for (;;) {
    const keyEnd = scanString(raw, i);
    const key = JSON.parse(raw.slice(i, keyEnd)) as string;
    i = skipSpace(raw, keyEnd);
    if (raw[i] !== ':') throw new SyntaxError('expected ":"');
    const start = skipSpace(raw, i + 1);
    const end = scanValue(raw, start);
    // A repeated key would let two readers see two different responses: refuse it.
    if (members.has(key)) throw new SyntaxError(`duplicate member ${key}`);
    members.set(key, { start, end });
    i = skipSpace(raw, end);
    if (raw[i] === ',') { i = skipSpace(raw, i + 1); continue; }
    if (raw[i] === '}') return members;
    throw new SyntaxError('expected "," or "}"');
  }
}

function skipSpace(raw: string, i: number): number {
  while (i < raw.length && ' \t\r\n'.includes(raw[i]!)) i++;
  return i;
}

/** End index (exclusive) of the JSON string starting at raw[i] === '"'. */
function scanString(raw: string, i: number): number {
  if (raw[i] !== '"') throw new SyntaxError('expected a string');
  for (let j = i + 1; j < raw.length; j++) {
    if (raw[j] === '\\') j++;
    else if (raw[j] === '"') return j + 1;
  }
  throw new SyntaxError('unterminated string');
}

/** End index (exclusive) of the JSON value starting at raw[i]. */
function scanValue(raw: string, i: number): number {
  const c = raw[i];
  if (c === '"') return scanString(raw, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < raw.length; ) {
      const d = raw[j];
      if (d === '"') { j = scanString(raw, j); continue; }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') depth--;
      j++;
      if (depth === 0) return j;
    }
    throw new SyntaxError('unterminated value');
  }
  let j = i;
  while (j < raw.length && !',}] \t\r\n'.includes(raw[j]!)) j++;
  if (j === i) throw new SyntaxError('expected a value');
  return j;
}

// ---------------------------------------------------------------------------------------------
// Keys. Alipay's console hands out bare base64 bodies (PKCS#1 for most languages, PKCS#8 for
// Java); PEM files come as PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).

/** Loads an RSA private key from PEM (PKCS#1 or PKCS#8) or a bare base64 DER body. */
export function loadPrivateKey(text: string): KeyObject {
  const key = loadKey(text, (der, type) => crypto.createPrivateKey({ key: der, format: 'der', type }), ['pkcs8', 'pkcs1'], crypto.createPrivateKey);
  if (key.type !== 'private') throw new Error('not a private key');
  return requireRsa(key);
}

/** Loads an RSA public key from PEM (SPKI or PKCS#1) or a bare base64 DER body. */
export function loadPublicKey(text: string): KeyObject {
  // createPublicKey would happily derive a public key from a pasted private one: refuse that.
  if (/PRIVATE KEY-----/.test(text)) throw new Error('a private key where a public key belongs');
  const key = loadKey(text, (der, type) => crypto.createPublicKey({ key: der, format: 'der', type }), ['spki', 'pkcs1'], crypto.createPublicKey);
  if (key.type !== 'public') throw new Error('not a public key');
  return requireRsa(key);
}

function loadKey<T extends 'pkcs8' | 'pkcs1' | 'spki'>(
  text: string,
  fromDer: (der: Buffer, type: T) => KeyObject,
  derTypes: T[],
  fromPem: (pem: string) => KeyObject,
): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN ')) return fromPem(trimmed);
  const body = trimmed.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('not PEM or base64');
  const der = Buffer.from(body, 'base64');
  for (const type of derTypes) {
    try {
      return fromDer(der, type);
    } catch {
      // try the next encoding
    }
  }
  throw new Error('unreadable key');
}

function requireRsa(key: KeyObject): KeyObject {
  if (key.asymmetricKeyType !== 'rsa') throw new Error('not an RSA key');
  // RSA2 at Alipay means 2048-bit keys; shorter ones are refused by the console anyway.
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new Error('RSA key shorter than 2048 bits');
  return key;
}

/** PKCS#8 / SPKI PEM text of a key (what the official SDK is given). */
export function pemOf(key: KeyObject): string {
  const pem = key.type === 'private'
    ? key.export({ format: 'pem', type: 'pkcs8' })
    : key.export({ format: 'pem', type: 'spki' });
  return pem.toString().trim();
}
