/**
 * The simulator's 周期扣款 mandates (protocols/recurring.md §1.1, §1.3, §1.5): the signing page
 * of alipay.user.agreement.page.sign (the wallet user signs or refuses), query and unsign, and the
 * wallet user's own cancellation later, whose dut_user_unsign goes to the app's gateway URL only.
 * In the simulator that URL (应用网关, set in Alipay's console) is the gateway's
 * /notify/alipay/<app> the app's sign requests name.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { NotifyMode, SandboxDeps } from '../types.ts';
import { parseJson } from '../../db.ts';
import { signNotify } from '../../channels/alipay/sign.ts';
import { beijingTime, nowBeijing, yuanToFen } from '../../channels/alipay/transform.ts';
import { isNotifyUrl } from '../gateway-urls.ts';
import { businessFailure, digits, type GatewayAnswer } from './gateway.ts';
import { newNotifyId, sendNotify } from './notify.ts';
import { deductionTotals, nextDeductDate } from './deduct-schedule.ts';
import type { SandboxMerchant } from './store.ts';

const PROVIDER = 'alipay';
export const SIGN_PAGE_METHOD = 'alipay.user.agreement.page.sign';
export const AGREEMENT_API_METHODS = new Set(['alipay.user.agreement.query', 'alipay.user.agreement.unsign']);
const ACCESS_CHANNELS = new Set(['ALIPAYAPP', 'QRCODE', 'QRCODEORSMS']);
/** Alipay's sentinel for "no expiry". */
const NO_EXPIRY = '2115-02-01 00:00:00';

export type MandateStatus = 'TEMP' | 'NORMAL' | 'UNSIGN';

export interface MandateData {
  signScene: string;
  personalProductCode: string;
  periodType: 'DAY' | 'MONTH';
  period: number;
  executeTime: string;
  singleAmount: number;
  /** Optional caps of the rule: cumulative amount (fen) and number of successful deductions. */
  totalAmount?: number;
  totalPayments?: number;
  /** The due date set by executionplan.modify, when it pushed the plan past the rule's. */
  deductTime?: string;
  externalLogonId?: string;
  notifyUrl?: string;
  returnUrl?: string;
  appGatewayUrl?: string;
  accessChannel: string;
  userId?: string;
  signTime?: number;
  unsignTime?: number;
}

export interface SandboxMandate {
  appId: string;
  externalAgreementNo: string;
  agreementNo: string;
  status: MandateStatus;
  data: MandateData;
}

const now = () => Math.floor(Date.now() / 1000);
const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

function mandateOf(r: any): SandboxMandate {
  return { appId: r.merchant_id, externalAgreementNo: r.external_agreement_no, agreementNo: r.agreement_no, status: r.status, data: parseJson<MandateData>(r.data, {} as MandateData) };
}

export async function findMandate(db: Knex, appId: string, by: { external?: string; agreementNo?: string }): Promise<SandboxMandate | undefined> {
  const q = db('sandbox_agreements').where({ provider: PROVIDER, merchant_id: appId });
  if (by.agreementNo) q.where('agreement_no', by.agreementNo);
  else if (by.external) q.where('external_agreement_no', by.external);
  else return undefined;
  const r = await q.first();
  return r ? mandateOf(r) : undefined;
}

async function moveMandate(db: Knex, m: SandboxMandate, to: MandateStatus, data: MandateData): Promise<boolean> {
  const n = await db('sandbox_agreements')
    .where({ provider: PROVIDER, merchant_id: m.appId, external_agreement_no: m.externalAgreementNo, status: m.status })
    .update({ status: to, data: JSON.stringify(data), updated_ms: Date.now() });
  return n === 1;
}

/** The capability that lets the wallet user (or a test) act on one mandate. */
export function signerToken(masterKey: Buffer, appId: string, externalAgreementNo: string): string {
  return crypto.createHmac('sha256', masterKey).update(`alipay-sandbox-signer\n${appId}\n${externalAgreementNo}`).digest('base64url').slice(0, 32);
}

