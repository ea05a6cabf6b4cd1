/**
 * Alipay adapter (OpenAPI gateway.do, RSA2): PC and mobile-web page pay, QR (precreate), and
 * the order string of in-app pay (alipay.trade.app.pay) for the merchant's own iOS/Android app.
 * The official alipay-sdk signs every request; we send API calls ourselves so that responses
 * are verified by the raw-substring rule (the SDK's exec skips verification unless asked, and
 * then locates the signed bytes by index arithmetic rather than by JSON structure).
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { AlipaySdk } from 'alipay-sdk';
import { z } from 'zod';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../errors.ts';
import type { Ack, Channel, ChannelCode, CreateResult, Decline, InboundMessage, PaymentQueryResult, RefundResult } from '../types.ts';
import { certModeParams, parseCertMode, responseKeyFor, type AlipayCertMode } from './cert.ts';
import { agreementNotificationOf } from './agreements.ts';
import { fundMessageNotificationOf } from './payouts.ts';
import { loadPrivateKey, loadPublicKey, pemOf, readSignedResponse, verifyNotify, verifyResponse, type RawSignedResponse } from './sign.ts';
import {
  cleanText, fenToYuan, methodFor, notificationOf, nowBeijing, payBizContent, queryResultOf, refundQueryResultOf,
  type AlipayBizContent, type AlipayChannelCode, type AlipayResponse,
} from './transform.ts';

/** Parsed Alipay credentials. Keys are KeyObjects, so a logged credential shows no key material. */
export interface AlipayCredentials {
  appId: string;
  privateKey: KeyObject;
  alipayPublicKey: KeyObject;
  sellerId?: string;
  gateway: string;
  /** Certificate mode (公钥证书), which fund-out APIs require; absent in public-key mode. */
  certMode?: AlipayCertMode;
}

export const ALIPAY_PRODUCTION_GATEWAY = 'https://openapi.alipay.com/gateway.do';
const REQUEST_TIMEOUT_MS = 15_000;

const configSchema = z.object({
  app_id: z.string().regex(/^\d{16}$/, 'must be the 16-digit Alipay app id'),
  private_key: z.string().min(1, 'is required'),
  // Public-key mode: the Alipay public key. Certificate mode: the three certificates below, and
  // the Alipay public key is the Alipay certificate's (alipay_public_key may then be left out).
  alipay_public_key: z.string().min(1, 'is required').optional(),
  app_cert: z.string().min(1).optional(),
  alipay_public_cert: z.string().min(1).optional(),
  alipay_root_cert: z.string().min(1).optional(),
  seller_id: z.string().regex(/^2088\d{12}$/, 'must be the 16-digit Alipay partner id (2088…)').optional(),
  gateway: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL of a gateway.do endpoint' }).optional(),
});

