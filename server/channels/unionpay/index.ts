/**
 * UnionPay adapter (全渠道 ACP 5.1.0 gateway payments: unionpay_pc channelType 07, unionpay_wap
 * 08), signMethod 01. The consume request is a form the browser posts to frontTransReq.do;
 * query and refund are server posts whose raw `k=v` answers are verified by their
 * signPubKeyCert, chained to the configured middle and root certificates (protocols/unionpay.md).
 */
import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../errors.ts';
import type { Ack, AttemptContext, Channel, ChannelCode, CloseResult, CreateResult, InboundMessage, PaymentQueryResult, RefundResult } from '../types.ts';
import { certIdOf, parseRawResponse, signRequest, verifyMessage, type TrustAnchors } from './sign.ts';
import {
  CHANNEL_TYPE, CNY_CODE, ENCODING, ORDER_ID, PAY_TIMEOUT_GRACE_S, VERSION, beijingTime, fenOf, notificationOf,
  paymentStatusOf, refundOrderIdOf, refundStatusOf, txnAmtOf, type UnionpayChannelCode,
} from './transform.ts';

/** Parsed UnionPay credentials. The key is a KeyObject, so a logged credential shows no key material. */
export interface UnionpayCredentials {
  merId: string;
  signKey: KeyObject;
  signCert: X509Certificate;
  /** The signing certificate's serial in decimal. */
  certId: string;
  trust: TrustAnchors;
  /** Base URL; the API paths (/gateway/api/…) are appended. */
  gateway: string;
}

export const UNIONPAY_PRODUCTION_GATEWAY = 'https://gateway.95516.com';
const REQUEST_TIMEOUT_MS = 15_000;

const pem = z.string().includes('-----BEGIN', { message: 'must be a PEM string' });
const configSchema = z.object({
  mer_id: z.string().regex(/^[A-Za-z0-9]{15}$/, 'must be the 15-character UnionPay merchant number (merId)'),
  sign_cert: pem,
  sign_key: pem,
  root_cert: pem,
  middle_cert: pem,
  gateway: z.url({ protocol: /^https?$/, error: 'must be an http(s) base URL such as https://gateway.95516.com' }).optional(),
});

/** respCodes that say our setup is wrong, not the request: signature (11), merchant state (31), permission (32). */
const CONFIG_CODES = new Set(['11', '31', '32']);

export interface UnionpayOptions {
  /** The clock certificates are checked against (ms); tests fix it. */
  now?: () => number;
}