type Opened = { ok: true; mandate: SandboxMandate } | { ok: false; error: GatewayAnswer };

/** Checks a page.sign request as Alipay does and stores the TEMP mandate (a repeat of a TEMP one opens it again). */
export async function openMandate(deps: SandboxDeps, merchant: SandboxMerchant, biz: Record<string, unknown>, params: Record<string, string>): Promise<Opened> {
  const bad = (what: string, sub = 'INVALID_PARAMETER'): Opened => ({ ok: false, error: businessFailure(sub, `参数无效 (${what})`) });
  const personal = text(biz.personal_product_code);
  if (personal !== 'CYCLE_PAY_AUTH_P') return bad('personal_product_code: the simulator signs CYCLE_PAY_AUTH_P');
  const external = text(biz.external_agreement_no);
  if (!external || !/^[A-Za-z0-9]{1,32}$/.test(external)) return bad('external_agreement_no: 1–32 letters and digits');
  const scene = text(biz.sign_scene);
  if (!scene || scene === 'DEFAULT|DEFAULT') return bad('sign_scene: a real scene is required with external_agreement_no');
  const access = (biz.access_params ?? {}) as Record<string, unknown>;
  if (!ACCESS_CHANNELS.has(String(access.channel ?? ''))) return bad('access_params.channel: ALIPAYAPP, QRCODE or QRCODEORSMS');
  const rule = (biz.period_rule_params ?? {}) as Record<string, unknown>;
  const periodType = text(rule.period_type);
  const period = Number(rule.period);
  const executeTime = text(rule.execute_time) ?? '';
  if (periodType !== 'DAY' && periodType !== 'MONTH') return bad('period_rule_params.period_type: DAY or MONTH');
  if (!Number.isInteger(period) || period < 1 || (periodType === 'DAY' && period < 7)) return bad('period_rule_params.period: an integer, at least 7 with DAY');
  if (!/^\d{4}-\d{2}-\d{2}$/.test(executeTime)) return bad('period_rule_params.execute_time: yyyy-MM-dd');
  if (periodType === 'MONTH' && Number(executeTime.slice(8)) > 28) return bad('period_rule_params.execute_time: day 1–28 with MONTH');
  let singleAmount: number;
  try {
    singleAmount = yuanToFen(text(rule.single_amount) ?? '');
  } catch {
    return bad('period_rule_params.single_amount: yuan, two decimals');
  }
  let totalAmount: number | undefined;
  if (rule.total_amount !== undefined) {
    try {
      totalAmount = yuanToFen(text(rule.total_amount) ?? '');
    } catch {
      return bad('period_rule_params.total_amount: yuan, two decimals');
    }
  }
  const totalPayments = rule.total_payments === undefined ? undefined : Number(rule.total_payments);
  if (totalPayments !== undefined && (!Number.isInteger(totalPayments) || totalPayments < 1)) return bad('period_rule_params.total_payments: a positive integer');
  const notifyUrl = params.notify_url || undefined;
  if (notifyUrl && !isNotifyUrl(deps.publicUrl, notifyUrl, 'alipay')) return bad('notify_url: must be this gateway\'s /notify/alipay/…');
  const data: MandateData = {
    signScene: scene, personalProductCode: personal, periodType, period, executeTime, singleAmount, accessChannel: String(access.channel),
    ...(totalAmount !== undefined ? { totalAmount } : {}), ...(totalPayments !== undefined ? { totalPayments } : {}),
    externalLogonId: text(biz.external_logon_id), notifyUrl, returnUrl: params.return_url || undefined, appGatewayUrl: notifyUrl,
  };
  const existing = await findMandate(deps.db, merchant.appId, { external });
  if (existing) {
    if (existing.status === 'TEMP') return { ok: true, mandate: existing };
    return { ok: false, error: businessFailure('USER_AGREEMENT_ALREADY_EXIST', '用户协议已存在 (this external_agreement_no was signed already)') };
  }
  const mandate: SandboxMandate = { appId: merchant.appId, externalAgreementNo: external, agreementNo: `2020${beijingTime(now()).slice(0, 10).replace(/-/g, '')}${digits(12)}`, status: 'TEMP', data };
  await deps.db('sandbox_agreements')
    .insert({ provider: PROVIDER, merchant_id: merchant.appId, external_agreement_no: external, agreement_no: mandate.agreementNo, status: 'TEMP', data: JSON.stringify(data), created: now(), updated_ms: Date.now() })
    .onConflict(['provider', 'merchant_id', 'external_agreement_no'])
    .ignore();
  const stored = await findMandate(deps.db, merchant.appId, { external });
  return stored?.status === 'TEMP' ? { ok: true, mandate: stored } : { ok: false, error: businessFailure('USER_AGREEMENT_ALREADY_EXIST', '用户协议已存在') };
}

