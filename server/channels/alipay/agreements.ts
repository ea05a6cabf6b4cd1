/**
 * Alipay 周期扣款 (CYCLE_PAY_AUTH_P) mandates, protocols/recurring.md §1: the signing page
 * (alipay.user.agreement.page.sign, a GET to gateway.do the customer's browser or QR scan
 * carries), query and unsign, the dut_user_sign / dut_user_unsign notifies, and the deduction
 * through a signed mandate (alipay.trade.pay with agreement_params). The unsign of
 * a wallet user arrives on the app's gateway URL only, unasked: Checkstand's notify URL for
 * Alipay is that URL.
 */
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError } from '../../errors.ts';
import type { ChannelNotification } from '../types.ts';
import { alipay, callGateway, sdkFor, withoutEmpty, type AlipayCredentials } from './index.ts';
import { cleanText, fenToYuan, nowBeijing, parseBeijingTime, paymentStatusOf, type AlipayResponse } from './transform.ts';

export const PERSONAL_PRODUCT_CODE = 'CYCLE_PAY_AUTH_P';
export const PRODUCT_CODE = 'CYCLE_PAY_AUTH';
/** A real scene (DEFAULT|DEFAULT is refused with external_agreement_no). */
export const SIGN_SCENE = 'INDUSTRY|DIGITAL_MEDIA';

export interface AlipaySignRequest {
  externalAgreementNo: string;
  periodType: 'DAY' | 'MONTH';
  period: number;
  /** yyyy-MM-dd, the first deduction date. */
  executeTime: string;
  /** Max per deduction, fen. */
  singleAmount: number;
  /** Optional cap on the cumulative amount deducted, fen. */
  totalAmount?: number;
  /** Optional cap on the number of successful deductions. */
  totalPayments?: number;
  /** ALIPAYAPP opens the wallet's H5 page; QRCODE is a page to render as a QR code. */
  accessChannel: 'ALIPAYAPP' | 'QRCODE';
  notifyUrl: string;
  returnUrl?: string;
  externalLogonId?: string;
}

export function signBizContent(r: AlipaySignRequest): Record<string, unknown> {
  return {
    personal_product_code: PERSONAL_PRODUCT_CODE,
    product_code: PRODUCT_CODE,
    sign_scene: SIGN_SCENE,
    external_agreement_no: r.externalAgreementNo,
    ...(r.externalLogonId ? { external_logon_id: r.externalLogonId } : {}),
    access_params: { channel: r.accessChannel },
    period_rule_params: {
      period_type: r.periodType,
      period: r.period,
      execute_time: r.executeTime,
      single_amount: fenToYuan(r.singleAmount),
      ...(r.totalAmount !== undefined ? { total_amount: fenToYuan(r.totalAmount) } : {}),
      ...(r.totalPayments !== undefined ? { total_payments: r.totalPayments } : {}),
    },
  };
}

/** The signed gateway URL of the signing page (no server call: Alipay stores the TEMP mandate once it is opened). */
export async function agreementSignUrl(cred: AlipayCredentials, r: AlipaySignRequest): Promise<string> {
  return (await sdkFor(cred)).pageExecute('alipay.user.agreement.page.sign', 'GET', {
    bizContent: signBizContent(r),
    ...withoutEmpty({ notify_url: r.notifyUrl, return_url: r.returnUrl }),
    timestamp: nowBeijing(),
  });
}

/** Wraps a sign URL so that a phone browser opens it in the Alipay app (pingpp-js agreement.js). */
export function walletSchemeUrl(signUrl: string): string {
  const query = signUrl.slice(signUrl.indexOf('?') + 1);
  const scheme = `alipays://platformapi/startapp?appId=60000157&appClearTop=false&startMultApp=YES&sign_params=${encodeURIComponent(query)}`;
  return `https://d.alipay.com/i/index.htm?iframeSrc=${encodeURIComponent(scheme)}`;
}

export type AlipayAgreementState =
  | { status: 'active'; agreementNo: string; singleQuota?: string }
  | { status: 'pending' }
  | { status: 'paused'; agreementNo: string }
  | { status: 'terminated' };

