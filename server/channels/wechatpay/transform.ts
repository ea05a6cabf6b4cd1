/**
 * WeChat Pay API v3 wire shapes and their mapping to ours: amounts (already fen on the wire,
 * integers only), RFC 3339 times in Beijing time, the trade_state and refund status switches,
 * request bodies, and the decrypted notify plaintexts.
 */
import net from 'node:net';
import { MalformedMessageError } from '../../errors.ts';
import type {
  ChannelCode, ChannelNotification, ChannelOrder, ChannelPaymentStatus, ChannelRefundStatus, PaymentQueryResult,
  RefundRequest, RefundResult,
} from '../types.ts';

export type WechatpayChannelCode = 'wechat_native' | 'wechat_h5' | 'wechat_jsapi' | 'wechat_app';

/** The order-placing endpoint of each channel code. */
export const PAY_PATH: Record<WechatpayChannelCode, string> = {
  wechat_native: '/v3/pay/transactions/native',
  wechat_h5: '/v3/pay/transactions/h5',
  wechat_jsapi: '/v3/pay/transactions/jsapi',
  // The merchant's own app (app-and-money-out.md §2): prepay_id, then the app-side PayReq.
  wechat_app: '/v3/pay/transactions/app',
};

export const isWechatpayCode = (code: ChannelCode): code is WechatpayChannelCode => code in PAY_PATH;

/** The error body every non-2xx answer carries. */
export interface WechatpayError {
  code: string;
  message: string;
  detail?: unknown;
}

/** A transaction, as the query answers it and the payment notify's plaintext carries it. */
export interface WechatpayTransaction {
  appid?: string;
  mchid?: string;
  out_trade_no?: string;
  transaction_id?: string;
  trade_type?: string;
  trade_state?: string;
  trade_state_desc?: string;
  bank_type?: string;
  attach?: string;
  success_time?: string;
  payer?: { openid?: string };
  amount?: { total?: number; payer_total?: number; currency?: string; payer_currency?: string };
}

/** A refund, as the refund and refund-query endpoints answer it. */
export interface WechatpayRefund {
  refund_id?: string;
  out_refund_no?: string;
  transaction_id?: string;
  out_trade_no?: string;
  channel?: string;
  user_received_account?: string;
  success_time?: string;
  create_time?: string;
  status?: string;
  funds_account?: string;
  amount?: { total?: number; refund?: number; payer_total?: number; payer_refund?: number; currency?: string };
}

/** A refund notify's plaintext (it carries no appid). */
export interface WechatpayRefundNotice {
  mchid?: string;
  out_trade_no?: string;
  transaction_id?: string;
  out_refund_no?: string;
  refund_id?: string;
  refund_status?: string;
  success_time?: string;
  user_received_account?: string;
  amount?: { total?: number; refund?: number; payer_total?: number; payer_refund?: number };
}

/** The (verified) JSON body of a notify, before decryption. */
export interface NotifyEnvelope {
  id: string;
  create_time?: string;
  resource_type?: string;
  event_type: string;
  summary?: string;
  resource: { original_type?: string; algorithm: string; ciphertext: string; associated_data?: string; nonce: string };
}

// --- money and time ------------------------------------------------------------------------------

/** WeChat Pay speaks fen already; only a positive safe integer goes on the wire. A non-integer is a bug upstream: it throws. */
export function fen(amount: number): number {
  if (!Number.isSafeInteger(amount) || amount < 1) throw new RangeError(`amount must be a positive integer of fen, got ${amount}`);
  return amount;
}

const BEIJING_OFFSET_S = 8 * 3600;

