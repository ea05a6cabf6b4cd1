/**
 * The simulated gateway.do: checks a request the way Alipay's gateway does (common parameters,
 * app, RSA2 signature), then runs the trade methods against the simulator's store.
 * Error codes: opendocs.alipay.com/common/02km9f and each method's error list.
 */
import crypto from 'node:crypto';
import type { SandboxDeps } from '../types.ts';
import { requestSignContent, verifyRequest } from '../../channels/alipay/sign.ts';
import { beijingTime, fenToYuan, parseBeijingTime, yuanToFen } from '../../channels/alipay/transform.ts';
import { findMerchant, findOrder, findRefund, insertOrder, recordRefund, transitionOrder, type SandboxMerchant, type SandboxOrder } from './store.ts';
import { newNotifyId, sendNotify, tradeNotifyParams } from './notify.ts';
import { GATEWAY_URL_RULE, isCashierUrl, isNotifyUrl } from '../gateway-urls.ts';
import { hbFqPayInfo, readInstallments } from './installments.ts';

export type GatewayAnswer = { code: string; msg: string; sub_code?: string; sub_msg?: string; [field: string]: unknown };

export const PAGE_METHODS = new Set(['alipay.trade.page.pay', 'alipay.trade.wap.pay', 'alipay.user.agreement.page.sign']);
/** Fund-out (fund.ts): callable in certificate mode only. */
export const FUND_METHODS: ReadonlySet<string> = new Set(['alipay.fund.trans.uni.transfer', 'alipay.fund.trans.common.query']);
export const API_METHODS = new Set(['alipay.trade.precreate', 'alipay.trade.query', 'alipay.trade.close', 'alipay.trade.refund', 'alipay.trade.fastpay.refund.query', 'alipay.user.agreement.query', 'alipay.user.agreement.unsign', 'alipay.trade.pay', ...FUND_METHODS, 'alipay.data.dataservice.bill.downloadurl.query']);
const GATEWAY_METHODS: ReadonlySet<string> = new Set([...PAGE_METHODS, ...API_METHODS]);
/** In-app pay: the Alipay app posts the order string itself; gateway.do does not take it (see wallet.ts). */
export const APP_PAY_METHOD = 'alipay.trade.app.pay';

const missing = (sub: string, what: string): GatewayAnswer => ({ code: '40001', msg: 'Missing Required Arguments', sub_code: sub, sub_msg: what });
const invalid = (sub: string, what: string): GatewayAnswer => ({ code: '40002', msg: 'Invalid Arguments', sub_code: sub, sub_msg: what });
export const businessFailure = (sub: string, what: string, extra: Record<string, unknown> = {}): GatewayAnswer =>
  ({ code: '40004', msg: 'Business Failed', sub_code: sub, sub_msg: what, ...extra });
const success = (fields: Record<string, unknown>): GatewayAnswer => ({ code: '10000', msg: 'Success', ...fields });

/**
 * alipayCertSn: the request came in certificate mode (it carried app_cert_sn / alipay_root_cert_sn)
 * for an app that has certificates, so its answer names the Alipay certificate that signed it.
 */
export type Authenticated =
  | { ok: true; merchant: SandboxMerchant; method: string; biz: Record<string, unknown>; alipayCertSn?: string }
  | { ok: false; error: GatewayAnswer; merchant?: SandboxMerchant; method?: string; alipayCertSn?: string };

/**
 * Checks common parameters and the signature, in the order Alipay's gateway reports them; `methods`
 * are the ones this entry point takes (gateway.do's, or in-app pay's at the wallet).
 */
