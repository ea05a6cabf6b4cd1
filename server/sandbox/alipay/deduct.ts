/**
 * alipay.trade.pay through a signed 周期扣款 mandate (protocols/recurring.md §1.4, §1.5): the
 * simulator checks the request as Alipay does (product_code CYCLE_PAY_AUTH, agreement_params of a
 * NORMAL mandate of this app, the single/total caps and total_payments, the deduction window of
 * the period rule), charges the wallet user at once (Alipay's synchronous mode: 10000 means paid)
 * and sends the usual trade_status_sync TRADE_SUCCESS notify to notify_url. The trade is stored
 * like the simulator's other trades, so trade.query, refund and close work on it; a repeat of a
 * paid out_trade_no answers ACQ.TRADE_HAS_SUCCESS and charges nothing. A refused deduction stores
 * no trade (a query finds none), so it may be retried under the same out_trade_no.
 *
 * The window is judged by the simulator's clock for the app (sandbox/clock.ts,
 * setSandboxClock(db, 'alipay', app_id, offsetMs)), read afresh on every request.
 *
 * Scripted outcomes, by the amount's last two digits (fen):
 * - …51 (e.g. 10.51): ACQ.BUYER_BALANCE_NOT_ENOUGH, after every other check; nothing is charged;
 * - …52 (e.g. 10.52): the charge goes through (trade TRADE_SUCCESS, notify sent, the period
 *   counted) but the answer is 20000 (unknown), as when Alipay's answer is lost: the caller must
 *   query (or repeat the same out_trade_no), never charge again under a new number.
 */
import type { SandboxDeps } from '../types.ts';
import { beijingTime, fenToYuan, yuanToFen } from '../../channels/alipay/transform.ts';
import { GATEWAY_URL_RULE, isNotifyUrl } from '../gateway-urls.ts';
import { sandboxNowMs } from '../clock.ts';
import { alipayNumber, businessFailure, loadOrder, type GatewayAnswer } from './gateway.ts';
import { findMandate } from './agreements.ts';
import { deductionTotals, inDeductWindow, nextDeductDate, recordDeduction, beijingDate } from './deduct-schedule.ts';
import { newNotifyId, sendNotify, tradeNotifyParams } from './notify.ts';
import { insertOrder, type SandboxMerchant, type SandboxOrder } from './store.ts';

export const TRADE_PAY_METHOD = 'alipay.trade.pay';
export const CYCLE_PAY_PRODUCT_CODE = 'CYCLE_PAY_AUTH';
/** The amount endings (fen % 100) of the scripted outcomes above. */
export const SCRIPTED_BALANCE_NOT_ENOUGH = 51;
export const SCRIPTED_UNKNOWN_ANSWER = 52;

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