export const alipay: Channel<AlipayCredentials> = {
  // --- metadata --------------------------------------------------------------------------------
  provider: 'alipay',
  displayName: 'Alipay',
  // alipay_agreement: deductions of subscriptions (agreements.ts); queries, refunds and notifies of them go through the operations below.
  codes: ['alipay_pc', 'alipay_wap', 'alipay_qr', 'alipay_app', 'alipay_agreement'],
  currencies: ['CNY'],

  // --- credentials -----------------------------------------------------------------------------
  parseCredentials(raw: unknown): AlipayCredentials {
    const parsed = configSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ChannelConfigError(`Alipay config: ${issue.path.join('.') || 'config'} ${issue.message}`);
    }
    const c = parsed.data;
    const privateKey = keyOrConfigError(() => loadPrivateKey(c.private_key), 'private_key', 'an RSA-2048 private key (PEM PKCS#1 or PKCS#8, or the base64 body from the Alipay console)');
    const certFields = [c.app_cert, c.alipay_public_cert, c.alipay_root_cert];
    let certMode: AlipayCertMode | undefined;
    if (certFields.some((f) => f !== undefined)) {
      if (certFields.some((f) => f === undefined)) {
        throw new ChannelConfigError('Alipay config: certificate mode needs all of app_cert, alipay_public_cert and alipay_root_cert');
      }
      try {
        certMode = parseCertMode({ appCert: c.app_cert!, alipayPublicCert: c.alipay_public_cert!, alipayRootCert: c.alipay_root_cert!, appPrivateKey: privateKey });
      } catch (err) {
        throw new ChannelConfigError(`Alipay config: ${(err as Error).message}`);
      }
    } else if (c.alipay_public_key === undefined) {
      throw new ChannelConfigError('Alipay config: alipay_public_key is required (or, in certificate mode, app_cert, alipay_public_cert and alipay_root_cert)');
    }
    const alipayPublicKey = c.alipay_public_key !== undefined
      ? keyOrConfigError(() => loadPublicKey(c.alipay_public_key!), 'alipay_public_key', 'an RSA-2048 public key (PEM, or the base64 body from the Alipay console)')
      : certMode!.alipayCertPublicKey;
    if (certMode && !certMode.alipayCertPublicKey.equals(alipayPublicKey)) {
      throw new ChannelConfigError('Alipay config: alipay_public_key is not the key of alipay_public_cert; leave it out in certificate mode');
    }
    // A classic mix-up (Alipay's docs warn of it): the app's own public key instead of Alipay's.
    if (crypto.createPublicKey(privateKey).equals(alipayPublicKey)) {
      throw new ChannelConfigError("Alipay config: alipay_public_key is the app's own public key; use the Alipay public key (支付宝公钥) from the console");
    }
    return { appId: c.app_id, privateKey, alipayPublicKey, sellerId: c.seller_id, gateway: c.gateway ?? ALIPAY_PRODUCTION_GATEWAY, ...(certMode ? { certMode } : {}) };
  },
  credentialKeys: Object.keys(configSchema.shape),
  appIdOf: (cred) => cred.appId,
  merchantIdOf: (cred) => cred.sellerId,

  // --- operations ------------------------------------------------------------------------------
  async createPayment(cred, order): Promise<CreateResult> {
    const channel = alipayCode(order.channel);
    requireCny(order.currency);
    const biz = payBizContent({ ...order, channel });
    const { method } = methodFor[channel];
    if (channel === 'alipay_qr') {
      const r = await callGateway(cred, method, biz, { notify_url: order.notifyUrl });
      if (r.code !== '10000') return { ok: false, decline: declineOf(r) };
      if (typeof r.qr_code !== 'string' || !r.qr_code) throw new ChannelUnavailable('Alipay precreate answered without qr_code');
      return { ok: true, action: { type: 'qr', codeUrl: r.qr_code } };
    }
    if (channel === 'alipay_app') {
      // The server never calls the gateway: the app hands this string to the Alipay SDK
      // (payOrder / payV2), which posts it to Alipay. Signed like a gateway request (all params but
      // sign, sign_type included, sorted, unencoded); serialised as the Node SDK does it
      // (insertion order, encodeURIComponent). Only the notify or a query settles the payment.
      const orderString = (await sdkFor(cred)).sdkExecute(method, {
        ...withoutEmpty({ notify_url: order.notifyUrl }),
        timestamp: nowBeijing(),
        biz_content: biz,
      }, { bizContentAutoSnakeCase: false });
      return { ok: true, action: { type: 'alipay_app', orderString } };
    }
    // Page pay places no server call: the browser carries the signed request to the gateway,
    // and Alipay creates the trade once the payer arrives there.
    const url = (await sdkFor(cred)).pageExecute(method, 'GET', {
      bizContent: biz,
      ...withoutEmpty({ notify_url: order.notifyUrl, return_url: order.returnUrl }),
      timestamp: nowBeijing(),
    });
    return { ok: true, action: { type: 'redirect', url } };
  },

  async queryPayment(cred, orderNo): Promise<PaymentQueryResult> {
    const r = await callGateway(cred, 'alipay.trade.query', { out_trade_no: orderNo });
    if (r.code === '10000') return readOrUnavailable('alipay.trade.query', () => queryResultOf(r));
    // Page-pay trades exist at Alipay only once the payer opened the page.
    if (r.sub_code === 'ACQ.TRADE_NOT_EXIST') return { status: 'not_found' };
    throw requestError('alipay.trade.query', r);
  },

  async closePayment(cred, orderNo): Promise<void> {
    const r = await callGateway(cred, 'alipay.trade.close', { out_trade_no: orderNo });
    if (r.code === '10000' || r.sub_code === 'ACQ.TRADE_NOT_EXIST') return;
    // Alipay answers TRADE_STATUS_ERROR both for "already closed" (fine) and "already paid" (not):
    // only a query tells them apart.
    if (r.sub_code === 'ACQ.TRADE_STATUS_ERROR') {
      const now = await alipay.queryPayment(cred, orderNo);
      if (now.status === 'closed' || now.status === 'not_found') return;
    }
    throw requestError('alipay.trade.close', r);
  },

  async refund(cred, req): Promise<RefundResult> {
    requireCny(req.currency);
    const biz: Record<string, string> = {
      out_trade_no: req.orderNo,
      refund_amount: fenToYuan(req.amount),
      // Idempotency key: Alipay treats a repeated out_request_no as the same refund.
      out_request_no: req.refundNo,
    };
    const reason = req.reason ? cleanText(req.reason, 256) : '';
    if (reason) biz.refund_reason = reason;
    const r = await callGateway(cred, 'alipay.trade.refund', biz);
    if (r.code !== '10000') return { status: 'failed', failureMessage: `${r.sub_code ?? r.code}: ${r.sub_msg ?? r.msg}` };
    // 10000 with fund_change N may be a repeat of an earlier refund or one still processing
    // (Alipay: "confirm with alipay.trade.fastpay.refund.query").
    if (r.fund_change === 'Y') return { status: 'succeeded' };
    // Alipay took this refund: only a confirmed one settles it here. A query that finds nothing
    // yet or is refused leaves it pending; "failed" would give the amount back to be refunded
    // again while this refund may still go through.
    const q = await alipay.queryRefund(cred, req.orderNo, req.refundNo).catch((err: unknown) => {
      if (err instanceof ChannelRequestError) return { status: 'pending' as const };
      throw err;
    });
    return q.status === 'succeeded' ? q : { status: 'pending' };
  },

  async queryRefund(cred, orderNo, refundNo): Promise<RefundResult> {
    const r = await callGateway(cred, 'alipay.trade.fastpay.refund.query', { out_trade_no: orderNo, out_request_no: refundNo });
    if (r.code === '10000') return refundQueryResultOf(r);
    if (r.sub_code === 'ACQ.TRADE_NOT_EXIST') return { status: 'failed', failureMessage: 'ACQ.TRADE_NOT_EXIST: the trade does not exist at Alipay' };
    throw requestError('alipay.trade.fastpay.refund.query', r);
  },

  async parseNotification(cred, msg: InboundMessage) {
    const mediaType = msg.contentType.split(';')[0]!.trim().toLowerCase();
    if (mediaType !== 'application/x-www-form-urlencoded') {
      throw new MalformedMessageError(`Alipay notifies are form-urlencoded, got ${mediaType.slice(0, 60) || 'no content type'}`);
    }
    const params = formFields(new URLSearchParams(msg.body.toString('utf8')));
    if (!params.sign) throw new SignatureError('Alipay notify carries no sign');
    if (params.sign_type && params.sign_type !== 'RSA2') throw new SignatureError(`Alipay notify sign_type ${params.sign_type.slice(0, 10)} is not RSA2`);
    if (!verifyNotify(params, cred.alipayPublicKey)) throw new SignatureError('Alipay notify signature does not verify with alipay_public_key');
    // We always ask for utf-8; a notify in another charset would have been decoded wrongly.
    if (params.charset && params.charset.toLowerCase() !== 'utf-8') throw new MalformedMessageError(`Alipay notify charset ${params.charset.slice(0, 20)} is not utf-8`);
    // Fund orders (transfers, red packets) report through the message service, not a notify_type.
    if (params.msg_method !== undefined) return fundMessageNotificationOf(params);
    if (params.notify_type === 'dut_user_sign' || params.notify_type === 'dut_user_unsign') return agreementNotificationOf(params);
    return notificationOf(params);
  },

  acknowledge(accepted: boolean): Ack {
    // Alipay stops retrying only on the exact body `success`.
    return accepted
      ? { status: 200, contentType: 'text/plain; charset=utf-8', body: 'success' }
      : { status: 400, contentType: 'text/plain; charset=utf-8', body: 'fail' };
  },

  parseReturn(cred, query) {
    const params = formFields(new URLSearchParams(query));
    if (!params.sign || !verifyNotify(params, cred.alipayPublicKey)) throw new SignatureError('Alipay return parameters do not verify with alipay_public_key');
    if (params.app_id !== cred.appId) throw new MalformedMessageError('Alipay return is for another app');
    if (!params.out_trade_no) throw new MalformedMessageError('Alipay return lacks out_trade_no');
    return { orderNo: params.out_trade_no };
  },
};

