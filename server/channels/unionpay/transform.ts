/**
 * UnionPay's wire shapes and their mapping to ours: fen strings, Beijing-time txnTime, the
 * request field sets, our refund ids ↔ refund orderIds, and the one status switch
 * (protocols/unionpay.md "Status mapping").
 */
import { MalformedMessageError } from '../../errors.ts';
import type { ChannelCode, ChannelNotification, ChannelPaymentStatus, ChannelRefundStatus } from '../types.ts';

export const VERSION = '5.1.0';
export const ENCODING = 'UTF-8';
export const CNY_CODE = '156';
/** How long after payTimeout a "not found" or failed order is still believed open (clock skew, a payment finishing at the deadline). */
export const PAY_TIMEOUT_GRACE_S = 120;

/** channelType per channel code: 07 PC and tablet, 08 mobile. */
export const CHANNEL_TYPE = { unionpay_pc: '07', unionpay_wap: '08' } as const satisfies Partial<Record<ChannelCode, string>>;
export type UnionpayChannelCode = keyof typeof CHANNEL_TYPE;

// --- money -------------------------------------------------------------------------------------

/** Integer fen → txnAmt (plain digits). A non-integer is a bug upstream: it throws. */
export function txnAmtOf(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 1) throw new RangeError(`amount must be a positive integer of fen, got ${fen}`);
  return String(fen);
}

/** txnAmt → integer fen; anything but plain digits throws. */
export function fenOf(txnAmt: string | undefined): number {
  if (!txnAmt || !/^(0|[1-9]\d{0,11})$/.test(txnAmt)) throw new RangeError(`not a fen amount: ${JSON.stringify(String(txnAmt).slice(0, 20))}`);
  return Number(txnAmt);
}

// --- time --------------------------------------------------------------------------------------

const BEIJING_OFFSET_S = 8 * 3600;

