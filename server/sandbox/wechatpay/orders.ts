/**
 * The simulated API v3 operations, run for an authenticated merchant: place (native, h5, jsapi, app),
 * query, close, refund and refund query, with WeChat's field rules and error codes.
 * Error codes: the common table of pay.weixin.qq.com/doc/v3/merchant (下单/查单/关单/退款).
 */
import crypto from 'node:crypto';
import net from 'node:net';
import type { SandboxDeps } from '../types.ts';
import { parseRfc3339 } from '../../channels/wechatpay/transform.ts';
import {
  completeRefund, findOrder, findRefund, insertOrder, recordRefund, transitionOrder,
  type SandboxMerchant, type SandboxOrder, type SandboxRefund, type TradeType,
} from './store.ts';
import { newNotifyId, refundNotify, sendNotify } from './notify.ts';
import {
  codeUrlOf, newPrepayId, newRefundId, nowSeconds, paramError, refundOf, sandboxOpenid, transactionOf, v3Error, type V3Error,
} from './wire.ts';
import { randomId } from '../../crypto.ts';
import { GATEWAY_URL_RULE, isNotifyUrl } from '../gateway-urls.ts';

export type Answer = { status: number; body?: Record<string, unknown> };
const answer = (status: number, body?: Record<string, unknown>): Answer => ({ status, body });
const fromError = (e: V3Error): Answer => ({ status: e.status, body: e.body });

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => Boolean(v) && typeof v === 'object' && !Array.isArray(v);
const isError = (v: unknown): v is V3Error => isObject(v) && 'status' in v && isObject((v as Json).body);

/** A string field with WeChat's length limit (characters) and an optional pattern. */
function text(obj: Json, field: string, path: string, opts: { max: number; min?: number; pattern?: RegExp; rule?: string; optional?: boolean }): string | undefined | V3Error {
  const v = obj[field];
  if (v === undefined && opts.optional) return undefined;
  if (typeof v !== 'string' || [...v].length < (opts.min ?? 1) || [...v].length > opts.max || (opts.pattern && !opts.pattern.test(v))) {
    return paramError('body', path, v === undefined ? '必填 (required)' : (opts.rule ?? `a string of ${opts.min ?? 1}–${opts.max} characters`));
  }
  return v;
}

/**
 * notify_url as WeChat takes it (an absolute URL without query, 不能携带参数), and, since the
 * simulator's one merchant is this gateway, only the gateway's own /notify/wechatpay/… URL: the
 * simulator POSTs there and must not be a way to make the gateway POST anywhere else.
 */
function notifyUrlOf(deps: SandboxDeps, obj: Json, path: string, optional: boolean): string | undefined | V3Error {
  const rule = `an absolute http(s) URL without query parameters (不能携带参数) that ${GATEWAY_URL_RULE.notify('wechatpay')}`;
  const v = text(obj, 'notify_url', path, { max: 256, optional, rule });
  if (v === undefined || isError(v)) return v;
  return isNotifyUrl(deps.publicUrl, v, 'wechatpay') ? v : paramError('body', path, rule);
}

const OUT_TRADE_NO = /^[A-Za-z0-9_\-|*]{6,32}$/;

// --- placing orders --------------------------------------------------------------------------

/** POST /v3/pay/transactions/{native|h5|jsapi|app}. */
export async function placeOrder(deps: SandboxDeps, merchant: SandboxMerchant, tradeType: TradeType, b: Json): Promise<Answer> {
  const terms = payTerms(deps, merchant, tradeType, b);
  if (isError(terms)) return fromError(terms);
  const existing = await findOrder(deps.db, merchant.mchid, terms.outTradeNo);
  if (existing) return reuse(deps, existing, terms.digest);
  const token = randomId(20);
  const order: SandboxOrder = {
    mchid: merchant.mchid, outTradeNo: terms.outTradeNo, token, state: 'NOTPAY', amount: terms.total, amountRefunded: 0,
    data: {
      appid: terms.appid, tradeType, description: terms.description, notifyUrl: terms.notifyUrl, attach: terms.attach,
      timeExpire: terms.timeExpire, terms: terms.digest, prepayId: newPrepayId(token), openid: terms.openid,
      payerClientIp: terms.payerClientIp, createdAt: nowSeconds(),
    },
  };
  if (await insertOrder(deps.db, order)) return placed(deps, order);
  const raced = await findOrder(deps.db, merchant.mchid, terms.outTradeNo);
  return raced ? reuse(deps, raced, terms.digest) : fromError(v3Error(500, 'SYSTEM_ERROR', '系统错误'));
}