// --- private helpers ---------------------------------------------------------------------------

function alipayCode(code: ChannelCode): AlipayChannelCode {
  if (code in methodFor) return code as AlipayChannelCode;
  throw new ChannelRequestError('channel_unsupported', `Alipay does not serve channel ${code}`);
}

function requireCny(currency: string): void {
  if (currency.toUpperCase() !== 'CNY') throw new ChannelRequestError('currency_unsupported', `Alipay (gateway.do) settles CNY only, not ${currency}`);
}

function keyOrConfigError(load: () => KeyObject, field: string, expected: string): KeyObject {
  try {
    return load();
  } catch {
    // Never echo the value: it may be a key.
    throw new ChannelConfigError(`Alipay config: ${field} must be ${expected}`);
  }
}

const sdks = new WeakMap<AlipayCredentials, AlipaySdk>();
// Loaded on the first Alipay call, not at start: the SDK and its HTTP client are some 300 modules,
// two fifths of the CPU a gateway process spent loading code, and no request before it needs them.
let sdkModule: Promise<typeof import('alipay-sdk')> | undefined;

/** The official SDK for these credentials (cached per parsed credential object). */
export async function sdkFor(cred: AlipayCredentials): Promise<AlipaySdk> {
  const { AlipaySdk } = await (sdkModule ??= import('alipay-sdk'));
  let sdk = sdks.get(cred);
  if (!sdk) {
    sdk = new AlipaySdk({
      appId: cred.appId,
      privateKey: pemOf(cred.privateKey),
      keyType: 'PKCS8',
      alipayPublicKey: pemOf(cred.alipayPublicKey),
      gateway: cred.gateway,
      signType: 'RSA2',
      camelcase: false,
      timeout: REQUEST_TIMEOUT_MS,
    });
    // The SDK signs with config.privateKey, a PEM string, so node:crypto parsed the key again for
    // every request (more CPU than the RSA signature itself). It hands the value straight to
    // crypto's sign(), which takes the parsed KeyObject just as well.
    sdk.config.privateKey = cred.privateKey as unknown as string;
    // Certificate mode: the SDK adds app_cert_sn and alipay_root_cert_sn to every request it signs
    // (gateway calls, page pay, app order strings); the SNs are ours (cert.ts), computed once.
    if (cred.certMode) {
      sdk.config.appCertSn = certModeParams(cred.certMode).app_cert_sn;
      sdk.config.alipayRootCertSn = certModeParams(cred.certMode).alipay_root_cert_sn;
    }
    sdks.set(cred, sdk);
  }
  return sdk;
}