/** Unix seconds → `YYYYMMDDhhmmss` in Beijing time (UTC+8 whatever the server's zone). */
export function beijingTime(unixSeconds: number): string {
  return new Date((Math.floor(unixSeconds) + BEIJING_OFFSET_S) * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** `YYYYMMDDhhmmss` Beijing time → unix seconds; an impossible time throws. */
export function parseBeijingTime(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) throw new RangeError(`not a YYYYMMDDhhmmss time: ${JSON.stringify(text.slice(0, 20))}`);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  if (mo < 1 || mo > 12 || new Date(ms).getUTCDate() !== d || h > 23 || mi > 59 || s > 59) throw new RangeError(`impossible time: ${text}`);
  return ms / 1000 - BEIJING_OFFSET_S;
}

// --- ids ---------------------------------------------------------------------------------------

/** UnionPay orderIds: letters and digits only (no `-`/`_`), 8–32 (the API page allows 40; demos and acquirers 32). */
export const ORDER_ID = /^[A-Za-z0-9]{8,32}$/;
const REFUND_ID = /^re_([A-Za-z0-9]{6,38})$/;

/**
 * A refund's own orderId, from our refund id (`re_` + base62): the underscore dropped, so the
 * same refund always gets the same orderId (a resubmission is answered 12, never a second refund)
 * and the notify's orderId maps back (refundIdOf).
 */
export function refundOrderIdOf(refundId: string): string {
  const m = REFUND_ID.exec(refundId);
  if (!m) throw new RangeError(`not a refund id (re_ + letters/digits): ${JSON.stringify(refundId.slice(0, 40))}`);
  return `re${m[1]}`;
}

/** The inverse of refundOrderIdOf; undefined for an orderId that is not one of our refunds'. */
export function refundIdOf(orderId: string): string | undefined {
  return /^re[A-Za-z0-9]{6,38}$/.test(orderId) ? `re_${orderId.slice(2)}` : undefined;
}

// --- statuses ----------------------------------------------------------------------------------

/**
 * A payment query's answer → our status: `respCode` is the query's own result, `origRespCode`
 * the order's. `final`: payTimeout (+ grace) has passed, after which "failed" and "not found"
 * no longer change (UnionPay: they "may all be intermediate" until then). Only 00/A6 are success;
 * anything unknown stays pending.
 */
export function paymentStatusOf(respCode: string | undefined, origRespCode: string | undefined, final: boolean): ChannelPaymentStatus {
  const signal = respCode === '00' ? `orig:${origRespCode ?? ''}` : `resp:${respCode ?? ''}`;
  switch (signal) {
    case 'orig:00':
    case 'orig:A6': // 有缺陷的成功: still a success
      return 'succeeded';
    case 'orig:03':
    case 'orig:04':
    case 'orig:05': // processing
    case 'resp:03':
    case 'resp:04':
    case 'resp:05': // the query itself timed out
    case 'resp:37': // queried too often
      return 'pending';
    case 'resp:34': // no such order (the payer has not reached the gateway yet)
      return final ? 'closed' : 'pending';
    default:
      // Another origRespCode is a failed payment, final only once payTimeout has passed.
      return final && signal.startsWith('orig:') && origRespCode ? 'closed' : 'pending';
  }
}

/**
 * A refund's state: the sync answer of backTransReq (`sync`: respCode) or its query / notify
 * (`result`: origRespCode, or a notify's respCode). 00 on the sync answer means accepted only.
 */
export function refundStatusOf(kind: 'sync' | 'result', code: string | undefined): ChannelRefundStatus {
  switch (code) {
    case '00':
    case 'A6':
      return kind === 'sync' ? 'pending' : 'succeeded';
    case '03':
    case '04':
    case '05':
      return 'pending';
    case undefined:
    case '':
      return 'pending';
    default:
      return 'failed';
  }
}

// --- notifies ----------------------------------------------------------------------------------

const need = (p: Record<string, string>, name: string): string => {
  const v = p[name];
  if (!v) throw new MalformedMessageError(`UnionPay notify lacks ${name}`);
  return v;
};

function amountOf(p: Record<string, string>): number {
  try {
    return fenOf(need(p, 'txnAmt'));
  } catch (err) {
    if (err instanceof MalformedMessageError) throw err;
    throw new MalformedMessageError('UnionPay notify txnAmt is not an amount of fen');
  }
}

/** ISO code of a currencyCode: 156 is CNY; another is passed on as given, so the core refuses it. */
const currencyOf = (code: string | undefined): string | undefined => (code === undefined ? undefined : code === CNY_CODE ? 'CNY' : code);

/** A verified back notify → ChannelNotification: txnType 01 a payment, 04 one of our refunds. */
export function notificationOf(p: Record<string, string>): ChannelNotification {
  const txnType = need(p, 'txnType');
  const respCode = need(p, 'respCode');
  const common = { merchantId: need(p, 'merId'), amount: amountOf(p), currency: currencyOf(p.currencyCode), notifyId: `${need(p, 'queryId')}:${respCode}` };
  if (txnType === '01') {
    const succeeded = respCode === '00' || respCode === 'A6';
    return { kind: 'payment', ...common, orderNo: need(p, 'orderId'), channelTradeNo: need(p, 'queryId'), status: succeeded ? 'succeeded' : 'pending' };
  }
  if (txnType === '04') {
    const refundNo = refundIdOf(need(p, 'orderId'));
    if (!refundNo) throw new MalformedMessageError('UnionPay refund notify orderId is not one of our refunds');
    // The payment's orderNo travels in reqReserved (the refund's orderId is its own).
    const orderNo = need(p, 'reqReserved');
    return { kind: 'refund', ...common, orderNo, refundNo, channelRefundNo: p.queryId, status: refundStatusOf('result', respCode) };
  }
  throw new MalformedMessageError(`unexpected UnionPay notify txnType ${txnType.slice(0, 4)}`);
}
