/**
 * What the WeChat Pay simulator writes on the wire: its ids (transaction_id, refund_id,
 * prepay_id, code_url), the transaction and refund objects of answers and notifies, the error
 * bodies, and the sandbox payer's openid.
 */
import crypto from 'node:crypto';
import { rfc3339Beijing } from '../../channels/wechatpay/transform.ts';
import type { SandboxOrder, SandboxRefund } from './store.ts';

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** n random decimal digits. */
export function digits(n: number): string {
  let out = '';
  while (out.length < n) out += String(crypto.randomInt(0, 10));
  return out;
}

/** n random lower-case hex characters. */
export const hex = (n: number): string => crypto.randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);

/** yyyyMMddHHmmss in Beijing time. */
const beijingStamp = (unix: number): string => rfc3339Beijing(unix).slice(0, 19).replace(/\D/g, '');

/** A 28-digit transaction_id as WeChat's look: 4200, 6 digits, the Beijing date, 10 digits. */
export const newTransactionId = (): string => `4200${digits(6)}${beijingStamp(nowSeconds()).slice(0, 8)}${digits(10)}`;

/** A 29-digit refund_id: 50, 9 digits, the Beijing date, 10 digits. */
export const newRefundId = (): string => `50${digits(9)}${beijingStamp(nowSeconds()).slice(0, 8)}${digits(10)}`;

/** prepay_id: `wx`, the Beijing time, then the order's 20-character token (so the id leads back to the order). */
export const newPrepayId = (token: string): string => `wx${beijingStamp(nowSeconds())}${token}`;
export const tokenOfPrepayId = (prepayId: string): string | undefined => /^wx\d{14}([A-Za-z0-9]{20})$/.exec(prepayId)?.[1];

/** code_url is opaque to merchants; ours carries the order's token as `pr`, like WeChat's short codes. */
export const codeUrlOf = (token: string): string => `weixin://wxpay/bizpayurl?pr=${token}`;
export const tokenOfCodeUrl = (codeUrl: string): string | undefined => /^weixin:\/\/wxpay\/bizpayurl\?pr=([A-Za-z0-9]{20})$/.exec(codeUrl)?.[1];

/**
 * The openid of the sandbox payer for an appid: stable (one fixed payer), different per appid as
 * real openids are, and unguessable without the master key.
 */
export function sandboxOpenid(masterKey: Buffer, appid: string): string {
  return `o${crypto.createHmac('sha256', masterKey).update(`wechatpay-sandbox-openid\n${appid}\npayer-1`).digest('base64url').slice(0, 27)}`;
}

export const yuanText = (fen: number): string => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;

const TRADE_STATE_DESC: Record<SandboxOrder['state'], string> = {
  NOTPAY: '订单未支付',
  SUCCESS: '支付成功',
  REFUND: '订单发生过退款，退款详情请查询退款单',
  CLOSED: '订单已关闭',
  PAYERROR: '支付失败，请重新下单支付',
};

/** A transaction as the query answers it and TRANSACTION.SUCCESS carries it. */
export function transactionOf(order: SandboxOrder): Record<string, unknown> {
  const d = order.data;
  const paid = d.successTime !== undefined;
  return {
    appid: d.appid,
    mchid: order.mchid,
    out_trade_no: order.outTradeNo,
    ...(paid ? { transaction_id: d.transactionId } : {}),
    ...(order.state !== 'NOTPAY' ? { trade_type: d.tradeType } : {}),
    trade_state: order.state,
    trade_state_desc: TRADE_STATE_DESC[order.state],
    ...(paid ? { bank_type: 'OTHERS', success_time: rfc3339Beijing(d.successTime!), payer: { openid: d.payerOpenid } } : {}),
    attach: d.attach ?? '',
    amount: paid
      ? { total: order.amount, payer_total: order.amount, currency: 'CNY', payer_currency: 'CNY' }
      : { total: order.amount, currency: 'CNY', payer_currency: 'CNY' },
  };
}

/** A refund as the refund and refund-query endpoints answer it. */
export function refundOf(order: SandboxOrder, r: SandboxRefund): Record<string, unknown> {
  return {
    refund_id: r.refundId,
    out_refund_no: r.outRefundNo,
    transaction_id: order.data.transactionId,
    out_trade_no: order.outTradeNo,
    channel: 'ORIGINAL',
    user_received_account: '支付用户零钱',
    ...(r.successTime !== undefined ? { success_time: rfc3339Beijing(r.successTime) } : {}),
    create_time: rfc3339Beijing(r.createdAt),
    status: r.status,
    funds_account: 'AVAILABLE',
    amount: {
      total: order.amount, refund: r.amount, payer_total: order.amount, payer_refund: r.amount,
      settlement_total: order.amount, settlement_refund: r.amount, discount_refund: 0, currency: 'CNY', refund_fee: 0,
    },
    promotion_detail: [],
  };
}

/** A refund notify's plaintext (no appid: WeChat's carries none). */
export function refundNoticeOf(order: SandboxOrder, r: SandboxRefund): Record<string, unknown> {
  return {
    mchid: order.mchid,
    out_trade_no: order.outTradeNo,
    transaction_id: order.data.transactionId,
    out_refund_no: r.outRefundNo,
    refund_id: r.refundId,
    refund_status: r.status,
    ...(r.successTime !== undefined ? { success_time: rfc3339Beijing(r.successTime) } : {}),
    user_received_account: '支付用户零钱',
    amount: { total: order.amount, refund: r.amount, payer_total: order.amount, payer_refund: r.amount },
  };
}

/** A v3 error answer: HTTP status and `{code, message, detail?}`. */
export interface V3Error {
  status: number;
  body: { code: string; message: string; detail?: Record<string, unknown> };
}

export const v3Error = (status: number, code: string, message: string, detail?: Record<string, unknown>): V3Error =>
  ({ status, body: detail ? { code, message, detail } : { code, message } });

/** PARAM_ERROR naming the field the way WeChat does (`输入源“/body/amount/total”…`), plus the rule in English. */
export const paramError = (location: 'body' | 'uri_template' | 'query', field: string, rule: string): V3Error =>
  v3Error(400, 'PARAM_ERROR', `输入源“/${location}/${field.replace(/\./g, '/')}”映射到字段“${field}”校验失败 (${field}: ${rule})`, { location, field });