/** The signed dut_user_sign / dut_user_unsign notify of a mandate's current status. */
export function mandateNotifyParams(merchant: SandboxMerchant, m: SandboxMandate): Record<string, string> {
  const d = m.data;
  const signed = m.status === 'NORMAL';
  const p: Record<string, string> = {
    notify_type: signed ? 'dut_user_sign' : 'dut_user_unsign',
    notify_id: newNotifyId(),
    notify_time: nowBeijing(),
    app_id: merchant.appId,
    auth_app_id: merchant.appId,
    charset: 'utf-8',
    version: '1.0',
    sign_type: 'RSA2',
    status: signed ? 'NORMAL' : 'UNSIGN',
    agreement_no: m.agreementNo,
    external_agreement_no: m.externalAgreementNo,
    personal_product_code: d.personalProductCode,
    sign_scene: d.signScene,
    alipay_user_id: d.userId ?? '',
    alipay_logon_id: 'sand***@checkstand.test',
    sign_time: d.signTime ? beijingTime(d.signTime) : '',
    valid_time: d.signTime ? beijingTime(d.signTime) : '',
    invalid_time: NO_EXPIRY,
  };
  if (d.externalLogonId) p.external_logon_id = d.externalLogonId;
  if (!signed && d.unsignTime) p.unsign_time = beijingTime(d.unsignTime);
  for (const k of Object.keys(p)) if (p[k] === '') delete p[k];
  p.sign = signNotify(p, merchant.alipayPrivateKey);
  return p;
}

export type MandateActed = { ok: true; mandate: SandboxMandate; changed: boolean } | { ok: false; code: string; message: string };

/**
 * The wallet user's actions: sign (TEMP → NORMAL, dut_user_sign to notify_url, else the app
 * gateway), refuse (stays TEMP, nothing is notified), unsign later from the wallet
 * (NORMAL → UNSIGN, dut_user_unsign to the app gateway only).
 */
export async function actOnMandate(deps: SandboxDeps, merchant: SandboxMerchant, m: SandboxMandate, action: 'sign' | 'refuse' | 'unsign', mode: NotifyMode = 'normal'): Promise<MandateActed> {
  if (action === 'refuse') return m.status === 'TEMP' ? { ok: true, mandate: m, changed: false } : { ok: false, code: 'AGREEMENT_STATUS_ERROR', message: '协议状态不正确' };
  if (action === 'sign') {
    if (m.status === 'NORMAL') return { ok: true, mandate: m, changed: false };
    if (m.status !== 'TEMP') return { ok: false, code: 'AGREEMENT_STATUS_ERROR', message: '协议已解约 · This agreement was unsigned' };
    const data = { ...m.data, signTime: now(), userId: `2088${digits(12)}` };
    if (!(await moveMandate(deps.db, m, 'NORMAL', data))) return { ok: false, code: 'AGREEMENT_STATUS_ERROR', message: '协议状态已变化' };
    const signed = { ...m, status: 'NORMAL' as const, data };
    await sendNotify(data.notifyUrl ?? data.appGatewayUrl, mandateNotifyParams(merchant, signed), mode, deps.logger);
    return { ok: true, mandate: signed, changed: true };
  }
  const ended = await unsignMandate(deps, m);
  if (!ended.ok) return ended;
  if (ended.changed) await sendNotify(ended.mandate.data.appGatewayUrl, mandateNotifyParams(merchant, ended.mandate), mode, deps.logger);
  return ended;
}