/** Runs alipay.trade.pay for an authenticated request; the simulator takes it only as a mandate deduction. */
export async function runTradePay(deps: SandboxDeps, merchant: SandboxMerchant, biz: Record<string, unknown>, params: Record<string, string>): Promise<GatewayAnswer> {
  const bad = (what: string): GatewayAnswer => businessFailure('ACQ.INVALID_PARAMETER', `参数无效 (${what})`);
  const outTradeNo = text(biz.out_trade_no);
  const subject = text(biz.subject);
  if (!outTradeNo || outTradeNo.length > 64 || !/^[A-Za-z0-9_]+$/.test(outTradeNo)) return bad('out_trade_no: 1–64 letters, digits or _');
  if (!subject || subject.length > 256) return bad('subject: 1–256 characters');
  let amount: number;
  try {
    amount = yuanToFen(text(biz.total_amount) ?? '');
  } catch {
    return bad('total_amount: a yuan amount with at most 2 decimals');
  }
  if (amount < 1 || amount > 10_000_000_000) return bad('total_amount: 0.01–100000000');
  const agreementParams = biz.agreement_params;
  const agreementNo = agreementParams && typeof agreementParams === 'object' ? text((agreementParams as Record<string, unknown>).agreement_no) : undefined;
  if (!agreementNo) {
    // Barcode pay (auth_code + scene) is not simulated.
    return bad('the simulator takes alipay.trade.pay only as a 周期扣款 deduction: agreement_params.agreement_no is required');
  }
  const productCode = text(biz.product_code);
  // The simulator's apps have signed 周期扣款 with Alipay, not 商家扣款.
  if (productCode === 'GENERAL_WITHHOLDING') return businessFailure('ACQ.MERCHANT_AGREEMENT_NOT_EXIST', '商户协议不存在 (this app has signed CYCLE_PAY_AUTH, not GENERAL_WITHHOLDING)');
  if (productCode !== CYCLE_PAY_PRODUCT_CODE) return bad(`product_code: ${CYCLE_PAY_PRODUCT_CODE} with agreement_params`);
  const notifyUrl = params.notify_url || undefined;
  if (notifyUrl !== undefined && !isNotifyUrl(deps.publicUrl, notifyUrl, 'alipay')) return bad(`notify_url ${GATEWAY_URL_RULE.notify('alipay')}`);

  // A repeated out_trade_no is answered from the trade it names, before any rule is judged again.
  const existing = await loadOrder(deps, merchant.appId, { outTradeNo });
  if (existing) return repeated(existing, amount);

  const mandate = await findMandate(deps.db, merchant.appId, { agreementNo });
  if (!mandate || mandate.status === 'UNSIGN') return businessFailure('ACQ.AGREEMENT_NOT_EXIST', '用户协议不存在或已解约');
  if (mandate.status !== 'NORMAL') return businessFailure('ACQ.AGREEMENT_STATUS_NOT_NORMAL', '用户协议状态非NORMAL');
  if (mandate.data.personalProductCode !== 'CYCLE_PAY_AUTH_P') return businessFailure('ACQ.AGREEMENT_ERROR', '协议信息异常 (the agreement is not a CYCLE_PAY_AUTH_P mandate)');
  const d = mandate.data;
  if (amount > d.singleAmount) return businessFailure('ACQ.CYCLE_PAY_SINGLE_FEE_EXCEED', `周期扣款的单笔金额超过签约时限制 (single_amount ${fenToYuan(d.singleAmount)})`);
  const totals = await deductionTotals(deps.db, merchant.appId, agreementNo);
  if (d.totalPayments !== undefined && totals.count >= d.totalPayments) return businessFailure('ACQ.CYCLE_PAY_TOTAL_TIMES_EXCEED', '周期扣款的累计次数超过签约时限制');
  if (d.totalAmount !== undefined && totals.amount + amount > d.totalAmount) return businessFailure('ACQ.CYCLE_PAY_TOTAL_FEE_EXCEED', '周期扣款的累计金额超过签约时限制');
  const nowMs = await sandboxNowMs(deps.db, 'alipay', merchant.appId);
  const due = nextDeductDate(mandate, totals);
  const today = beijingDate(nowMs);
  if (!inDeductWindow(today, due)) {
    return businessFailure('ACQ.CYCLE_PAY_DATE_NOT_MATCH', `扣款日期不在签约时的允许范围之内 (next deduction due ${due}, allowed from 3 days before; today is ${today})`);
  }
  if (amount % 100 === SCRIPTED_BALANCE_NOT_ENOUGH) return businessFailure('ACQ.BUYER_BALANCE_NOT_ENOUGH', '买家余额不足');

  const at = Math.floor(nowMs / 1000);
  const order: SandboxOrder = {
    appId: merchant.appId, outTradeNo, tradeNo: alipayNumber(), status: 'TRADE_SUCCESS', amount, amountRefunded: 0,
    data: {
      method: TRADE_PAY_METHOD, subject, body: text(biz.body), productCode, notifyUrl, gmtCreate: at, scanned: true,
      gmtPayment: at, buyerId: d.userId, buyerLogonId: 'sand***@checkstand.test', notifyId: newNotifyId(),
    },
  };
  // The period and the trade are written together: a lost race on either leaves neither.
  const outcome = await deps.db.transaction(async (trx) => {
    if (!(await recordDeduction(trx, merchant.appId, agreementNo, due, outTradeNo, amount, at))) return 'period_paid' as const;
    if (!(await insertOrder(trx, order))) throw new TradeRaced();
    return 'charged' as const;
  }).catch((err: unknown) => {
    if (err instanceof TradeRaced) return 'trade_raced' as const;
    throw err;
  });
  if (outcome === 'trade_raced') {
    const raced = await loadOrder(deps, merchant.appId, { outTradeNo });
    return raced ? repeated(raced, amount) : businessFailure('ACQ.SYSTEM_ERROR', '系统错误');
  }
  if (outcome === 'period_paid') return businessFailure('ACQ.CYCLE_PAY_DATE_NOT_MATCH', `扣款日期不在签约时的允许范围之内 (the period due ${due} was paid already)`);

  // Alipay notifies after it answered.
  const notify = tradeNotifyParams(merchant, order, order.data.notifyId!);
  setImmediate(() => void sendNotify(notifyUrl, notify, 'normal', deps.logger));
  if (amount % 100 === SCRIPTED_UNKNOWN_ANSWER) return { code: '20000', msg: 'Service Currently Unavailable', sub_code: 'isp.unknow-error', sub_msg: '系统繁忙' };
  const paid = fenToYuan(amount);
  return {
    code: '10000', msg: 'Success',
    trade_no: order.tradeNo, out_trade_no: outTradeNo, buyer_logon_id: order.data.buyerLogonId, buyer_user_id: d.userId,
    total_amount: paid, receipt_amount: paid, buyer_pay_amount: paid, invoice_amount: paid, point_amount: '0.00',
    gmt_payment: beijingTime(at), fund_bill_list: [{ fund_channel: 'ALIPAYACCOUNT', amount: paid }],
  };
}

class TradeRaced extends Error {}

/** A deduction repeated under an out_trade_no the simulator already holds. */
function repeated(order: SandboxOrder, amount: number): GatewayAnswer {
  const paid = order.data.gmtPayment !== undefined;
  if (paid) return businessFailure('ACQ.TRADE_HAS_SUCCESS', '交易已被支付', { out_trade_no: order.outTradeNo, trade_no: order.tradeNo });
  if (order.status === 'TRADE_CLOSED') return businessFailure('ACQ.TRADE_HAS_CLOSE', '交易已经关闭', { out_trade_no: order.outTradeNo, trade_no: order.tradeNo });
  // A waiting trade of another kind (a page-pay or precreate order under this number).
  return businessFailure('ACQ.CONTEXT_INCONSISTENT', `交易信息被篡改 (out_trade_no names another trade${order.amount !== amount ? ' with another total_amount' : ''})`);
}