interface PayTerms {
  appid: string; outTradeNo: string; description: string; notifyUrl: string; total: number; digest: string;
  attach?: string; timeExpire?: number; openid?: string; payerClientIp?: string;
}

function payTerms(deps: SandboxDeps, merchant: SandboxMerchant, tradeType: TradeType, b: Json): PayTerms | V3Error {
  const appid = text(b, 'appid', 'appid', { max: 32 });
  if (isError(appid)) return appid;
  const mchid = text(b, 'mchid', 'mchid', { max: 32 });
  if (isError(mchid)) return mchid;
  if (mchid !== merchant.mchid) return paramError('body', 'mchid', 'must be the mchid of the Authorization header');
  // APP orders take the Open Platform mobile-app AppID, the others the 公众号 one (app-and-money-out.md §2).
  if (appid === undefined || (appid !== merchant.appid && appid !== merchant.appAppid)) return v3Error(400, 'APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配，请检查后再试 (appid is not bound to this mchid)');
  if (tradeType === 'APP' && appid !== merchant.appAppid) {
    return v3Error(400, 'INVALID_REQUEST', '支付类型与AppID不匹配 (trade type APP needs the Open Platform mobile-app AppID bound to this mchid, not the 公众号 one)');
  }
  if (tradeType !== 'APP' && appid !== merchant.appid) {
    return v3Error(400, 'INVALID_REQUEST', '支付类型与AppID不匹配 (a mobile-app AppID places APP orders only)');
  }
  const description = text(b, 'description', 'description', { max: 127 });
  if (isError(description)) return description;
  const outTradeNo = text(b, 'out_trade_no', 'out_trade_no', { max: 32, pattern: OUT_TRADE_NO, rule: '6–32 characters of A-Z a-z 0-9 _ - | *' });
  if (isError(outTradeNo)) return outTradeNo;
  const attach = text(b, 'attach', 'attach', { max: 128, optional: true });
  if (isError(attach)) return attach;
  const notifyUrl = notifyUrlOf(deps, b, 'notify_url', false);
  if (isError(notifyUrl)) return notifyUrl;
  const expireText = text(b, 'time_expire', 'time_expire', { max: 64, optional: true, rule: 'RFC 3339, e.g. 2026-03-01T10:00:00+08:00' });
  if (isError(expireText)) return expireText;
  let timeExpire: number | undefined;
  if (expireText !== undefined) {
    try {
      timeExpire = parseRfc3339(expireText);
    } catch {
      return paramError('body', 'time_expire', 'RFC 3339, e.g. 2026-03-01T10:00:00+08:00');
    }
    if (timeExpire <= nowSeconds()) return paramError('body', 'time_expire', 'must be in the future');
  }
  if (!isObject(b.amount)) return paramError('body', 'amount', '必填 (required): {total, currency}');
  const total = b.amount.total;
  if (!Number.isSafeInteger(total) || (total as number) < 1 || (total as number) > 100_000_000_00) return paramError('body', 'amount.total', 'an integer of fen, 1 or more');
  if (b.amount.currency !== undefined && b.amount.currency !== 'CNY') return paramError('body', 'amount.currency', 'must be CNY');

  let openid: string | undefined;
  let payerClientIp: string | undefined;
  const scene = b.scene_info;
  if (scene !== undefined && !isObject(scene)) return paramError('body', 'scene_info', 'must be an object');
  if (tradeType === 'MWEB') {
    if (!isObject(scene)) return paramError('body', 'scene_info', '必填 (required) for H5');
    if (typeof scene.payer_client_ip !== 'string' || !net.isIP(scene.payer_client_ip)) return paramError('body', 'scene_info.payer_client_ip', 'the payer\'s IPv4 or IPv6 address');
    payerClientIp = scene.payer_client_ip;
    const h5 = scene.h5_info;
    if (!isObject(h5) || !['Wap', 'iOS', 'Android'].includes(String(h5.type))) return paramError('body', 'scene_info.h5_info.type', 'one of Wap, iOS, Android');
  } else if (isObject(scene) && scene.payer_client_ip !== undefined && (typeof scene.payer_client_ip !== 'string' || !net.isIP(scene.payer_client_ip))) {
    return paramError('body', 'scene_info.payer_client_ip', 'an IPv4 or IPv6 address');
  }
  if (tradeType === 'JSAPI') {
    if (!isObject(b.payer)) return paramError('body', 'payer', '必填 (required) for JSAPI: {openid}');
    const o = text(b.payer, 'openid', 'payer.openid', { max: 128 });
    if (isError(o)) return o;
    // An openid belongs to one appid; the simulator's one payer has one openid per appid.
    if (o !== sandboxOpenid(deps.masterKey, appid)) return v3Error(400, 'OPENID_MISMATCH', 'openid和appid不匹配 (the openid was not issued for this appid; get it from the snsapi_base OAuth)');
    openid = o;
  }
  const digest = crypto.createHash('sha256')
    .update(JSON.stringify([tradeType, appid, description, total, timeExpire ?? null, notifyUrl, attach ?? null, openid ?? null, payerClientIp ?? null]))
    .digest('base64url');
  return { appid, outTradeNo: outTradeNo!, description: description!, notifyUrl: notifyUrl!, total: total as number, digest, attach, timeExpire, openid, payerClientIp };
}