/** Unix seconds → RFC 3339 in Beijing time, as WeChat writes them: `2026-03-01T10:00:00+08:00`. */
export function rfc3339Beijing(unixSeconds: number): string {
  const d = new Date((Math.floor(unixSeconds) + BEIJING_OFFSET_S) * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}+08:00`;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** RFC 3339 (any offset, optional fraction) → unix seconds; anything else, or an impossible date, throws. */
export function parseRfc3339(text: string): number {
  const m = RFC3339.exec(text);
  if (!m) throw new RangeError(`not an RFC 3339 time: ${JSON.stringify(text.slice(0, 40))}`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const check = new Date(ms);
  if (check.getUTCDate() !== d || check.getUTCMonth() !== mo - 1 || h > 23 || mi > 59 || s > 59) throw new RangeError(`impossible time: ${text.slice(0, 40)}`);
  const offset = m[8] === 'Z' ? 0 : (m[8]!.startsWith('-') ? -1 : 1) * (Number(m[8]!.slice(1, 3)) * 3600 + Number(m[8]!.slice(4, 6)) * 60);
  return ms / 1000 - offset;
}

/**
 * description is string(127). WeChat counts bytes on several of its length limits, so we cut at
 * 127 UTF-8 bytes on a character boundary: safe whichever way it counts.
 */
export function cleanDescription(text: string, maxBytes = 127): string {
  let out = '';
  let bytes = 0;
  for (const ch of text.replace(/\s+/g, ' ').trim()) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** The payer's IP as WeChat wants it (IPv4 or IPv6); an IPv4-mapped IPv6 address is unwrapped. Undefined when not an IP. */
export function normalizeClientIp(ip: string | null | undefined): string | undefined {
  if (!ip) return undefined;
  const trimmed = ip.trim().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  return net.isIP(trimmed) ? trimmed : undefined;
}

// --- requests --------------------------------------------------------------------------------

/**
 * The body of a pay request (native, h5, jsapi or app: app is native's body, with the app's own
 * AppID in `ids.appid`). Nothing sensitive rides along: `attach` is left out, as WeChat echoes it
 * in queries and notifies.
 */
export function payRequestBody(
  ids: { appid: string; mchid: string },
  order: ChannelOrder & { channel: WechatpayChannelCode },
  extra: { clientIp?: string; openid?: string } = {},
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    appid: ids.appid,
    mchid: ids.mchid,
    description: cleanDescription(order.subject) || order.orderNo,
    out_trade_no: order.orderNo,
    time_expire: rfc3339Beijing(order.expiresAt),
    notify_url: order.notifyUrl,
    amount: { total: fen(order.amount), currency: 'CNY' },
  };
  if (order.channel === 'wechat_h5') body.scene_info = { payer_client_ip: extra.clientIp, h5_info: { type: 'Wap' } };
  if (order.channel === 'wechat_jsapi') body.payer = { openid: extra.openid };
  return body;
}

/** The body of a refund request; out_refund_no is the idempotency key (WeChat answers a repeat with the same refund). */
export function refundRequestBody(req: RefundRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {
    out_trade_no: req.orderNo,
    out_refund_no: req.refundNo,
    notify_url: req.notifyUrl,
    amount: { refund: fen(req.amount), total: fen(req.totalAmount), currency: 'CNY' },
  };
  const reason = req.reason ? cleanDescription(req.reason, 80) : '';
  if (reason) body.reason = reason;
  return body;
}

// --- statuses --------------------------------------------------------------------------------

/**
 * trade_state → our status. Only SUCCESS (and REFUND, which means it was paid) is a success, and
 * only CLOSED, REVOKED and PAYERROR end the attempt; everything else, known or not, is pending.
 */
export function paymentStatusOf(tradeState: string | undefined): ChannelPaymentStatus {
  switch (tradeState) {
    case 'SUCCESS':
    case 'REFUND': // 转入退款: it was paid, then (partly) refunded
      return 'succeeded';
    case 'CLOSED':
    case 'REVOKED':
    case 'PAYERROR': // a failure of this attempt: WeChat sends no notify for it, the gateway learns by query
      return 'closed';
    case 'NOTPAY':
    case 'USERPAYING':
    default:
      return 'pending';
  }
}

/** Refund status → ours. ABNORMAL (the money could not go back by the original route) needs the merchant: failed. */
export function refundStatusOf(status: string | undefined): ChannelRefundStatus {
  switch (status) {
    case 'SUCCESS':
      return 'succeeded';
    case 'CLOSED':
    case 'ABNORMAL':
      return 'failed';
    case 'PROCESSING':
    default:
      return 'pending';
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const int = (v: unknown): number | undefined => (Number.isSafeInteger(v) ? (v as number) : undefined);

function timeOrUndefined(v: unknown): number | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  try {
    return parseRfc3339(s);
  } catch {
    return undefined;
  }
}

/** A query answer → our query result. */
export function queryResultOf(tx: WechatpayTransaction): PaymentQueryResult {
  const status = paymentStatusOf(str(tx.trade_state));
  return {
    status,
    channelTradeNo: str(tx.transaction_id),
    amount: int(tx.amount?.total),
    paidAt: status === 'succeeded' ? timeOrUndefined(tx.success_time) : undefined,
  };
}

/** A refund or refund-query answer → our refund result. */
export function refundResultOf(r: WechatpayRefund): RefundResult {
  const status = refundStatusOf(str(r.status));
  const out: RefundResult = { status };
  const id = str(r.refund_id);
  if (id) out.channelRefundNo = id;
  if (status === 'failed') out.failureMessage = r.status === 'ABNORMAL'
    ? 'ABNORMAL: the refund could not go back to the payer (card cancelled or frozen); handle it in the merchant platform'
    : 'CLOSED: the refund was closed by WeChat Pay';
  return out;
}

// --- notifies --------------------------------------------------------------------------------

/**
 * A verified, decrypted notify → ChannelNotification. Payment: TRANSACTION.SUCCESS with the
 * transaction plaintext. Refund: REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED with the refund
 * plaintext; its amount is this refund's amount (amount.refund).
 */
export function notificationOf(envelope: NotifyEnvelope, plaintext: Record<string, unknown>): ChannelNotification {
  const need = (obj: Record<string, unknown>, name: string): string => {
    const v = str(obj[name]);
    if (!v) throw new MalformedMessageError(`WeChat Pay notify plaintext lacks ${name}`);
    return v;
  };
  const amountOf = (obj: unknown, name: string): number => {
    const v = int((obj as Record<string, unknown> | undefined)?.[name]);
    if (v === undefined || v < 0) throw new MalformedMessageError(`WeChat Pay notify plaintext lacks an integer amount.${name}`);
    return v;
  };
  const event = envelope.event_type;
  if (event === 'TRANSACTION.SUCCESS') {
    if (envelope.resource.original_type !== undefined && envelope.resource.original_type !== 'transaction') {
      throw new MalformedMessageError('WeChat Pay TRANSACTION notify does not carry a transaction');
    }
    const tx = plaintext as WechatpayTransaction & Record<string, unknown>;
    const status = paymentStatusOf(str(tx.trade_state));
    return {
      kind: 'payment',
      orderNo: need(tx, 'out_trade_no'),
      channelTradeNo: need(tx, 'transaction_id'),
      status,
      amount: amountOf(tx.amount, 'total'),
      currency: currencyOf(tx.amount),
      appId: need(tx, 'appid'),
      merchantId: str(tx.mchid),
      paidAt: status === 'succeeded' ? timeOrUndefined(tx.success_time) : undefined,
      notifyId: envelope.id,
    };
  }
  if (event === 'REFUND.SUCCESS' || event === 'REFUND.ABNORMAL' || event === 'REFUND.CLOSED') {
    if (envelope.resource.original_type !== undefined && envelope.resource.original_type !== 'refund') {
      throw new MalformedMessageError('WeChat Pay REFUND notify does not carry a refund');
    }
    const r = plaintext as WechatpayRefundNotice & Record<string, unknown>;
    const status = refundStatusOf(need(r, 'refund_status'));
    // The event names the outcome too; a plaintext that contradicts it is not believed.
    if (status !== refundStatusOf(event.slice('REFUND.'.length))) throw new MalformedMessageError(`WeChat Pay ${event} notify carries refund_status ${String(r.refund_status).slice(0, 20)}`);
    return {
      kind: 'refund',
      orderNo: need(r, 'out_trade_no'),
      refundNo: need(r, 'out_refund_no'),
      channelRefundNo: str(r.refund_id),
      status,
      amount: amountOf(r.amount, 'refund'),
      currency: currencyOf(r.amount),
      merchantId: str(r.mchid),
      notifyId: envelope.id,
    };
  }
  throw new MalformedMessageError(`unexpected WeChat Pay event_type ${String(event).slice(0, 40)}`);
}

/** Checks the shape of a notify body before its resource is decrypted. */
export function envelopeOf(value: unknown): NotifyEnvelope {
  const v = value as Partial<NotifyEnvelope> | null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new MalformedMessageError('WeChat Pay notify is not a JSON object');
  if (!str(v.id)) throw new MalformedMessageError('WeChat Pay notify lacks id');
  if (!str(v.event_type)) throw new MalformedMessageError('WeChat Pay notify lacks event_type');
  const r = v.resource;
  if (!r || typeof r !== 'object') throw new MalformedMessageError('WeChat Pay notify lacks resource');
  if (r.algorithm !== 'AEAD_AES_256_GCM') throw new MalformedMessageError(`WeChat Pay notify resource algorithm ${String(r.algorithm).slice(0, 30)} is not AEAD_AES_256_GCM`);
  if (!str(r.ciphertext) || !str(r.nonce)) throw new MalformedMessageError('WeChat Pay notify resource lacks ciphertext or nonce');
  return v as NotifyEnvelope;
}

/** The notify's amount.currency, when it names one (WeChat writes CNY): the core refuses any other. */
function currencyOf(amount: unknown): string | undefined {
  const c = amount && typeof amount === 'object' ? (amount as { currency?: unknown }).currency : undefined;
  return typeof c === 'string' ? c.slice(0, 8) : undefined;
}