/** alipay.user.agreement.query by our number; an unknown (or unsigned) mandate is reported as an error. */
export async function queryAgreement(cred: AlipayCredentials, externalAgreementNo: string): Promise<AlipayAgreementState> {
  const r = await callGateway(cred, 'alipay.user.agreement.query', {
    personal_product_code: PERSONAL_PRODUCT_CODE, sign_scene: SIGN_SCENE, external_agreement_no: externalAgreementNo,
  });
  if (r.code === '10000') {
    const no = String(r.agreement_no ?? '');
    if (r.status === 'NORMAL') return { status: 'active', agreementNo: no, singleQuota: r.single_quota as string | undefined };
    if (r.status === 'STOP') return { status: 'paused', agreementNo: no };
    if (r.status === 'TEMP') return { status: 'pending' };
    return { status: 'terminated' };
  }
  // The exact sub_code of an unsigned mandate is not documented; the simulator answers this one.
  if (r.sub_code === 'USER_AGREEMENT_NOT_EXIST') return { status: 'terminated' };
  throw new ChannelRequestError(r.sub_code ?? r.code, `Alipay alipay.user.agreement.query: ${r.sub_code ?? r.code} ${String(r.sub_msg ?? r.msg ?? '')}`);
}

/** alipay.user.agreement.unsign by Alipay's agreement_no; an already-unsigned one counts as done. */
export async function unsignAgreement(cred: AlipayCredentials, agreementNo: string, notifyUrl: string): Promise<void> {
  const r = await callGateway(cred, 'alipay.user.agreement.unsign', { agreement_no: agreementNo }, { notify_url: notifyUrl });
  if (r.code === '10000' || r.sub_code === 'USER_AGREEMENT_NOT_EXIST') return;
  throw new ChannelRequestError(r.sub_code ?? r.code, `Alipay alipay.user.agreement.unsign: ${r.sub_code ?? r.code} ${String(r.sub_msg ?? r.msg ?? '')}`);
}

/** A verified dut_user_sign / dut_user_unsign notify. */
export function agreementNotificationOf(p: Record<string, string>): ChannelNotification {
  const need = (name: string): string => {
    const v = p[name];
    if (!v) throw new MalformedMessageError(`Alipay agreement notify lacks ${name}`);
    return v;
  };
  const type = need('notify_type');
  if (p.personal_product_code && p.personal_product_code !== PERSONAL_PRODUCT_CODE) {
    throw new MalformedMessageError(`Alipay agreement notify for product ${p.personal_product_code.slice(0, 40)}`);
  }
  const common = { notifyId: need('notify_id'), appId: need('app_id'), channelAgreementNo: need('agreement_no'), externalAgreementNo: p.external_agreement_no || undefined };
  if (type === 'dut_user_sign') {
    if (p.status !== 'NORMAL') return { kind: 'ignored', notifyId: common.notifyId, reason: `dut_user_sign with status ${String(p.status).slice(0, 20)}` };
    return { kind: 'agreement', ...common, status: 'active' };
  }
  if (p.status !== 'UNSIGN') throw new MalformedMessageError('Alipay dut_user_unsign without status UNSIGN');
  return { kind: 'agreement', ...common, status: 'terminated' };
}

// --- deduction -----------------------------------------------------------------------------------

export interface AlipayDeductRequest {
  /** Our out_trade_no: the idempotency key of this charge at Alipay; repeat it, never draw a new one, after an unknown answer. */
  orderNo: string;
  /** Alipay's agreement_no of the signed mandate. */
  agreementNo: string;
  /** fen */
  amount: number;
  subject: string;
  /** Where the trade_status_sync notify of the charge goes (without it Alipay sends none). */
  notifyUrl: string;
}

export type AlipayDeductResult =
  | { status: 'succeeded'; channelTradeNo: string; paidAt?: number }
  | { status: 'pending' }
  | { status: 'failed'; code: string; message: string };

/** 40004 sub-codes that mean the merchant's contract with Alipay, not this charge, is wrong. */
const MERCHANT_SETUP_SUB_CODES = new Set(['ACQ.MERCHANT_AGREEMENT_NOT_EXIST', 'ACQ.MERCHANT_AGREEMENT_INVALID', 'ACQ.ACCESS_FORBIDDEN']);

