/**
 * Alipay's wire shapes and their mapping to ours: yuan strings ↔ integer fen, Beijing-time
 * timestamps, trade and refund statuses, and the fields of notifies and API responses.
 */
import { MalformedMessageError } from '../../errors.ts';
import type {
  ChannelCode, ChannelNotification, ChannelOrder, ChannelPaymentStatus, ChannelRefundStatus,
  PaymentQueryResult, RefundResult,
} from '../types.ts';

/** The part of every gateway response Alipay always sends. */
export interface AlipayResponse {
  code: string;
  msg: string;
  sub_code?: string;
  sub_msg?: string;
  [field: string]: unknown;
}

// --- money -------------------------------------------------------------------------------------

/** Integer fen → Alipay's "12.34" yuan string. A non-integer is a bug upstream: it throws. */
export function fenToYuan(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError(`amount must be a non-negative integer of fen, got ${fen}`);
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

const yuanPattern = /^(0|[1-9]\d{0,11})(?:\.(\d{1,2}))?$/;

/** Alipay's yuan string → integer fen, parsed as text (no floating point); anything else throws. */
export function yuanToFen(yuan: string): number {
  const m = yuanPattern.exec(yuan);
  if (!m) throw new RangeError(`not a yuan amount: ${JSON.stringify(yuan.slice(0, 20))}`);
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

// --- time --------------------------------------------------------------------------------------

const BEIJING_OFFSET_S = 8 * 3600;

/** Unix seconds → `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8, no daylight saving). */
export function beijingTime(unixSeconds: number): string {
  const d = new Date((Math.floor(unixSeconds) + BEIJING_OFFSET_S) * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** `yyyy-MM-dd HH:mm:ss` in Beijing time → unix seconds; an impossible date throws. */
export function parseBeijingTime(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) throw new RangeError(`not a yyyy-MM-dd HH:mm:ss time: ${JSON.stringify(text.slice(0, 30))}`);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  if (new Date(ms).getUTCDate() !== d || mo < 1 || mo > 12 || h > 23 || mi > 59 || s > 59) throw new RangeError(`impossible time: ${text}`);
  return ms / 1000 - BEIJING_OFFSET_S;
}

export const nowBeijing = (): string => beijingTime(Date.now() / 1000);

// --- statuses ----------------------------------------------------------------------------------

/** Alipay's trade status. Only TRADE_SUCCESS / TRADE_FINISHED mean paid (protocol notes). */
export function paymentStatusOf(tradeStatus: string | undefined): ChannelPaymentStatus {
  switch (tradeStatus) {
    case 'WAIT_BUYER_PAY':
      return 'pending';
    case 'TRADE_SUCCESS':
    case 'TRADE_FINISHED':
      return 'succeeded';
    case 'TRADE_CLOSED':
      return 'closed';
    default:
      return 'pending';
  }
}

/**
 * alipay.trade.fastpay.refund.query's answer. Alipay: "refund_status REFUND_SUCCESS, or empty
 * with refund data present, means refunded; nothing found means not (yet) refunded". Nothing
 * found is not an explicit failure, so it stays pending (a refund request may still be in flight).
 */
export function refundStatusOf(refundStatus: string | undefined, refundAmount: string | undefined): ChannelRefundStatus {
  switch (refundStatus) {
    case 'REFUND_SUCCESS':
      return 'succeeded';
    case undefined:
    case '':
      return refundAmount ? 'succeeded' : 'pending';
    default:
      return 'pending';
  }
}

// --- requests ----------------------------------------------------------------------------------

/** Which Alipay method and product serve each of our channel codes. */
export const methodFor = {
  alipay_pc: { method: 'alipay.trade.page.pay', productCode: 'FAST_INSTANT_TRADE_PAY' },
  alipay_wap: { method: 'alipay.trade.wap.pay', productCode: 'QUICK_WAP_WAY' },
  alipay_qr: { method: 'alipay.trade.precreate', productCode: undefined },
  // The merchant's own app: the Alipay app SDK carries the signed order string (app-and-money-out.md §1).
  alipay_app: { method: 'alipay.trade.app.pay', productCode: 'QUICK_MSECURITY_PAY' },
} as const satisfies Partial<Record<ChannelCode, { method: string; productCode: string | undefined }>>;

export type AlipayChannelCode = keyof typeof methodFor;

/**
 * Alipay refuses `/`, `=` and `&` in subject ("不可使用特殊字符，如 /，=，& 等") and caps it at
 * 256 characters; body at 128.
 */
export function cleanText(text: string, max: number): string {
  return [...text.replace(/[/=&]/g, ' ').replace(/\s+/g, ' ').trim()].slice(0, max).join('');
}

/** A biz_content: string fields, and objects of string fields (extend_params). */
export type AlipayBizContent = Record<string, string | Record<string, string>>;

/** biz_content of a pay request; fields without a value are left out (never sent empty). */
export function payBizContent(order: ChannelOrder & { channel: AlipayChannelCode }): AlipayBizContent {
  const { productCode } = methodFor[order.channel];
  const biz: AlipayBizContent = {
    out_trade_no: order.orderNo,
    total_amount: fenToYuan(order.amount),
    subject: cleanText(order.subject, 256) || order.orderNo,
    time_expire: beijingTime(order.expiresAt),
  };
  if (productCode) biz.product_code = productCode;
  const body = order.description ? cleanText(order.description, 128) : '';
  if (body) biz.body = body;
  if (order.channel === 'alipay_wap' && order.quitUrl) biz.quit_url = order.quitUrl;
  if (order.installments) biz.extend_params = installmentParams(order.installments);
  return biz;
}

/**
 * Huabei installments (花呗分期) in extend_params: both fields, as strings. hb_fq_num is the
 * periods (3, 6 or 12); hb_fq_seller_percent the merchant's share of the fee, "0" (the buyer
 * pays it) or "100" (the merchant does: interest-free for the buyer); Alipay refuses any other
 * value and either field alone (recurring.md §3.1; developer.aliyun.com/article/710927).
 */
export function installmentParams(inst: NonNullable<ChannelOrder['installments']>): Record<string, string> {
  if (![3, 6, 12].includes(inst.count)) throw new RangeError(`Huabei installments take 3, 6 or 12 periods, not ${inst.count}`);
  return { hb_fq_num: String(inst.count), hb_fq_seller_percent: inst.feePayer === 'merchant' ? '100' : '0' };
}

// --- responses and notifies --------------------------------------------------------------------

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** alipay.trade.query (code 10000) → our query result. */
export function queryResultOf(r: AlipayResponse): PaymentQueryResult {
  const status = paymentStatusOf(str(r.trade_status));
  const amount = str(r.total_amount);
  const paid = str(r.send_pay_date);
  return {
    status,
    channelTradeNo: str(r.trade_no),
    amount: amount === undefined ? undefined : yuanToFen(amount),
    paidAt: status === 'succeeded' && paid ? parseBeijingTime(paid) : undefined,
  };
}

/** alipay.trade.fastpay.refund.query (code 10000) → our refund result. */
export function refundQueryResultOf(r: AlipayResponse): RefundResult {
  return { status: refundStatusOf(str(r.refund_status), str(r.refund_amount)) };
}

/**
 * A verified trade_status_sync notify → ChannelNotification. Refund notifies are the same
 * message type carrying `out_biz_no` (our refund number), `refund_fee` and `gmt_refund`.
 * Note: `refund_fee` is the trade's cumulative refunded total, so `amount` of a refund
 * notification is that total, not the one refund's amount.
 */
export function notificationOf(p: Record<string, string>): ChannelNotification {
  const need = (name: string): string => {
    const v = p[name];
    if (!v) throw new MalformedMessageError(`Alipay notify lacks ${name}`);
    return v;
  };
  const amountOf = (name: string): number => {
    try {
      return yuanToFen(need(name));
    } catch (err) {
      if (err instanceof MalformedMessageError) throw err;
      throw new MalformedMessageError(`Alipay notify ${name} is not a yuan amount`);
    }
  };
  const timeOf = (name: string): number | undefined => {
    try {
      return p[name] ? parseBeijingTime(p[name]) : undefined;
    } catch {
      throw new MalformedMessageError(`Alipay notify ${name} is not a yyyy-MM-dd HH:mm:ss time`);
    }
  };
  const notifyType = need('notify_type');
  if (notifyType !== 'trade_status_sync') throw new MalformedMessageError(`unexpected Alipay notify_type ${notifyType.slice(0, 40)}`);
  const common = { orderNo: need('out_trade_no'), appId: need('app_id'), merchantId: str(p.seller_id), notifyId: need('notify_id') };

  if (p.out_biz_no || p.refund_fee || p.gmt_refund) {
    return {
      kind: 'refund',
      ...common,
      refundNo: need('out_biz_no'),
      channelRefundNo: undefined,
      status: 'succeeded', // Alipay notifies refunds only once the money has moved back
      amount: amountOf('refund_fee'),
    };
  }
  const status = paymentStatusOf(need('trade_status'));
  return {
    kind: 'payment',
    ...common,
    channelTradeNo: need('trade_no'),
    status,
    amount: amountOf('total_amount'),
    paidAt: status === 'succeeded' ? timeOf('gmt_payment') : undefined,
  };
}
