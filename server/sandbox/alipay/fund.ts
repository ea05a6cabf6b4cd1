/**
 * The Alipay simulator's fund-out (protocols/app-and-money-out.md §4, §6.2): gateway.do methods
 * alipay.fund.trans.uni.transfer and alipay.fund.trans.common.query, callable in certificate mode
 * only (gateway.ts refuses them without app_cert_sn and alipay_root_cert_sn), and the message
 * alipay.fund.trans.order.changed pushed to the app's 应用网关 once a transfer is final (notify.ts).
 *
 * What uni.transfer checks as Alipay does (AlipayFundTransUniTransferModel): out_biz_no 1–64
 * letters, digits or _; trans_amount yuan with at most 2 decimals, TRANS_ACCOUNT_NO_PWD
 * 0.10–100000000 and STD_RED_PACKET 0.01–100000000; product_code TRANS_ACCOUNT_NO_PWD or
 * STD_RED_PACKET; biz_scene DIRECT_TRANSFER; order_title 1–128 characters (the documented
 * String(128)); payee_info.identity_type ALIPAY_USER_ID (2088 + 12 digits), ALIPAY_LOGON_ID (an
 * email or a mainland mobile number; name then required) or ALIPAY_OPEN_ID; remark ≤ 200;
 * business_params a JSON object in a string, {"sub_biz_scene":"REDPACKET"} for STD_RED_PACKET.
 * A payee to an Alipay account is paid synchronously: the answer is 10000 status SUCCESS.
 * A repeated out_biz_no with the same terms answers the first transfer (same order_id, paid
 * once); other terms get PAYMENT_INFO_INCONSISTENCY.
 *
 * Scripted outcomes (checked after the repeat lookup, so a repeat still answers its transfer):
 * - trans_amount 403.01: 40004 PAYER_BALANCE_NOT_ENOUGH; nothing is created.
 * - trans_amount 403.02: 40004 EXCEED_LIMIT_DM_AMOUNT (daily limit); nothing is created.
 * - trans_amount 500.01: the transfer IS created and paid (and its message sent), but the
 *   answer is 20000 isp.unknow-error; a query finds it, a resubmission answers it.
 * - payee ALIPAY_USER_ID 2088999999999999: 40004 PAYEE_NOT_EXIST; nothing is created.
 * - payee name 不匹配: 40004 PAYEE_USER_INFO_ERROR (name and account do not match); nothing is created.
 * - order_title containing [drop-message]: the transfer's order.changed message is never sent
 *   (also: dropFundMessages() in notify.ts).
 *
 * Sub-codes are Alipay's uni.transfer / common.query error lists (INVALID_PARAMETER,
 * EXCEED_LIMIT_SM_MIN_AMOUNT, PAYMENT_INFO_INCONSISTENCY, PAYER_BALANCE_NOT_ENOUGH,
 * EXCEED_LIMIT_DM_AMOUNT, PAYEE_NOT_EXIST, PAYEE_USER_INFO_ERROR, ORDER_NOT_EXIST) and the gateway's
 * 20000 isp.unknow-error (opendocs common error codes).
 */
import crypto from 'node:crypto';
import type { SandboxDeps } from '../types.ts';
import { beijingTime, fenToYuan, yuanToFen } from '../../channels/alipay/transform.ts';
import { businessFailure, digits, type GatewayAnswer } from './gateway.ts';
import { newNotifyId, sendFundMessage } from './notify.ts';
import type { SandboxMerchant } from './store.ts';
import { findFundTransfer, fundPaidCount, insertFundTransfer, type SandboxFundTransfer } from './fund-store.ts';

export const TRANSFER_METHOD = 'alipay.fund.trans.uni.transfer';
export const FUND_QUERY_METHOD = 'alipay.fund.trans.common.query';