/** The common parameters the SDK (and Alipay's other SDKs) put in the URL; the rest goes in the body. */
const URL_PARAMS = new Set(['app_id', 'method', 'format', 'charset', 'sign_type', 'sign', 'timestamp', 'version', 'notify_url', 'return_url', 'app_auth_token']);

/**
 * Calls a gateway.do API method. Returns a verified response whose code is 10000 or a business
 * failure (40004), and 10003 (in process) when `opts.inProcess` says the caller reads it (a
 * payment the payer or Alipay is still completing); every other answer is thrown as a typed fault.
 */
export async function callGateway(
  cred: AlipayCredentials, method: string, biz: Record<string, unknown>, common: Record<string, string | undefined> = {}, opts: { inProcess?: boolean } = {},
): Promise<AlipayResponse> {
  // Never send empty parameters: the Node SDK signs them, Alipay's gateway drops them.
  const signed = new URLSearchParams((await sdkFor(cred)).sdkExecute(method, { ...withoutEmpty(common), timestamp: nowBeijing(), biz_content: biz }, { bizContentAutoSnakeCase: false }));
  const url = new URL(cred.gateway);
  const body = new URLSearchParams();
  for (const [k, v] of signed) (URL_PARAMS.has(k) ? url.searchParams : body).set(k, v);

  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8', accept: 'application/json' },
      body: body.toString(),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    throw new ChannelUnavailable(`Alipay ${method}: ${timedOut ? `no answer within ${REQUEST_TIMEOUT_MS / 1000}s` : 'gateway unreachable'}`);
  }
  const text = await res.text().catch(() => '');
  if (res.status !== 200) throw new ChannelUnavailable(`Alipay ${method}: gateway answered HTTP ${res.status}`);

  let signedResponse: RawSignedResponse;
  let data: AlipayResponse;
  try {
    signedResponse = readSignedResponse(text, [`${method.replace(/\./g, '_')}_response`, 'error_response']);
    data = JSON.parse(signedResponse.body) as AlipayResponse; // read only from the bytes the signature covers
  } catch {
    throw new ChannelUnavailable(`Alipay ${method}: unreadable gateway answer`);
  }
  if (typeof data.code !== 'string') throw new ChannelUnavailable(`Alipay ${method}: answer without code`);

  if (signedResponse.sign === undefined) {
    // Alipay leaves some gateway-level errors unsigned (an unknown app_id, say). Such an answer
    // is believed only as a fault, never as a success, a decline or "no such trade".
    if (data.code === '10000' || data.code === '40004') throw new SignatureError(`Alipay ${method}: response is not signed`);
    throw faultOf(method, data);
  }
  if (cred.certMode) {
    const key = responseKeyFor(cred.certMode, signedResponse.certSn);
    if (!key) {
      throw new SignatureError(`Alipay ${method}: response is signed with certificate ${JSON.stringify(signedResponse.certSn ?? '')}, not the configured alipay_public_cert (${cred.certMode.alipayCertSn}); upload Alipay's current certificate`);
    }
    if (!verifyResponse(signedResponse, key)) throw new SignatureError(`Alipay ${method}: response signature does not verify with alipay_public_cert`);
  } else if (!verifyResponse(signedResponse, cred.alipayPublicKey)) {
    throw new SignatureError(`Alipay ${method}: response signature does not verify with alipay_public_key`);
  }
  if (data.code === '10000' || (data.code === '40004' && data.sub_code !== 'ACQ.SYSTEM_ERROR')) return data;
  if (data.code === '10003' && opts.inProcess) return data;
  throw faultOf(method, data);
}