export async function authenticate(deps: SandboxDeps, params: Record<string, string>, methods: ReadonlySet<string> = GATEWAY_METHODS): Promise<Authenticated> {
  const method = params.method || undefined;
  for (const [name, sub] of [['app_id', 'app-id'], ['method', 'method'], ['sign', 'signature'], ['sign_type', 'signature-type'], ['timestamp', 'timestamp'], ['version', 'version']] as const) {
    if (!params[name]) return { ok: false, method, error: missing(`isv.missing-${sub}`, `缺少${name}参数 (missing ${name})`) };
  }
  const merchant = /^\d{16}$/.test(params.app_id!) ? await findMerchant(deps.db, deps.masterKey, params.app_id!) : undefined;
  if (!merchant) return { ok: false, method, error: invalid('isv.invalid-app-id', '无效的AppID参数 (unknown app_id)') };
  const certMode = Boolean(merchant.certSns && (params.app_cert_sn || params.alipay_root_cert_sn));
  const alipayCertSn = certMode ? merchant.certSns!.alipayCertSn : undefined;
  const fail = (error: GatewayAnswer): Authenticated => ({ ok: false, merchant, method, error, ...(alipayCertSn ? { alipayCertSn } : {}) });
  if (!methods.has(method!)) return fail(invalid('isv.invalid-method', '不存在的方法名 (unknown method)'));
  if (params.sign_type !== 'RSA2') return fail(invalid('isv.invalid-signature-type', '无效的签名类型 (sign_type must be RSA2)'));
  if (params.charset && params.charset.toLowerCase() !== 'utf-8') return fail(invalid('isv.invalid-charset', '字符集错误 (the sandbox speaks utf-8)'));
  if (params.format && params.format.toUpperCase() !== 'JSON') return fail(invalid('isv.invalid-format', '参数格式错误 (format must be JSON)'));
  if (params.version !== '1.0') return fail(invalid('isv.invalid-version', '版本号错误 (version must be 1.0)'));
  try {
    parseBeijingTime(params.timestamp!);
  } catch {
    return fail(invalid('isv.invalid-timestamp', '非法的时间戳参数 (timestamp must be yyyy-MM-dd HH:mm:ss)'));
  }
  // Before the signature: in certificate mode Alipay finds the key to verify with by app_cert_sn.
  const certError = certSnError(merchant, method!, params);
  if (certError) return fail(certError);
  // Empties are dropped before verifying: Alipay's gateway ignores them (the Node SDK signs them).
  if (!verifyRequest(params, merchant.appPublicKey)) {
    return fail(invalid('isv.invalid-signature', `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${requestSignContent(params)}`));
  }
  let biz: unknown;
  try {
    biz = JSON.parse(params.biz_content ?? '{}');
  } catch {
    return fail(businessFailure('ACQ.INVALID_PARAMETER', '参数无效 (biz_content is not JSON)'));
  }
  if (!biz || typeof biz !== 'object' || Array.isArray(biz)) return fail(businessFailure('ACQ.INVALID_PARAMETER', '参数无效 (biz_content must be a JSON object)'));
  return { ok: true, merchant, method: method!, biz: biz as Record<string, unknown>, ...(alipayCertSn ? { alipayCertSn } : {}) };
}

/**
 * Certificate mode's two signed common params. Sub-codes are the gateway's own (Alipay's
 * CommonErrorType list in alipay-sdk-java-all v3 docs, and Alipay's FAQ on developer.aliyun.com/ask/285112,
 * 285113, 285114): isv.missing-app-cert-sn (a fund method signed in public-key mode, or only one SN
 * sent), isv.missing-alipay-root-cert-sn, isv.app-cert-not-exist (an app_cert_sn that is not the
 * app's, or certificates for an app in public-key mode) and isv.invalid-alipay-root-cert-sn.
 * All are 40002 Invalid Arguments, as Alipay answers a fund call without them.
 */