/** The scripted amounts (fen), identity, name and title marker (see the header). */
export const SANDBOX_FUND_BALANCE_NOT_ENOUGH_FEN = 40301;
export const SANDBOX_FUND_DAILY_LIMIT_FEN = 40302;
export const SANDBOX_FUND_UNKNOWN_RESULT_FEN = 50001;
export const SANDBOX_FUND_MISSING_PAYEE = '2088999999999999';
export const SANDBOX_FUND_WRONG_NAME = '不匹配';
export const SANDBOX_FUND_DROP_MESSAGE = '[drop-message]';

/** Per product: the smallest and largest trans_amount in fen. */
const AMOUNT_BOUNDS: Record<string, readonly [number, number]> = {
  TRANS_ACCOUNT_NO_PWD: [10, 10_000_000_000],
  STD_RED_PACKET: [1, 10_000_000_000],
};
const OUT_BIZ_NO = /^[A-Za-z0-9_]{1,64}$/;
const USER_ID = /^2088\d{12}$/;
const LOGON_ID = /^(?:[^\s@]{1,64}@[^\s@]+\.[A-Za-z]{2,}|1\d{10})$/;
const OPEN_ID = /^[A-Za-z0-9_-]{16,128}$/;

type Json = Record<string, unknown>;
const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
const chars = (s: string) => [...s].length;
const nowSeconds = () => Math.floor(Date.now() / 1000);
const success = (fields: Json): GatewayAnswer => ({ code: '10000', msg: 'Success', ...fields });
const invalidParameter = (what: string): GatewayAnswer => businessFailure('INVALID_PARAMETER', `参数有误 (${what})`);

/** Runs a fund method for an authenticated, certificate-mode request. */
export function runFundMethod(deps: SandboxDeps, merchant: SandboxMerchant, method: string, biz: Json): Promise<GatewayAnswer> {
  return method === TRANSFER_METHOD ? transfer(deps, merchant, biz) : queryTransfer(deps, merchant, biz);
}

/** How many times the simulator paid this out_biz_no out: a test asserts exactly once. */
export const sandboxFundPaidCount = (deps: Pick<SandboxDeps, 'db'>, appId: string, outBizNo: string): Promise<number> => fundPaidCount(deps.db, appId, outBizNo);

// --- uni.transfer ------------------------------------------------------------------------------

interface TransferTerms {
  outBizNo: string; amount: number; productCode: string; bizScene: string; orderTitle: string;
  payee: { identity: string; identityType: string; name?: string }; remark?: string; businessParams?: string; digest: string;
}

async function transfer(deps: SandboxDeps, merchant: SandboxMerchant, biz: Json): Promise<GatewayAnswer> {
  const terms = transferTerms(biz);
  if ('code' in terms) return terms;
  const existing = await findFundTransfer(deps.db, merchant.appId, { outBizNo: terms.outBizNo });
  if (existing) return repeat(existing, terms);
  if (terms.amount === SANDBOX_FUND_BALANCE_NOT_ENOUGH_FEN) return businessFailure('PAYER_BALANCE_NOT_ENOUGH', '付款方余额不足，请向付款账户余额充值后再原请求重试');
  if (terms.amount === SANDBOX_FUND_DAILY_LIMIT_FEN) return businessFailure('EXCEED_LIMIT_DM_AMOUNT', '日累计额度超限');
  if (terms.payee.identityType === 'ALIPAY_USER_ID' && terms.payee.identity === SANDBOX_FUND_MISSING_PAYEE) return businessFailure('PAYEE_NOT_EXIST', '收款用户不存在');
  if (terms.payee.name === SANDBOX_FUND_WRONG_NAME) return businessFailure('PAYEE_USER_INFO_ERROR', '支付宝账号和姓名不匹配，请确认姓名是否正确');

  const now = nowSeconds();
  const t: SandboxFundTransfer = {
    appId: merchant.appId, outBizNo: terms.outBizNo, orderId: fundNumber(), payFundOrderId: fundNumber(), status: 'SUCCESS', amount: terms.amount, paidCount: 1,
    data: {
      productCode: terms.productCode, bizScene: terms.bizScene, orderTitle: terms.orderTitle, payee: terms.payee,
      ...(terms.remark !== undefined ? { remark: terms.remark } : {}), ...(terms.businessParams !== undefined ? { businessParams: terms.businessParams } : {}),
      terms: terms.digest, transDate: now, payDate: now, notifyId: newNotifyId(),
    },
  };
  if (!(await insertFundTransfer(deps.db, t))) {
    // A concurrent identical request won the insert: it paid; this one answers its transfer.
    const raced = await findFundTransfer(deps.db, merchant.appId, { outBizNo: terms.outBizNo });
    return raced ? repeat(raced, terms) : { code: '20000', msg: 'Service Currently Unavailable', sub_code: 'isp.unknow-error', sub_msg: '系统繁忙' };
  }
  // The message goes out after the answer, as Alipay's does (a SUCCESS answer is final too).
  const dropScripted = terms.orderTitle.includes(SANDBOX_FUND_DROP_MESSAGE);
  setImmediate(() => void sendFundMessage(merchant, t, deps.logger, dropScripted));
  // Scripted: paid, but the answer does not say so; the caller must query (or resubmit).
  if (terms.amount === SANDBOX_FUND_UNKNOWN_RESULT_FEN) return { code: '20000', msg: 'Service Currently Unavailable', sub_code: 'isp.unknow-error', sub_msg: '系统繁忙' };
  return success(transferAnswerOf(t));
}