/**
 * Charges a signed 周期扣款 mandate: alipay.trade.pay with product_code CYCLE_PAY_AUTH and
 * agreement_params, no auth_code (recurring.md §1.4). 10000 is paid (Alipay's synchronous mode);
 * 10003 is in progress and an asynchronous pay mode only accepted: pending, the caller queries
 * with alipay.queryPayment(cred, orderNo). A 40004 is a decline (failed, code = sub_code:
 * ACQ.CYCLE_PAY_DATE_NOT_MATCH outside the window or for a period already paid,
 * ACQ.CYCLE_PAY_SINGLE_FEE_EXCEED, ACQ.CYCLE_PAY_TOTAL_FEE_EXCEED, ACQ.CYCLE_PAY_TOTAL_TIMES_EXCEED,
 * ACQ.BUYER_BALANCE_NOT_ENOUGH, ACQ.AGREEMENT_NOT_EXIST for an unknown or unsigned mandate, …),
 * except ACQ.TRADE_HAS_SUCCESS: this out_trade_no was charged already, which a query confirms and
 * reports as succeeded. 20000, ACQ.SYSTEM_ERROR and no answer throw ChannelUnavailable: the charge
 * may have gone through, so query or repeat the same orderNo.
 */
export async function deductWithAgreement(cred: AlipayCredentials, r: AlipayDeductRequest): Promise<AlipayDeductResult> {
  const biz = {
    out_trade_no: r.orderNo,
    total_amount: fenToYuan(r.amount),
    subject: cleanText(r.subject, 256) || r.orderNo,
    product_code: PRODUCT_CODE,
    agreement_params: { agreement_no: r.agreementNo },
  };
  const res = await callGateway(cred, 'alipay.trade.pay', biz, { notify_url: r.notifyUrl }, { inProcess: true });
  if (res.code === '10000') return paidOrPending(res);
  if (res.code === '10003') return { status: 'pending' };
  const sub = res.sub_code ?? res.code;
  const detail = `Alipay alipay.trade.pay: ${sub} ${String(res.sub_msg ?? res.msg ?? '').slice(0, 300)}`;
  if (sub === 'ACQ.TRADE_HAS_SUCCESS') return alreadyCharged(cred, r);
  if (MERCHANT_SETUP_SUB_CODES.has(sub)) throw new ChannelConfigError(`${detail} (is 周期扣款 signed for this app?)`);
  // Our request was malformed: a fault to fix, not the customer's decline.
  if (sub === 'ACQ.INVALID_PARAMETER') throw new ChannelRequestError(sub, detail);
  return { status: 'failed', code: sub, message: String(res.sub_msg ?? res.msg ?? 'declined by Alipay') };
}

/** trade.pay's 10000: paid in the synchronous mode; accepted only in an asynchronous one, or if a trade_status says otherwise. */
function paidOrPending(res: AlipayResponse): AlipayDeductResult {
  const mode = typeof res.async_payment_mode === 'string' ? res.async_payment_mode : '';
  if (mode && mode !== 'SYNC_DIRECT_PAY') return { status: 'pending' };
  if (typeof res.trade_status === 'string' && paymentStatusOf(res.trade_status) !== 'succeeded') return { status: 'pending' };
  const tradeNo = typeof res.trade_no === 'string' ? res.trade_no : '';
  // A "paid" answer without Alipay's trade number cannot be settled on; the caller queries.
  if (!tradeNo) throw new ChannelUnavailable('Alipay alipay.trade.pay answered 10000 without trade_no');
  let paidAt: number | undefined;
  try {
    paidAt = typeof res.gmt_payment === 'string' ? parseBeijingTime(res.gmt_payment) : undefined;
  } catch {
    paidAt = undefined;
  }
  return { status: 'succeeded', channelTradeNo: tradeNo, ...(paidAt !== undefined ? { paidAt } : {}) };
}

/** ACQ.TRADE_HAS_SUCCESS: the trade under this out_trade_no is paid; the query names it. */
async function alreadyCharged(cred: AlipayCredentials, r: AlipayDeductRequest): Promise<AlipayDeductResult> {
  const q = await alipay.queryPayment(cred, r.orderNo);
  if (q.status !== 'succeeded' || !q.channelTradeNo) {
    throw new ChannelUnavailable(`Alipay alipay.trade.pay answered ACQ.TRADE_HAS_SUCCESS but the query says ${q.status}`);
  }
  // Money moved under our number: a different amount is for a person to look at, never a decline to retry.
  if (q.amount !== undefined && q.amount !== r.amount) {
    throw new ChannelRequestError('ACQ.TRADE_HAS_SUCCESS', `Alipay: out_trade_no ${r.orderNo} was paid with ${q.amount} fen, not ${r.amount}`);
  }
  return { status: 'succeeded', channelTradeNo: q.channelTradeNo, ...(q.paidAt !== undefined ? { paidAt: q.paidAt } : {}) };
}