function certSnError(merchant: SandboxMerchant, method: string, params: Record<string, string>): GatewayAnswer | undefined {
  const appSn = params.app_cert_sn || undefined;
  const rootSn = params.alipay_root_cert_sn || undefined;
  if (!appSn && !rootSn) {
    return FUND_METHODS.has(method) ? invalid('isv.missing-app-cert-sn', `缺少应用公钥证书序列号 (${method} needs certificate mode: sign with app_cert_sn and alipay_root_cert_sn)`) : undefined;
  }
  const sns = merchant.certSns;
  if (!sns) return invalid('isv.app-cert-not-exist', '应用公钥证书不存在 (this app is in public-key mode; it has no certificates)');
  if (!appSn) return invalid('isv.missing-app-cert-sn', '缺少应用公钥证书序列号 (app_cert_sn)');
  if (!rootSn) return invalid('isv.missing-alipay-root-cert-sn', '缺少支付宝根证书序列号 (alipay_root_cert_sn)');
  if (appSn !== sns.appCertSn) return invalid('isv.app-cert-not-exist', `应用公钥证书不存在 (app_cert_sn ${appSn.slice(0, 64)} is not this app's certificate)`);
  if (rootSn !== sns.alipayRootCertSn) return invalid('isv.invalid-alipay-root-cert-sn', `无效的支付宝根证书序列号 (alipay_root_cert_sn ${rootSn.slice(0, 140)})`);
  return undefined;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
const now = () => Math.floor(Date.now() / 1000);

/** n random decimal digits (ids: app ids, 2088… partner ids, trade numbers). */
export function digits(n: number): string {
  let out = '';
  while (out.length < n) out += String(crypto.randomInt(0, 10));
  return out;
}

/** A 28-digit Alipay-style number: Beijing date, then 20 random digits. */
export function alipayNumber(): string {
  return beijingTime(now()).slice(0, 10).replace(/-/g, '') + digits(20);
}

/** Reads a trade, closing it first if its time_expire has passed (Alipay closes unpaid trades on timeout). */
export async function loadOrder(deps: SandboxDeps, appId: string, by: { outTradeNo?: string; tradeNo?: string }): Promise<SandboxOrder | undefined> {
  const order = await findOrder(deps.db, appId, by);
  if (order?.status === 'WAIT_BUYER_PAY' && order.data.expiresAt !== undefined && order.data.expiresAt <= now()) {
    const data = { ...order.data, gmtClose: order.data.expiresAt };
    await transitionOrder(deps.db, order, 'TRADE_CLOSED', data);
    return findOrder(deps.db, appId, by);
  }
  return order;
}

type Opened = { ok: true; order: SandboxOrder } | { ok: false; error: GatewayAnswer };

/** The product_code each pay method requires (precreate takes any, or none). */
const EXPECTED_PRODUCT_CODE: Record<string, string | undefined> = {
  'alipay.trade.page.pay': 'FAST_INSTANT_TRADE_PAY',
  'alipay.trade.wap.pay': 'QUICK_WAP_WAY',
  [APP_PAY_METHOD]: 'QUICK_MSECURITY_PAY',
};

/**
 * Creates the trade of a pay request (page pay or precreate), or returns the existing one when
 * the same out_trade_no comes again with the same terms.
 */
export async function openOrder(deps: SandboxDeps, merchant: SandboxMerchant, method: string, biz: Record<string, unknown>, params: Record<string, string>): Promise<Opened> {
  const outTradeNo = text(biz.out_trade_no);
  const subject = text(biz.subject);
  const amountText = text(biz.total_amount);
  const bad = (what: string): Opened => ({ ok: false, error: businessFailure('ACQ.INVALID_PARAMETER', `参数无效 (${what})`) });
  if (!outTradeNo || outTradeNo.length > 64 || !/^[A-Za-z0-9_]+$/.test(outTradeNo)) return bad('out_trade_no: 1–64 letters, digits or _');
  if (!subject || subject.length > 256) return bad('subject: 1–256 characters');
  let amount: number;
  try {
    amount = yuanToFen(amountText ?? '');
  } catch {
    return bad('total_amount: a yuan amount with at most 2 decimals');
  }
  if (amount < 1 || amount > 10_000_000_000) return bad('total_amount: 0.01–100000000');
  const expected = EXPECTED_PRODUCT_CODE[method];
  const productCode = text(biz.product_code);
  if (expected && productCode !== expected) return bad(`product_code: ${expected} for ${method}`);
  let expiresAt: number | undefined;
  try {
    expiresAt = expiryOf(text(biz.time_expire), text(biz.timeout_express));
  } catch {
    return bad('time_expire: yyyy-MM-dd HH:mm:ss, or timeout_express like 90m');
  }
  if (expiresAt !== undefined && expiresAt <= now()) return bad('time_expire is already past');
  // Only the gateway's own URLs: the simulator's one merchant is this gateway (see gateway-urls.ts).
  const notifyUrl = params.notify_url || undefined;
  const returnUrl = params.return_url || undefined;
  const quitUrl = text(biz.quit_url);
  if (notifyUrl !== undefined && !isNotifyUrl(deps.publicUrl, notifyUrl, 'alipay')) return bad(`notify_url ${GATEWAY_URL_RULE.notify('alipay')}`);
  if (returnUrl !== undefined && !isCashierUrl(deps.publicUrl, returnUrl, 'back')) return bad(`return_url ${GATEWAY_URL_RULE.back}`);
  if (quitUrl !== undefined && !isCashierUrl(deps.publicUrl, quitUrl, 'back')) return bad(`quit_url ${GATEWAY_URL_RULE.back}`);
  const installments = readInstallments(biz, amount);
  if (!installments.ok) return bad(installments.what);

  // A repeated out_trade_no keeps the trade's first installments (recurring.md §3.1: new periods need a new number).
  const existing = await loadOrder(deps, merchant.appId, { outTradeNo });
  if (existing) return reuse(existing, amount);
  const order: SandboxOrder = {
    appId: merchant.appId, outTradeNo, tradeNo: alipayNumber(), status: 'WAIT_BUYER_PAY', amount, amountRefunded: 0,
    data: {
      method, subject, body: text(biz.body), productCode, notifyUrl, returnUrl, quitUrl, expiresAt, gmtCreate: now(), scanned: method !== 'alipay.trade.precreate',
      ...(installments.installments ? { installments: installments.installments } : {}),
    },
  };
  if (await insertOrder(deps.db, order)) return { ok: true, order };
  const raced = await loadOrder(deps, merchant.appId, { outTradeNo });
  return raced ? reuse(raced, amount) : { ok: false, error: businessFailure('ACQ.SYSTEM_ERROR', '系统错误') };
}

function reuse(order: SandboxOrder, amount: number): Opened {
  if (order.status === 'TRADE_SUCCESS' || order.status === 'TRADE_FINISHED') return { ok: false, error: businessFailure('ACQ.TRADE_HAS_SUCCESS', '交易已被支付') };
  if (order.status === 'TRADE_CLOSED') return { ok: false, error: businessFailure('ACQ.TRADE_HAS_CLOSE', '交易已经关闭') };
  if (order.amount !== amount) return { ok: false, error: businessFailure('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改 (same out_trade_no, different total_amount)') };
  return { ok: true, order };
}

function expiryOf(timeExpire: string | undefined, timeoutExpress: string | undefined): number | undefined {
  if (timeExpire) return parseBeijingTime(timeExpire);
  if (!timeoutExpress) return undefined;
  const m = /^(\d{1,5})([mhd])$/.exec(timeoutExpress);
  if (!m) throw new RangeError('bad timeout_express');
  return now() + Number(m[1]) * { m: 60, h: 3600, d: 86400 }[m[2] as 'm' | 'h' | 'd'];
}

/** Runs one API method for an authenticated request and returns Alipay's answer. */
export async function runApiMethod(deps: SandboxDeps, merchant: SandboxMerchant, method: string, biz: Record<string, unknown>, params: Record<string, string>): Promise<GatewayAnswer> {
  if (method === 'alipay.trade.precreate') {
    const opened = await openOrder(deps, merchant, method, biz, params);
    if (!opened.ok) return opened.error;
    return success({ out_trade_no: opened.order.outTradeNo, qr_code: scanUrl(deps, merchant.appId, opened.order.outTradeNo) });
  }
  const by = { outTradeNo: text(biz.out_trade_no), tradeNo: text(biz.trade_no) };
  if (!by.outTradeNo && !by.tradeNo) return businessFailure('ACQ.INVALID_PARAMETER', '参数无效 (out_trade_no or trade_no is required)');
  const order = await loadOrder(deps, merchant.appId, by);
  // A precreated trade is created at Alipay only when the payer scans the code.
  if (!order || !order.data.scanned) {
    // Closing an unscanned code answers "no such trade" like Alipay, and also voids the code so a
    // late scan cannot pay a trade the gateway now believes closed (the simulator errs on safety).
    if (order && method === 'alipay.trade.close') await transitionOrder(deps.db, order, 'TRADE_CLOSED', { ...order.data, gmtClose: now() });
    return businessFailure('ACQ.TRADE_NOT_EXIST', '交易不存在', { out_trade_no: by.outTradeNo });
  }
  switch (method) {
    case 'alipay.trade.query':
      return success(queryFields(order));
    case 'alipay.trade.close':
      return closeTrade(deps, merchant, order);
    case 'alipay.trade.refund':
      return refundTrade(deps, merchant, order, biz);
    default:
      return queryRefund(deps, order, biz);
  }
}

function queryFields(order: SandboxOrder): Record<string, unknown> {
  const d = order.data;
  const paid = d.gmtPayment !== undefined;
  return {
    trade_no: order.tradeNo, out_trade_no: order.outTradeNo, trade_status: order.status, total_amount: fenToYuan(order.amount),
    ...(d.buyerId ? { buyer_user_id: d.buyerId, buyer_logon_id: d.buyerLogonId } : {}),
    ...(paid ? { send_pay_date: beijingTime(d.gmtPayment!), receipt_amount: fenToYuan(order.amount), buyer_pay_amount: fenToYuan(order.amount), point_amount: '0.00', invoice_amount: fenToYuan(order.amount) } : {}),
    ...(paid && d.installments ? { hb_fq_pay_info: hbFqPayInfo(d.installments, order.amount) } : {}),
  };
}

async function closeTrade(deps: SandboxDeps, merchant: SandboxMerchant, order: SandboxOrder): Promise<GatewayAnswer> {
  if (order.status !== 'WAIT_BUYER_PAY') return businessFailure('ACQ.TRADE_STATUS_ERROR', '交易状态不合法', { out_trade_no: order.outTradeNo, trade_no: order.tradeNo });
  const data = { ...order.data, gmtClose: now(), notifyId: newNotifyId() };
  if (!(await transitionOrder(deps.db, order, 'TRADE_CLOSED', data))) return businessFailure('ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
  // Page-pay trades notify TRADE_CLOSED too; it goes out after the answer, as Alipay's does.
  const closed = { ...order, status: 'TRADE_CLOSED' as const, data };
  setImmediate(() => void sendNotify(data.notifyUrl, tradeNotifyParams(merchant, closed, data.notifyId), 'normal', deps.logger));
  return success({ trade_no: order.tradeNo, out_trade_no: order.outTradeNo });
}

async function refundTrade(deps: SandboxDeps, merchant: SandboxMerchant, order: SandboxOrder, biz: Record<string, unknown>): Promise<GatewayAnswer> {
  const base = { out_trade_no: order.outTradeNo, trade_no: order.tradeNo };
  if (order.data.gmtPayment === undefined) return businessFailure('ACQ.TRADE_STATUS_ERROR', '交易状态不合法 (the trade is not paid)', base);
  let amount: number;
  try {
    amount = yuanToFen(text(biz.refund_amount) ?? '');
  } catch {
    return businessFailure('ACQ.INVALID_PARAMETER', '参数无效 (refund_amount)', base);
  }
  if (amount < 1) return businessFailure('ACQ.INVALID_PARAMETER', '参数无效 (refund_amount must be at least 0.01)', base);
  // Without out_request_no Alipay treats the call as one full refund keyed by the trade.
  const outRequestNo = text(biz.out_request_no) ?? order.outTradeNo;
  if (outRequestNo.length > 64) return businessFailure('ACQ.INVALID_PARAMETER', '参数无效 (out_request_no ≤ 64)', base);
  if (!text(biz.out_request_no) && amount !== order.amount) return businessFailure('ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '撤销或退款金额与订单金额不一致', { ...base, refund_fee: '0.00' });

  const outcome = await recordRefund(deps.db, order, {
    outRequestNo, refundNo: alipayNumber(), amount, gmtRefund: now(), reason: text(biz.refund_reason),
  });
  if (outcome.kind === 'exceeds') return businessFailure('ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限', { ...base, refund_fee: fenToYuan(outcome.order.amountRefunded) });
  if (outcome.kind === 'mismatch') return businessFailure('ACQ.INVALID_PARAMETER', '参数无效 (out_request_no was used with another refund_amount)', base);
  const answer = success({
    ...base,
    buyer_logon_id: order.data.buyerLogonId,
    buyer_user_id: order.data.buyerId,
    fund_change: outcome.kind === 'refunded' ? 'Y' : 'N',
    refund_fee: fenToYuan(outcome.order.amountRefunded),
    gmt_refund_pay: beijingTime(outcome.refund.gmtRefund),
    send_back_fee: fenToYuan(outcome.refund.amount),
  });
  if (outcome.kind === 'refunded') {
    const params = tradeNotifyParams(merchant, outcome.order, newNotifyId(), outcome.refund);
    setImmediate(() => void sendNotify(order.data.notifyUrl, params, 'normal', deps.logger));
  }
  return answer;
}

async function queryRefund(deps: SandboxDeps, order: SandboxOrder, biz: Record<string, unknown>): Promise<GatewayAnswer> {
  const outRequestNo = text(biz.out_request_no) ?? order.outTradeNo;
  const refund = await findRefund(deps.db, order, outRequestNo);
  const base = { out_trade_no: order.outTradeNo, trade_no: order.tradeNo, out_request_no: outRequestNo };
  // Alipay: nothing found means "not refunded"; the answer is still 10000, without refund fields.
  if (!refund) return success(base);
  return success({
    ...base, total_amount: fenToYuan(order.amount), refund_amount: fenToYuan(refund.amount),
    refund_status: 'REFUND_SUCCESS', gmt_refund_pay: beijingTime(refund.gmtRefund),
    ...(refund.reason ? { refund_reason: refund.reason } : {}),
  });
}

/** The capability that lets a payer (or act()) drive one trade: HMAC under the master key. */
export function payerToken(masterKey: Buffer, appId: string, outTradeNo: string): string {
  return crypto.createHmac('sha256', masterKey).update(`alipay-sandbox-payer\n${appId}\n${outTradeNo}`).digest('base64url').slice(0, 32);
}

/** What precreate returns as qr_code: the simulator's "scan" page (the payer page) for the trade. */
export function scanUrl(deps: SandboxDeps, appId: string, outTradeNo: string): string {
  const q = new URLSearchParams({ app_id: appId, out_trade_no: outTradeNo, t: payerToken(deps.masterKey, appId, outTradeNo) });
  return `${deps.publicUrl.replace(/\/$/, '')}/sandbox/alipay/scan?${q}`;
}

type Settled = { ok: true; changed: boolean; order: SandboxOrder } | { ok: false; code: string; message: string };

/** Pays or closes a waiting trade; asking again for the state it is already in changes nothing. */
export async function settle(deps: SandboxDeps, merchant: SandboxMerchant, order: SandboxOrder, to: 'TRADE_SUCCESS' | 'TRADE_CLOSED'): Promise<Settled> {
  if (order.status !== 'WAIT_BUYER_PAY') {
    // A fully refunded trade is TRADE_CLOSED yet was paid: gmt_payment tells.
    const paid = order.data.gmtPayment !== undefined;
    if ((to === 'TRADE_SUCCESS') === paid) return { ok: true, changed: false, order };
    return paid
      ? { ok: false, code: 'ACQ.TRADE_HAS_SUCCESS', message: '交易已被支付 · The trade is already paid' }
      : { ok: false, code: 'ACQ.TRADE_HAS_CLOSE', message: '交易已经关闭 · The trade is closed' };
  }
  const at = now();
  const data = to === 'TRADE_SUCCESS'
    ? { ...order.data, scanned: true, gmtPayment: at, buyerId: `2088${digits(12)}`, buyerLogonId: 'sandbox***@checkstand.test', notifyId: newNotifyId() }
    : { ...order.data, gmtClose: at, notifyId: newNotifyId() };
  if (await transitionOrder(deps.db, order, to, data)) return { ok: true, changed: true, order: { ...order, status: to, data } };
  const current = await loadOrder(deps, merchant.appId, { outTradeNo: order.outTradeNo });
  return current ? settle(deps, merchant, current, to) : { ok: false, code: 'ACQ.TRADE_NOT_EXIST', message: '交易不存在' };
}
