/**
 * Alipay 周期扣款 (CYCLE_PAY_AUTH_P) mandates, protocols/recurring.md §1: the signing page
 * (alipay.user.agreement.page.sign, a GET to gateway.do the customer's browser or QR scan
 * carries), query and unsign, and the dut_user_sign / dut_user_unsign notifies. The unsign of
 * a wallet user arrives on the app's gateway URL only, unasked: Checkstand's notify URL for
 * Alipay is that URL.
 */
import { ChannelRequestError, MalformedMessageError } from '../../errors.ts';
import type { ChannelNotification } from '../types.ts';
import { callGateway, sdkFor, withoutEmpty, type AlipayCredentials } from './index.ts';
import { fenToYuan, nowBeijing } from './transform.ts';

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

export interface AlipayDeductRequest {
  orderNo: string;
  agreementNo: string;
  /** fen */
  amount: number;
  subject: string;
  notifyUrl: string;
}

export type AlipayDeductResult =
  | { status: 'succeeded'; channelTradeNo: string; paidAt?: number }
  | { status: 'pending' }
  | { status: 'failed'; code: string; message: string };

/** alipay.trade.pay with agreement_params (recurring.md §1.4): placeholder until the deduction lands. */
export async function deductWithAgreement(_cred: AlipayCredentials, _r: AlipayDeductRequest): Promise<AlipayDeductResult> {
  throw new ChannelRequestError('not_implemented', 'Alipay agreement deductions are not available in this build');
}