/** A repeated out_trade_no: the same terms get the same answer; anything else is refused. */
function reuse(deps: SandboxDeps, order: SandboxOrder, digest: string): Answer {
  if (order.state === 'SUCCESS' || order.state === 'REFUND') return fromError(v3Error(400, 'ORDERPAID', '该订单已支付 (this order is paid)'));
  if (order.state === 'CLOSED') return fromError(v3Error(400, 'ORDER_CLOSED', '订单已关闭，请重新下单 (this order is closed)'));
  if (order.state === 'PAYERROR') return fromError(v3Error(400, 'INVALID_REQUEST', '订单支付失败，请使用新的商户订单号重新下单 (this order failed)'));
  if (order.data.terms !== digest) return fromError(v3Error(400, 'INVALID_REQUEST', '201 商户订单号重复 (the same out_trade_no was placed with different parameters)'));
  return placed(deps, order);
}

function placed(deps: SandboxDeps, order: SandboxOrder): Answer {
  switch (order.data.tradeType) {
    case 'NATIVE':
      return answer(200, { code_url: codeUrlOf(order.token) });
    case 'MWEB':
      return answer(200, { h5_url: `${deps.publicUrl.replace(/\/$/, '')}/sandbox/wechatpay/h5/${order.token}?prepay_id=${order.data.prepayId}` });
    case 'JSAPI':
    case 'APP':
      return answer(200, { prepay_id: order.data.prepayId });
  }
}

// --- query and close -------------------------------------------------------------------------

/** GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid= */
export async function queryOrder(deps: SandboxDeps, merchant: SandboxMerchant, outTradeNo: string, query: URLSearchParams): Promise<Answer> {
  if (query.get('mchid') !== merchant.mchid) return fromError(paramError('query', 'mchid', '必填 (required): the mchid of the Authorization header'));
  const order = await findOrder(deps.db, merchant.mchid, outTradeNo);
  if (!order) return fromError(v3Error(404, 'ORDER_NOT_EXIST', '订单不存在'));
  return answer(200, transactionOf(order));
}

/** POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close `{mchid}` → 204; closing a closed order is fine. */
export async function closeOrder(deps: SandboxDeps, merchant: SandboxMerchant, outTradeNo: string, b: Json): Promise<Answer> {
  if (b.mchid !== merchant.mchid) return fromError(paramError('body', 'mchid', '必填 (required): the mchid of the Authorization header'));
  for (let tries = 0; tries < 3; tries++) {
    const order = await findOrder(deps.db, merchant.mchid, outTradeNo);
    if (!order) return fromError(v3Error(404, 'ORDER_NOT_EXIST', '订单不存在'));
    if (order.state === 'CLOSED') return answer(204);
    if (order.state === 'SUCCESS' || order.state === 'REFUND') return fromError(v3Error(400, 'ORDERPAID', '订单已支付，不能关闭 (the order is paid)'));
    if (await transitionOrder(deps.db, order, 'CLOSED', { ...order.data, closedAt: nowSeconds() })) return answer(204);
  }
  return fromError(v3Error(500, 'SYSTEM_ERROR', '系统繁忙，请稍后重试'));
}

// --- refunds ---------------------------------------------------------------------------------

