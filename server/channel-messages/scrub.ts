import crypto from 'node:crypto';
import type { InboundMessage } from '../channels/types.ts';

/**
 * What a stored channel message may keep (DESIGN §4: secrets never stored in clear; STYLE 6:
 * keys and card data scrubbed from stored transcripts). Pure functions, no I/O.
 *
 * - Headers: only content-type, user-agent and the channels' own (wechatpay-*, paypal-*,
 *   stripe-*); Authorization, cookies and proxies' headers are dropped.
 * - A signature (sign, signature, paySign, Wechatpay-Signature, Stripe-Signature, …) becomes
 *   "[signature <8 hex of its SHA-256>]": duplicates can be told apart, the value is not kept.
 * - Keys, secrets, tokens, passwords, certificates (fields so named, and any PEM or long
 *   base64 text) become "[redacted]"; WeChat API v3 ciphertext becomes "[ciphertext N chars]"
 *   (its plaintext holds the payer: the normalized notification is stored instead).
 * - The payer's identifiers (openid, buyer_logon_id, email, phone…) become "[customer data]".
 * - The JSON is cut at BODY_LIMIT bytes, with a marker saying how much was left out.
 */

export const BODY_LIMIT = 16 * 1024;

const KEPT_HEADERS = /^(content-type|user-agent|wechatpay-[a-z-]+|paypal-[a-z-]+|stripe-[a-z-]+)$/;
const SIGNATURE_NAME = /(^|[_-])(sign|signature|sig|paysign)$|^(sign|signature|paysign|pay_sign)$/i;
const SECRET_NAME = /key|secret|passw|token|cert|private|credential|authorization|cookie|session/i;
const CUSTOMER_NAME = /openid|open_id|buyer_logon_id|buyer_id|buyer_user_id|email|phone|mobile|payer_name|card_?no|acc_?no|id_?card|^name$|full_name|given_name|surname|address/i;
const PEM = /-----BEGIN [A-Z ]+-----/;
const LONG_BASE64 = /^[A-Za-z0-9+/=_-]{256,}$/;

const shortHash = (v: string) => crypto.createHash('sha256').update(v).digest('hex').slice(0, 8);
const signatureMark = (v: unknown) => `[signature ${shortHash(String(v))}]`;

/** One value under its field name, recursively. */
export function scrubValue(name: string, value: unknown, depth = 0): unknown {
  if (value === null || value === undefined || typeof value === 'boolean' || typeof value === 'number') return value;
  if (depth > 12) return '[nested too deep]';
  if (SIGNATURE_NAME.test(name)) return signatureMark(typeof value === 'string' ? value : JSON.stringify(value));
  if (name === 'ciphertext') return `[ciphertext ${String(value).length} chars]`;
  // sign_type / signType say which algorithm: not a secret.
  if (SECRET_NAME.test(name) && !/^sign_?type$/i.test(name)) return '[redacted]';
  if (CUSTOMER_NAME.test(name) && typeof value !== 'object') return '[customer data]';
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => scrubValue(name, v, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = scrubValue(k, v, depth + 1);
    return out;
  }
  const s = String(value);
  if (PEM.test(s) || LONG_BASE64.test(s)) return '[redacted]';
  // JSON inside a field (Alipay's fund_bill_list, a passback) is scrubbed as JSON.
  if (/^\s*[[{]/.test(s) && s.length < 64 * 1024) {
    try {
      return scrubValue(name, JSON.parse(s), depth + 1);
    } catch { /* not JSON: kept as text */ }
  }
  // A query string inside a field (an Alipay app order string) carries its own sign=.
  if (/(^|&)(sign|signature)=/.test(s)) return scrubQueryString(s);
  return s;
}

export function scrubObject(o: Record<string, unknown>): Record<string, unknown> {
  return scrubValue('', o) as Record<string, unknown>;
}

function scrubQueryString(s: string): string {
  const params = new URLSearchParams(s);
  const out: Record<string, unknown> = {};
  for (const [k, v] of params) out[k] = scrubValue(k, v);
  return new URLSearchParams(Object.entries(out).map(([k, v]) => [k, String(v)])).toString();
}

/** The headers worth keeping, signatures replaced. */
export function scrubHeaders(headers: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    if (v === undefined || !KEPT_HEADERS.test(name)) continue;
    out[name] = /sig/.test(name) ? signatureMark(v) : /key|secret|token|auth/.test(name) ? '[redacted]' : v.slice(0, 500);
  }
  return out;
}

/** A channel's body as fields: form-urlencoded, JSON or WeChat's flat XML; otherwise undefined. */
export function parseBody(contentType: string, body: Buffer | string): Record<string, unknown> | undefined {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const trimmed = text.trim();
  if (!trimmed) return {};
  if (/json/i.test(contentType) || /^[[{]/.test(trimmed)) {
    try {
      const v = JSON.parse(trimmed);
      return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : { value: v };
    } catch { return undefined; }
  }
  if (trimmed.startsWith('<')) {
    const out: Record<string, string> = {};
    for (const m of trimmed.matchAll(/<([A-Za-z_][\w-]*)>(?:<!\[CDATA\[([\s\S]*?)\]\]>|([^<]*))<\/\1>/g)) out[m[1]] = m[2] ?? m[3] ?? '';
    return Object.keys(out).length ? out : undefined;
  }
  if (/^[^=&\s]+=/.test(trimmed)) {
    const out: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(trimmed)) out[k] = v;
    return out;
  }
  return undefined;
}

/** An inbound message scrubbed: kept headers, the body as scrubbed fields (or a note that it was not readable). */
export function scrubInbound(msg: Pick<InboundMessage, 'headers' | 'contentType' | 'body'>): Record<string, unknown> {
  const fields = parseBody(msg.contentType, msg.body);
  return {
    headers: scrubHeaders(msg.headers),
    body: fields ? scrubObject(fields) : `[${msg.body.length} bytes, not form, JSON or XML: not kept]`,
  };
}

/** The record's body: scrubbed JSON, cut at `limit` bytes. */
export function boundedJson(value: unknown, limit = BODY_LIMIT): { body: string; bytes: number } {
  // Compact: the console indents it when it shows it.
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text);
  if (bytes <= limit) return { body: text, bytes };
  const marker = `\n…[cut: ${bytes} bytes, the first ${limit} kept]`;
  // Cut on a character boundary: a multi-byte character is not split.
  let cut = Buffer.from(text).subarray(0, limit - Buffer.byteLength(marker)).toString('utf8');
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return { body: cut + marker, bytes };
}

/** The order number a raw (possibly forged) message claims, to file it under a payment; never trusted for anything else. */
export function claimedOrderNo(fields: Record<string, unknown> | undefined): string | undefined {
  if (!fields) return undefined;
  for (const k of ['out_trade_no', 'orderId', 'out_order_no', 'invoice_id']) {
    const v = fields[k];
    if (typeof v === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(v)) return v;
  }
  return undefined;
}
