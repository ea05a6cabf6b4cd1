/**
 * The HTTP side of the WeChat Pay adapter: one signed call to an API v3 endpoint, the
 * verification of its answer, and the mapping of error answers to our typed faults.
 */
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, SignatureError } from '../../errors.ts';
import { buildAuthorization, verifySignedMessage, type VerificationKeyLookup } from './sign.ts';
import type { WechatpayError } from './transform.ts';
import type { WechatpayCredentials } from './index.ts';

const REQUEST_TIMEOUT_MS = 15_000;

/** The key a Wechatpay-Serial names; a platform certificate only within its validity. */
export function keyLookup(cred: WechatpayCredentials): VerificationKeyLookup {
  return (serial, now) => {
    const entry = cred.verificationKeys.get(serial) ?? cred.verificationKeys.get(serial.toUpperCase());
    if (!entry) return undefined;
    if ((entry.notBefore !== undefined && now < entry.notBefore) || (entry.notAfter !== undefined && now > entry.notAfter)) return undefined;
    return entry.key;
  };
}

export function lowerCaseHeaders(headers: Record<string, string | undefined> | Headers): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (headers instanceof Headers) headers.forEach((v, k) => (out[k.toLowerCase()] = v));
  else for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

export type Answer =
  | { ok: true; status: number; data: Record<string, unknown>; requestId: string }
  | { ok: false; status: number; error: WechatpayError; requestId: string };

/** Codes that mean the merchant's setup (keys, serial, products, ids) is wrong, not the request. */
export const CONFIG_CODES = new Set(['SIGN_ERROR', 'MCH_NOT_EXISTS', 'APPID_MCHID_NOT_MATCH', 'NO_AUTH', 'INVALID_AUTHORIZATION']);
/** Codes WeChat says to retry with the same request. */
const TRANSIENT_CODES = new Set(['SYSTEM_ERROR', 'SYSTEMERROR', 'BANK_ERROR', 'FREQUENCY_LIMITED']);
/** Refusals of one order that the customer can get past with another attempt: a decline, not a fault. */
export const DECLINE_CODES = new Set(['ORDER_CLOSED', 'ORDERPAID', 'ORDER_PAID', 'OUT_TRADE_NO_USED', 'INVALID_REQUEST', 'TRADE_ERROR', 'RULE_LIMIT', 'ACCOUNT_ERROR', 'NOT_ENOUGH']);

export const isTransient = (a: { status: number; error: WechatpayError }) => a.status >= 500 || a.status === 429 || TRANSIENT_CODES.has(a.error.code);

/**
 * Calls one API v3 endpoint. Returns a verified 2xx answer or a verified error body; throws
 * ChannelUnavailable (network, timeout, 5xx, garbage), SignatureError (an answer whose signature
 * fails where it would be believed) or ChannelConfigError (an unverifiable answer that can only
 * mean our keys are wrong: it is believed as a fault, never as a result).
 */
export async function callApi(
  cred: WechatpayCredentials, op: string, method: 'GET' | 'POST', pathWithQuery: string, body?: Record<string, unknown>,
  /** Further request headers, e.g. Wechatpay-Serial naming the key an encrypted field was sealed with. */
  extraHeaders: Record<string, string> = {},
): Promise<Answer> {
  const url = new URL(cred.baseUrl + pathWithQuery);
  const bodyText = body === undefined ? '' : JSON.stringify(body);
  const headers: Record<string, string> = {
    accept: 'application/json',
    // WeChat Pay refuses requests without a User-Agent.
    'user-agent': 'Checkstand/0.1 (WeChatPay-APIv3; node)',
    authorization: buildAuthorization({ mchid: cred.mchid, serialNo: cred.serialNo, privateKey: cred.privateKey, method, pathWithQuery: url.pathname + url.search, body: bodyText }),
  };
  if (body !== undefined) headers['content-type'] = 'application/json';
  for (const [k, v] of Object.entries(extraHeaders)) headers[k.toLowerCase()] = v;

  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : bodyText, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    text = await res.text();
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    throw new ChannelUnavailable(`WeChat Pay ${op}: ${timedOut ? `no answer within ${REQUEST_TIMEOUT_MS / 1000}s` : 'API unreachable'}`);
  }
  const requestId = (res.headers.get('request-id') ?? '').slice(0, 64);
  const ok = res.status >= 200 && res.status < 300;
  const error = ok ? undefined : errorBodyOf(text);

  try {
    verifySignedMessage(lowerCaseHeaders(res.headers), text, keyLookup(cred));
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    // No signature and not JSON (a proxy's or maintenance page): nothing claims to be WeChat.
    if (ok && !res.headers.get('wechatpay-signature') && !isJsonObject(text)) throw new ChannelUnavailable(`WeChat Pay ${op}: unreadable answer (HTTP ${res.status}, unsigned)`);
    if (!ok) {
      // An unverifiable error answer is believed only as a fault, never as "no such order" or a decline.
      if (res.status >= 500 || res.status === 429 || !error) throw new ChannelUnavailable(`WeChat Pay ${op}: answered HTTP ${res.status}${error ? ` ${error.code}` : ''}`);
      if (CONFIG_CODES.has(error.code)) throw new ChannelConfigError(describe(op, { status: res.status, error, requestId }));
    }
    throw new SignatureError(`WeChat Pay ${op}: ${err.message}`);
  }

  if (!ok) {
    if (!error) throw new ChannelUnavailable(`WeChat Pay ${op}: answered HTTP ${res.status} without an error body`);
    return { ok: false, status: res.status, error, requestId };
  }
  if (res.status === 204 || text === '') return { ok: true, status: res.status, data: {}, requestId };
  try {
    const data = JSON.parse(text) as unknown;
    if (!data || typeof data !== 'object' || Array.isArray(data)) throw new SyntaxError('not an object');
    return { ok: true, status: res.status, data: data as Record<string, unknown>, requestId };
  } catch {
    throw new ChannelUnavailable(`WeChat Pay ${op}: unreadable answer`);
  }
}

function errorBodyOf(text: string): WechatpayError | undefined {
  try {
    const e = JSON.parse(text) as Partial<WechatpayError>;
    if (e && typeof e.code === 'string' && e.code) return { code: e.code.slice(0, 64), message: typeof e.message === 'string' ? e.message : '', detail: e.detail };
  } catch {
    // not WeChat's error shape
  }
  return undefined;
}

/** A verified error answer → our typed fault (transient, configuration, or a refused request). */
export function faultOf(op: string, a: { status: number; error: WechatpayError; requestId: string }): Error {
  const detail = describe(op, a);
  if (isTransient(a)) return new ChannelUnavailable(detail);
  if (CONFIG_CODES.has(a.error.code)) return new ChannelConfigError(detail);
  return new ChannelRequestError(a.error.code, detail);
}

export function describe(op: string, a: { status: number; error: WechatpayError; requestId: string }): string {
  return `WeChat Pay ${op}: HTTP ${a.status} ${a.error.code}: ${a.error.message.slice(0, 300)}${a.requestId ? ` (Request-ID ${a.requestId})` : ''}`;
}

function isJsonObject(text: string): boolean {
  try {
    const v = JSON.parse(text) as unknown;
    return Boolean(v) && typeof v === 'object' && !Array.isArray(v);
  } catch {
    return false;
  }
}