/** POST /v3/refund/domestic/refunds: answers PROCESSING; the refund succeeds just after, with REFUND.SUCCESS. */
export async function refundOrder(deps: SandboxDeps, merchant: SandboxMerchant, b: Json): Promise<Answer> {
  if (b.transaction_id !== undefined && b.out_trade_no === undefined) return fromError(paramError('body', 'out_trade_no', 'the sandbox finds orders by out_trade_no'));
  const outTradeNo = text(b, 'out_trade_no', 'out_trade_no', { max: 32, pattern: OUT_TRADE_NO, rule: '6–32 characters of A-Z a-z 0-9 _ - | *' });
  if (isError(outTradeNo)) return fromError(outTradeNo);
  const outRefundNo = text(b, 'out_refund_no', 'out_refund_no', { max: 64, pattern: /^[A-Za-z0-9_\-|*@]+$/, rule: '1–64 characters of A-Z a-z 0-9 _ - | * @' });
  if (isError(outRefundNo)) return fromError(outRefundNo);
  const reason = text(b, 'reason', 'reason', { max: 80, optional: true });
  if (isError(reason)) return fromError(reason);
  const notifyUrl = notifyUrlOf(deps, b, 'notify_url', true);
  if (isError(notifyUrl)) return fromError(notifyUrl);
  if (!isObject(b.amount)) return fromError(paramError('body', 'amount', '必填 (required): {refund, total, currency}'));
  const { refund: amount, total, currency } = b.amount;
  if (!Number.isSafeInteger(amount) || (amount as number) < 1) return fromError(paramError('body', 'amount.refund', 'an integer of fen, 1 or more'));
  if (!Number.isSafeInteger(total) || (total as number) < 1) return fromError(paramError('body', 'amount.total', 'an integer of fen, 1 or more'));
  if (currency !== 'CNY') return fromError(paramError('body', 'amount.currency', '必填 (required): CNY'));

  const order = await findOrder(deps.db, merchant.mchid, outTradeNo!);
  if (!order) return fromError(v3Error(404, 'RESOURCE_NOT_EXISTS', '订单不存在'));
  if (order.data.successTime === undefined) return fromError(v3Error(400, 'INVALID_REQUEST', '订单未支付，不能退款 (the order is not paid)'));
  if (total !== order.amount) return fromError(v3Error(400, 'INVALID_REQUEST', '订单金额与原订单不一致 (amount.total is not the order\'s total)'));

  const refund: SandboxRefund = {
    outRefundNo: outRefundNo!, refundId: newRefundId(), outTradeNo: order.outTradeNo, amount: amount as number, status: 'PROCESSING',
    createdAt: nowSeconds(), reason, notifyUrl, notifyId: newNotifyId(),
  };
  const outcome = await recordRefund(deps.db, order, refund);
  if (outcome.kind === 'exceeds') return fromError(v3Error(400, 'INVALID_REQUEST', '申请退款金额超过订单可退金额 (the refunds would exceed the order\'s total)'));
  if (outcome.kind === 'mismatch') return fromError(v3Error(400, 'INVALID_REQUEST', '退款单号已存在，且退款信息不一致 (out_refund_no was used for another refund)'));
  if (outcome.kind === 'created') setImmediate(() => void settleRefund(deps, merchant, outcome.refund));
  return answer(200, refundOf(outcome.order, outcome.refund));
}

/** The money moves back: SUCCESS, then the REFUND.SUCCESS notify (when the refund named a notify_url). */
async function settleRefund(deps: SandboxDeps, merchant: SandboxMerchant, refund: SandboxRefund): Promise<void> {
  try {
    const done: SandboxRefund = { ...refund, status: 'SUCCESS', successTime: nowSeconds() };
    if (!(await completeRefund(deps.db, merchant.mchid, done))) return;
    const order = await findOrder(deps.db, merchant.mchid, refund.outTradeNo);
    if (order && done.notifyUrl) await sendNotify(merchant, refundNotify(merchant, order, done, done.notifyUrl), 'normal', deps.logger);
  } catch (err) {
    deps.logger.warn('wechatpay sandbox could not settle a refund', { out_refund_no: refund.outRefundNo, err: (err as Error).message });
  }
}

/** GET /v3/refund/domestic/refunds/{out_refund_no} */
export async function queryRefund(deps: SandboxDeps, merchant: SandboxMerchant, outRefundNo: string): Promise<Answer> {
  const refund = await findRefund(deps.db, merchant.mchid, outRefundNo);
  const order = refund && (await findOrder(deps.db, merchant.mchid, refund.outTradeNo));
  if (!refund || !order) return fromError(v3Error(404, 'RESOURCE_NOT_EXISTS', '退款单不存在'));
  return answer(200, refundOf(order, refund));
}