/** A repeated out_biz_no: the same terms get the first transfer's answer; other terms are refused. */
function repeat(t: SandboxFundTransfer, terms: TransferTerms): GatewayAnswer {
  if (t.data.terms !== terms.digest) return businessFailure('PAYMENT_INFO_INCONSISTENCY', '两次请求商户单号一样，但是参数不一致 (use the original parameters to retry, or a new out_biz_no)');
  return success(transferAnswerOf(t));
}

function transferTerms(b: Json): TransferTerms | GatewayAnswer {
  const outBizNo = text(b.out_biz_no);
  if (!outBizNo || !OUT_BIZ_NO.test(outBizNo)) return invalidParameter('out_biz_no: 1–64 letters, digits or _');
  const productCode = text(b.product_code);
  const bounds = productCode ? AMOUNT_BOUNDS[productCode] : undefined;
  if (!productCode || !bounds) return invalidParameter('product_code: TRANS_ACCOUNT_NO_PWD or STD_RED_PACKET');
  const bizScene = text(b.biz_scene);
  if (bizScene !== 'DIRECT_TRANSFER') return invalidParameter('biz_scene: DIRECT_TRANSFER');
  let amount: number;
  try {
    amount = yuanToFen(text(b.trans_amount) ?? '');
  } catch {
    return invalidParameter('trans_amount: yuan with at most 2 decimals');
  }
  if (amount < bounds[0]) return businessFailure('EXCEED_LIMIT_SM_MIN_AMOUNT', `请求金额低于单笔最小转账金额 (${productCode}: at least ${fenToYuan(bounds[0])})`);
  if (amount > bounds[1]) return invalidParameter(`trans_amount: at most ${fenToYuan(bounds[1])}`);
  const orderTitle = text(b.order_title);
  if (!orderTitle || chars(orderTitle) > 128) return invalidParameter('order_title: 1–128 characters');
  const info = b.payee_info;
  if (!info || typeof info !== 'object' || Array.isArray(info)) return invalidParameter('payee_info is required');
  const p = info as Json;
  const identity = text(p.identity);
  const identityType = text(p.identity_type);
  const name = text(p.name);
  if (!identity) return invalidParameter('payee_info.identity is required');
  if (name !== undefined && chars(name) > 128) return invalidParameter('payee_info.name: at most 128 characters');
  switch (identityType) {
    case 'ALIPAY_USER_ID':
      if (!USER_ID.test(identity)) return invalidParameter('payee_info.identity: an ALIPAY_USER_ID is 2088 and 12 digits');
      break;
    case 'ALIPAY_LOGON_ID':
      if (!LOGON_ID.test(identity)) return invalidParameter('payee_info.identity: an ALIPAY_LOGON_ID is an email or a mobile number');
      if (!name) return invalidParameter('payee_info.name is required when identity_type is ALIPAY_LOGON_ID');
      break;
    case 'ALIPAY_OPEN_ID':
      if (!OPEN_ID.test(identity)) return invalidParameter('payee_info.identity: not an ALIPAY_OPEN_ID');
      break;
    default:
      return invalidParameter('payee_info.identity_type: ALIPAY_USER_ID, ALIPAY_LOGON_ID or ALIPAY_OPEN_ID');
  }
  const remark = text(b.remark);
  if (remark !== undefined && chars(remark) > 200) return invalidParameter('remark: at most 200 characters');
  const businessParams = text(b.business_params);
  const bp = businessParams === undefined ? undefined : jsonObject(businessParams);
  if (businessParams !== undefined && (!bp || businessParams.length > 2048)) return invalidParameter('business_params: a JSON object as a string');
  if (productCode === 'STD_RED_PACKET' && bp?.sub_biz_scene !== 'REDPACKET') return invalidParameter('business_params: {"sub_biz_scene":"REDPACKET"} for STD_RED_PACKET');
  const payee = { identity, identityType, ...(name !== undefined ? { name } : {}) };
  const digest = crypto.createHash('sha256')
    .update(JSON.stringify([amount, productCode, bizScene, orderTitle, identity, identityType, name ?? null, remark ?? null, businessParams ?? null]))
    .digest('base64url');
  return { outBizNo, amount, productCode, bizScene, orderTitle, payee, remark, businessParams, digest };
}