async function unsignMandate(deps: SandboxDeps, m: SandboxMandate): Promise<MandateActed> {
  if (m.status === 'UNSIGN') return { ok: true, mandate: m, changed: false };
  if (m.status !== 'NORMAL') return { ok: false, code: 'USER_AGREEMENT_NOT_EXIST', message: '用户协议不存在 · Not signed' };
  const data = { ...m.data, unsignTime: now() };
  if (!(await moveMandate(deps.db, m, 'UNSIGN', data))) return { ok: false, code: 'AGREEMENT_STATUS_ERROR', message: '协议状态已变化' };
  return { ok: true, mandate: { ...m, status: 'UNSIGN', data }, changed: true };
}

/** alipay.user.agreement.query and .unsign. */
export async function runAgreementMethod(deps: SandboxDeps, merchant: SandboxMerchant, method: string, biz: Record<string, unknown>, params: Record<string, string>): Promise<GatewayAnswer> {
  const agreementNo = text(biz.agreement_no);
  const external = text(biz.external_agreement_no);
  if (!agreementNo && !(external && text(biz.personal_product_code) && text(biz.sign_scene))) {
    return { code: '40001', msg: 'Missing Required Arguments', sub_code: 'isv.missing-agreement-no', sub_msg: '缺少agreement_no，或personal_product_code+sign_scene+external_agreement_no' };
  }
  const m = await findMandate(deps.db, merchant.appId, agreementNo ? { agreementNo } : { external });
  const missing = businessFailure('USER_AGREEMENT_NOT_EXIST', '用户协议不存在');
  if (!m || (!agreementNo && (m.data.signScene !== text(biz.sign_scene) || m.data.personalProductCode !== text(biz.personal_product_code)))) return missing;
  if (method === 'alipay.user.agreement.query') {
    if (m.status === 'UNSIGN') return missing;
    const d = m.data;
    const nextDeduct = m.status === 'NORMAL' ? nextDeductDate(m, await deductionTotals(deps.db, m.appId, m.agreementNo)) : d.executeTime;
    return {
      code: '10000', msg: 'Success', status: m.status, external_agreement_no: m.externalAgreementNo, personal_product_code: d.personalProductCode, sign_scene: d.signScene,
      single_quota: (d.singleAmount / 100).toFixed(2), invalid_time: NO_EXPIRY,
      ...(m.status === 'NORMAL' ? { agreement_no: m.agreementNo, principal_id: d.userId, sign_time: beijingTime(d.signTime!), valid_time: beijingTime(d.signTime!), next_deduct_time: nextDeduct } : {}),
    };
  }
  const ended = await unsignMandate(deps, m);
  if (!ended.ok) return businessFailure(ended.code, ended.message);
  // The merchant's unsign notifies its notify_url, else the app gateway.
  if (ended.changed) {
    const notifyUrl = params.notify_url && isNotifyUrl(deps.publicUrl, params.notify_url, 'alipay') ? params.notify_url : ended.mandate.data.appGatewayUrl;
    const p = mandateNotifyParams(merchant, ended.mandate);
    setImmediate(() => void sendNotify(notifyUrl, p, 'normal', deps.logger));
  }
  return { code: '10000', msg: 'Success' };
}