/** Sub-codes that mean the merchant's setup is wrong (keys, app, signed products), not the request. */
const CONFIG_SUB_CODES = new Set([
  'isv.invalid-app-id', 'isv.invalid-signature', 'isv.invalid-signature-type', 'isv.missing-signature-key',
  'isv.missing-signature-config', 'isv.app-unonline', 'isv.insufficient-isv-permissions', 'isv.insufficient-user-permissions',
]);

/** Public error codes (opendocs.alipay.com/common/02km9f) → our typed faults. */
function faultOf(method: string, r: AlipayResponse): Error {
  const detail = describe(method, r);
  switch (r.code) {
    case '20000': // service unavailable: retry or query
    case '10003': // still processing: query later
      return new ChannelUnavailable(detail);
    case '20001': // authorisation token
    case '40006': // insufficient permissions: the product is not signed for this app
      return new ChannelConfigError(detail);
    case '40004': // only ACQ.SYSTEM_ERROR gets here: Alipay says retry with the same request
      return new ChannelUnavailable(detail);
    default:
      return r.sub_code && CONFIG_SUB_CODES.has(r.sub_code) ? new ChannelConfigError(detail) : requestError(method, r);
  }
}

function requestError(method: string, r: AlipayResponse): ChannelRequestError {
  return new ChannelRequestError(r.sub_code ?? r.code, describe(method, r));
}

function describe(method: string, r: AlipayResponse): string {
  const sub = r.sub_code ? ` (${r.sub_code}${r.sub_msg ? `: ${String(r.sub_msg).slice(0, 300)}` : ''})` : '';
  return `Alipay ${method}: ${r.code} ${String(r.msg ?? '').slice(0, 100)}${sub}`;
}

function declineOf(r: AlipayResponse): Decline {
  return { code: r.sub_code ?? r.code, message: String(r.sub_msg ?? r.msg ?? 'declined by Alipay') };
}

/** Maps a verified but unreadable field (an amount, a date) to a channel fault. */
function readOrUnavailable<T>(method: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new ChannelUnavailable(`Alipay ${method}: ${err instanceof Error ? err.message : 'unreadable answer'}`);
  }
}

export function withoutEmpty(params: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) if (v) out[k] = v;
  return out;
}

/** Form fields as a plain map; a repeated field is refused (two readers could pick different values). */
export function formFields(form: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of form) {
    if (Object.hasOwn(out, k)) throw new MalformedMessageError(`Alipay message repeats field ${k.slice(0, 40)}`);
    out[k] = v;
  }
  return out;
}