function jsonObject(s: string): Json | undefined {
  try {
    const v: unknown = JSON.parse(s);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

// --- common.query ------------------------------------------------------------------------------

/** One of pay_fund_order_id, order_id, out_biz_no, in that precedence; out_biz_no needs product_code and biz_scene. */
async function queryTransfer(deps: SandboxDeps, merchant: SandboxMerchant, b: Json): Promise<GatewayAnswer> {
  const payFundOrderId = text(b.pay_fund_order_id);
  const orderId = text(b.order_id);
  const outBizNo = text(b.out_biz_no);
  let t: SandboxFundTransfer | undefined;
  if (payFundOrderId) t = await findFundTransfer(deps.db, merchant.appId, { payFundOrderId });
  else if (orderId) t = await findFundTransfer(deps.db, merchant.appId, { orderId });
  else if (outBizNo) {
    const productCode = text(b.product_code);
    const bizScene = text(b.biz_scene);
    if (!productCode || !bizScene) return invalidParameter('product_code and biz_scene are required with out_biz_no');
    t = await findFundTransfer(deps.db, merchant.appId, { outBizNo });
    // Alipay looks the order up under the product and scene given: another pair finds nothing.
    if (t && (t.data.productCode !== productCode || t.data.bizScene !== bizScene)) t = undefined;
  } else {
    return invalidParameter('one of pay_fund_order_id, order_id or out_biz_no is required');
  }
  if (!t) return businessFailure('ORDER_NOT_EXIST', '转账订单不存在');
  return success({
    order_id: t.orderId, pay_fund_order_id: t.payFundOrderId, out_biz_no: t.outBizNo, trans_amount: fenToYuan(t.amount), status: t.status,
    ...(t.data.payDate !== undefined ? { pay_date: beijingTime(t.data.payDate) } : {}),
    ...(t.status === 'FAIL' ? { error_code: t.data.errorCode, fail_reason: t.data.failReason } : {}),
    order_fee: '0.00',
  });
}

// --- wire shapes -------------------------------------------------------------------------------

function transferAnswerOf(t: SandboxFundTransfer): Json {
  return { out_biz_no: t.outBizNo, order_id: t.orderId, pay_fund_order_id: t.payFundOrderId, status: t.status, trans_date: beijingTime(t.data.transDate) };
}

/** order_id / pay_fund_order_id: 32 digits, the Beijing date first (as 20191115110070000006040050105202). */
const fundNumber = (): string => beijingTime(nowSeconds()).slice(0, 10).replace(/-/g, '') + digits(24);