export function createUnionpayChannel(opts: UnionpayOptions = {}): Channel<UnionpayCredentials> {
  const now = opts.now ?? Date.now;
  const nowSeconds = () => Math.floor(now() / 1000);

  const channel: Channel<UnionpayCredentials> = {
    // --- metadata ------------------------------------------------------------------------------
    provider: 'unionpay',
    displayName: 'UnionPay',
    codes: ['unionpay_pc', 'unionpay_wap'],
    currencies: ['CNY'],

    // --- credentials ---------------------------------------------------------------------------
    parseCredentials(raw: unknown): UnionpayCredentials {
      const parsed = configSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ChannelConfigError(`UnionPay config: ${issue.path.join('.') || 'config'} ${issue.message}`);
      }
      const c = parsed.data;
      const signCert = certOrConfigError(c.sign_cert, 'sign_cert');
      const signKey = configValue('sign_key', 'an RSA private key (PEM; convert the .pfx with openssl pkcs12 -nodes)', () => crypto.createPrivateKey(c.sign_key));
      if (!signCert.checkPrivateKey(signKey)) throw new ChannelConfigError('UnionPay config: sign_key does not belong to sign_cert');
      const root = certOrConfigError(c.root_cert, 'root_cert');
      const middle = certOrConfigError(c.middle_cert, 'middle_cert');
      if (!middle.checkIssued(root) || !middle.verify(root.publicKey)) throw new ChannelConfigError('UnionPay config: middle_cert is not issued by root_cert');
      return {
        merId: c.mer_id,
        signKey,
        signCert,
        certId: certIdOf(signCert),
        trust: { root, middle },
        gateway: (c.gateway ?? UNIONPAY_PRODUCTION_GATEWAY).replace(/\/+$/, ''),
      };
    },
    credentialKeys: Object.keys(configSchema.shape),
    appIdOf: (cred) => cred.merId,
    merchantIdOf: (cred) => cred.merId,

    // --- operations ----------------------------------------------------------------------------
    async createPayment(cred, order): Promise<CreateResult> {
      // Installments are Alipay Huabei's (DESIGN §2.5); the API refuses them for other channels already.
      if (order.installments) throw new ChannelRequestError('installments_unsupported', 'UnionPay does not take Huabei installments');
      const code = unionpayCode(order.channel);
      requireCny(order.currency);
      if (!ORDER_ID.test(order.orderNo)) throw new ChannelRequestError('order_no_invalid', 'UnionPay orderIds are 8–32 letters or digits');
      // The exact string is the order's key at UnionPay (merId + orderId + txnTime): the query repeats it.
      const txnTime = beijingTime(nowSeconds());
      const sep = order.returnUrl.includes('?') ? '&' : '?';
      const fields = signRequest({
        version: VERSION,
        encoding: ENCODING,
        txnType: '01',
        txnSubType: '01',
        bizType: '000201',
        channelType: CHANNEL_TYPE[code],
        accessType: '0',
        merId: cred.merId,
        orderId: order.orderNo,
        txnTime,
        txnAmt: txnAmtOf(order.amount),
        currencyCode: CNY_CODE,
        frontUrl: `${order.returnUrl}${sep}out_trade_no=${encodeURIComponent(order.orderNo)}`,
        backUrl: order.notifyUrl,
        payTimeout: beijingTime(order.expiresAt),
      }, cred.signKey, cred.certId);
      return { ok: true, action: { type: 'form', url: `${cred.gateway}/gateway/api/frontTransReq.do`, fields }, reference: txnTime };
    },

    async queryPayment(cred, orderNo, ctx): Promise<PaymentQueryResult> {
      const txnTime = referenceOf(ctx);
      const r = await query(cred, orderNo, txnTime);
      const final = nowSeconds() > (ctx?.expiresAt ?? 0) + PAY_TIMEOUT_GRACE_S;
      const status = paymentStatusOf(r.respCode, r.origRespCode, final);
      if (status !== 'succeeded') return { status };
      return readOrUnavailable(() => ({ status, channelTradeNo: required(r, 'queryId'), amount: fenOf(r.txnAmt) }));
    },

    async closePayment(_cred, _orderNo, ctx): Promise<CloseResult> {
      // No close in this product: the order stays payable until payTimeout (set from expiresAt).
      if (!ctx) throw new ChannelRequestError('attempt_context_missing', 'UnionPay needs the attempt (its expiry) to tell until when it stays payable');
      return { payableUntil: ctx.expiresAt + PAY_TIMEOUT_GRACE_S };
    },

    async refund(cred, req): Promise<RefundResult> {
      requireCny(req.currency);
      const origQryId = req.attempt?.channelTradeNo;
      if (!origQryId) throw new ChannelRequestError('trade_no_missing', 'UnionPay refunds need the payment queryId (origQryId)');
      if (req.createdAt === undefined) throw new ChannelRequestError('refund_time_missing', 'UnionPay refunds need the refund creation time (txnTime)');
      const orderId = refundOrderId(req.refundNo);
      // A new orderId and txnTime of the refund's own, the same on every resubmission: a repeat is
      // answered 12 (duplicate), never refunded twice.
      const txnTime = beijingTime(req.createdAt);
      const r = await callBack(cred, 'backTransReq.do', {
        version: VERSION,
        encoding: ENCODING,
        txnType: '04',
        txnSubType: '00',
        bizType: '000201',
        channelType: CHANNEL_TYPE.unionpay_pc,
        accessType: '0',
        merId: cred.merId,
        orderId,
        txnTime,
        txnAmt: txnAmtOf(req.amount),
        currencyCode: CNY_CODE,
        origQryId,
        backUrl: req.notifyUrl,
        // Echoed in the refund notify, whose orderId is the refund's: how it finds the payment.
        reqReserved: req.orderNo,
      }, { orderId, txnTime });
      if (r.respCode === '12') return queryRefundAt(cred, orderId, txnTime);
      const status = refundStatusOf('sync', r.respCode);
      if (status === 'failed') return { status, failureMessage: describe(r) };
      return { status, channelRefundNo: r.queryId || undefined };
    },

    async queryRefund(cred, _orderNo, refundNo, ctx): Promise<RefundResult> {
      if (!ctx) throw new ChannelRequestError('refund_context_missing', 'UnionPay refund queries need the refund creation time (txnTime)');
      return queryRefundAt(cred, refundOrderId(refundNo), beijingTime(ctx.createdAt));
    },

    async parseNotification(cred, msg: InboundMessage) {
      const mediaType = msg.contentType.split(';')[0]!.trim().toLowerCase();
      if (mediaType !== 'application/x-www-form-urlencoded') {
        throw new MalformedMessageError(`UnionPay notifies are form-urlencoded, got ${mediaType.slice(0, 60) || 'no content type'}`);
      }
      // The POST body only: merging query or cookies into the signed set breaks verification.
      const params = formFields(new URLSearchParams(msg.body.toString('utf8')));
      verifyMessage(params, cred.trust, now());
      if (params.version && params.version !== VERSION) throw new MalformedMessageError(`UnionPay notify version ${params.version.slice(0, 10)} is not ${VERSION}`);
      return notificationOf(params);
    },

    acknowledge(accepted: boolean): Ack {
      // UnionPay counts HTTP 200 as received (the body is ignored); anything else is resent.
      return accepted
        ? { status: 200, contentType: 'text/plain; charset=utf-8', body: 'ok' }
        : { status: 400, contentType: 'text/plain; charset=utf-8', body: 'fail' };
    },
  };

  /** Single query (txnType 00) of one of our orders by orderId + the exact txnTime sent. */
  function query(cred: UnionpayCredentials, orderId: string, txnTime: string): Promise<Record<string, string>> {
    return callBack(cred, 'queryTrans.do', {
      version: VERSION,
      encoding: ENCODING,
      txnType: '00',
      txnSubType: '00',
      bizType: '000000',
      accessType: '0',
      channelType: CHANNEL_TYPE.unionpay_pc,
      merId: cred.merId,
      orderId,
      txnTime,
    }, { orderId, txnTime });
  }

  async function queryRefundAt(cred: UnionpayCredentials, orderId: string, txnTime: string): Promise<RefundResult> {
    const r = await query(cred, orderId, txnTime);
    // 34: not (yet) known: the refund may still be in flight; a resubmission settles it.
    if (r.respCode !== '00') return { status: 'pending' };
    const status = refundStatusOf('result', r.origRespCode);
    return status === 'failed'
      ? { status, failureMessage: `${r.origRespCode}: ${String(r.origRespMsg ?? '').slice(0, 200)}` }
      : { status, channelRefundNo: r.queryId || undefined };
  }

  /**
   * POSTs a signed back request and returns the verified answer, checked to be about `expect`
   * for our merId. Faults are thrown: unreachable, unreadable, unsigned, or a respCode that says
   * our setup (11 signature, 31, 32) or request (10 format, 13 missing field) is wrong.
   */
  async function callBack(cred: UnionpayCredentials, path: string, fields: Record<string, string>, expect: { orderId: string; txnTime: string }): Promise<Record<string, string>> {
    const body = new URLSearchParams(signRequest(fields, cred.signKey, cred.certId));
    let res: Response;
    try {
      res = await fetch(`${cred.gateway}/gateway/api/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
        body: body.toString(),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      throw new ChannelUnavailable(`UnionPay ${path}: ${timedOut ? `no answer within ${REQUEST_TIMEOUT_MS / 1000}s` : 'gateway unreachable'}`);
    }
    const text = await res.text().catch(() => '');
    if (res.status !== 200) throw new ChannelUnavailable(`UnionPay ${path}: gateway answered HTTP ${res.status}`);
    let r: Record<string, string>;
    try {
      r = parseRawResponse(text.replace(/\s+$/, ''));
    } catch {
      throw new ChannelUnavailable(`UnionPay ${path}: unreadable gateway answer`);
    }
    if (!r.respCode) throw new ChannelUnavailable(`UnionPay ${path}: answer without respCode`);
    if (!r.signature || !r.signPubKeyCert) {
      // An unsigned answer is believed only as a fault, never as a status.
      if (['00', 'A6', '03', '04', '05', '12', '34', '37'].includes(r.respCode)) throw new SignatureError(`UnionPay ${path}: answer is not signed`);
      throw faultOf(path, r);
    }
    verifyMessage(r, cred.trust, now());
    if (CONFIG_CODES.has(r.respCode) || r.respCode === '10' || r.respCode === '13') throw faultOf(path, r);
    if (r.merId !== cred.merId) throw new MalformedMessageError(`UnionPay ${path}: answer is for another merId`);
    if (r.orderId !== undefined && r.orderId !== expect.orderId) throw new MalformedMessageError(`UnionPay ${path}: answer is for another orderId`);
    if (r.txnTime !== undefined && r.txnTime !== expect.txnTime) throw new MalformedMessageError(`UnionPay ${path}: answer is for another txnTime`);
    if (['01', '02', '98', '99'].includes(r.respCode)) throw new ChannelUnavailable(describe(r, path));
    return r;
  }

  return channel;
}

export const unionpay = createUnionpayChannel();

// --- private helpers ---------------------------------------------------------------------------

function unionpayCode(code: ChannelCode): UnionpayChannelCode {
  if (code in CHANNEL_TYPE) return code as UnionpayChannelCode;
  throw new ChannelRequestError('channel_unsupported', `UnionPay does not serve channel ${code}`);
}

function requireCny(currency: string): void {
  if (currency.toUpperCase() !== 'CNY') throw new ChannelRequestError('currency_unsupported', `UnionPay gateway payments settle CNY (156) only, not ${currency}`);
}

function referenceOf(ctx: AttemptContext | undefined): string {
  if (!ctx?.reference || !/^\d{14}$/.test(ctx.reference)) throw new ChannelRequestError('attempt_reference_missing', 'UnionPay queries need the txnTime the order was sent with');
  return ctx.reference;
}

function refundOrderId(refundNo: string): string {
  try {
    return refundOrderIdOf(refundNo);
  } catch (err) {
    throw new ChannelRequestError('refund_no_invalid', (err as Error).message);
  }
}

function configValue<T>(field: string, expected: string, load: () => T): T {
  try {
    return load();
  } catch {
    // Never echo the value: it may be a key.
    throw new ChannelConfigError(`UnionPay config: ${field} must be ${expected}`);
  }
}

const certOrConfigError = (value: string, field: string) => configValue(field, 'an X.509 certificate (PEM)', () => new X509Certificate(value));

function faultOf(path: string, r: Record<string, string>): Error {
  const detail = describe(r, path);
  if (CONFIG_CODES.has(r.respCode!)) return new ChannelConfigError(detail);
  if (r.respCode === '10' || r.respCode === '13') return new ChannelRequestError(r.respCode, detail);
  return new ChannelUnavailable(detail);
}

function describe(r: Record<string, string>, path?: string): string {
  return `${path ? `UnionPay ${path}: ` : ''}${r.respCode} ${String(r.respMsg ?? '').slice(0, 200)}`;
}

const required = (r: Record<string, string>, name: string): string => {
  if (!r[name]) throw new Error(`answer lacks ${name}`);
  return r[name];
};

/** Maps a verified but unreadable field (an amount) to a channel fault. */
function readOrUnavailable<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new ChannelUnavailable(`UnionPay queryTrans.do: ${err instanceof Error ? err.message : 'unreadable answer'}`);
  }
}

/** Form fields as a plain map; a repeated field is refused (two readers could pick different values). */
function formFields(form: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of form) {
    if (Object.hasOwn(out, k)) throw new MalformedMessageError(`UnionPay message repeats field ${k.slice(0, 40)}`);
    out[k] = v;
  }
  return out;
}
