/**
 * WeChat Pay 委托代扣 (papay) for classic v2 templates, protocols/recurring.md §2: the contract
 * signing page (entrustweb, §2.1), the contract notify (ADD / DELETE), querycontract and
 * deletecontract, the deduction (pappayapply, §2.2) and its query (paporderquery), and the
 * pre-deduction notice (§2.3), which is a v3 call even for v2 templates. v2 calls are XML with
 * the MD5 sign keyed by the v2 API key (v2.ts), posted through redpack.ts's call over mutual TLS
 * (WeChat does not ask a certificate of these calls; presenting it does no harm, and the
 * simulator's v2 listener takes TLS only). Stateless.
 */
import crypto from 'node:crypto';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../errors.ts';
import type { ChannelNotification } from '../types.ts';
import type { WechatpayCredentials, WechatpayV2Credentials } from './index.ts';
import { callApi, faultOf } from './client.ts';
import { call as callV2 } from './redpack.ts';
import { newNonce } from './sign.ts';
import { parseXml, textFields, v2Sign, verifyV2Sign, type XmlMessage } from './v2.ts';

const QUERY_CONTRACT_PATH = '/papay/querycontract';
const DELETE_CONTRACT_PATH = '/papay/deletecontract';
const APPLY_PATH = '/pay/pappayapply';
const ORDER_QUERY_PATH = '/pay/paporderquery';

/** Days a deduction may be made after the waiting day that follows a notice (deduct_duration.count). */
export const DEDUCT_DURATION_DAYS = 2;

/** Refusals of one deduction (not of our setup): the try failed; the next try may pass. Codes the note does not list are the simulator's (see sandbox/wechatpay/papay-deduct.ts). */
const DEDUCT_DECLINES = new Set(['NOTENOUGH', 'RULELIMIT', 'CONTRACT_NOT_EXIST', 'CONTRACTERROR', 'ORDERCLOSED', 'USER_ACCOUNT_ABNORMAL', 'PARAM_ERROR']);
const CONFIG_CODES = new Set(['SIGNERROR', 'SIGN_ERROR', 'CA_ERROR', 'NOAUTH', 'APPID_MCHID_NOT_MATCH', 'PLAN_NOT_EXIST']);

// --- signing -------------------------------------------------------------------------------------

export interface PapaySignRequest {
  /** Our contract number (contract_code): unique for the merchant, the idempotency key of the signing. */
  contractCode: string;
  /** Shown to the user on the signing page (no emoji, no nickname). */
  displayAccount: string;
  /** Where the ADD contract notify goes (url-encoded in the URL, raw in the sign). */
  notifyUrl: string;
}

/** request_serial: an int64 of at most 12 digits, unique, for ordering only: seconds since 2024 × 1000 + a random part. */
export function requestSerial(nowMs = Date.now()): number {
  return (Math.floor(nowMs / 1000) - 1_704_067_200) * 1000 + crypto.randomInt(1000);
}

/**
 * The 公众号 signing page, GET /papay/entrustweb (§2.1): a URL the customer opens inside WeChat
 * (the merchant's page redirects there from within WeChat, or shows it as a QR code the customer
 * scans with WeChat). No server call; the MD5 sign covers the raw values, the URL carries them
 * url-encoded.
 */
export function entrustWebUrl(cred: WechatpayCredentials, r: PapaySignRequest): string {
  const v2 = v2Of(cred);
  const fields: Record<string, string> = {
    appid: cred.appid,
    mch_id: cred.mchid,
    plan_id: planOf(cred),
    contract_code: r.contractCode,
    request_serial: String(requestSerial()),
    contract_display_account: r.displayAccount,
    notify_url: r.notifyUrl,
    version: '1.0',
    timestamp: String(Math.floor(Date.now() / 1000)),
  };
  const q = new URLSearchParams({ ...fields, sign: v2Sign(fields, v2.apiKey.reveal()) });
  return `${cred.baseUrl}/papay/entrustweb?${q}`;
}

// --- contract notify, query, termination --------------------------------------------------------

/**
 * A v2 XML notify (contract ADD / DELETE, or a PAP deduction's success), verified with the v2
 * key before anything in it is believed; only successes are notified (§2.1, §2.2).
 */
export function papayNotificationOf(cred: WechatpayCredentials, body: string): ChannelNotification {
  const v2 = v2Of(cred);
  let msg: XmlMessage;
  try {
    msg = parseXml(body);
  } catch (err) {
    if (err instanceof MalformedMessageError) throw err;
    throw new MalformedMessageError('WeChat Pay v2 notify is not readable XML');
  }
  const f = textFields(msg);
  if (!verifyV2Sign(f, v2.apiKey.reveal())) throw new SignatureError('WeChat Pay v2 notify: the sign does not verify with api_v2_key');
  if (f.mch_id !== cred.mchid) throw new MalformedMessageError('WeChat Pay v2 notify for another mch_id');
  if (f.return_code !== 'SUCCESS' || f.result_code !== 'SUCCESS') {
    return { kind: 'ignored', notifyId: f.contract_id || f.out_trade_no || 'v2', reason: `v2 notify with result ${String(f.result_code).slice(0, 20)}` };
  }
  if (f.change_type) {
    if (f.plan_id !== cred.papayPlanId) throw new MalformedMessageError('WeChat Pay contract notify for another plan_id');
    const need = (k: string) => {
      if (!f[k]) throw new MalformedMessageError(`WeChat Pay contract notify lacks ${k}`);
      return f[k]!;
    };
    const common = { notifyId: `${need('contract_id')}:${f.change_type}`, externalAgreementNo: need('contract_code'), channelAgreementNo: need('contract_id') };
    if (f.change_type === 'ADD') return { kind: 'agreement', ...common, status: 'active' };
    if (f.change_type === 'DELETE') {
      // 1 expired, 5 account closed: the channel ended it; 2 the user; 3/4 the merchant (API or platform).
      const mode = f.contract_termination_mode;
      const by = mode === '1' || mode === '5' ? 'channel' : mode === '3' || mode === '4' ? 'merchant' : 'customer';
      return { kind: 'agreement', ...common, status: 'terminated', terminatedBy: by };
    }
    throw new MalformedMessageError(`WeChat Pay contract notify with change_type ${f.change_type.slice(0, 20)}`);
  }
  if (f.trade_type === 'PAP') {
    const amount = Number(f.total_fee);
    if (!f.out_trade_no || !f.transaction_id || !Number.isSafeInteger(amount)) throw new MalformedMessageError('WeChat Pay PAP notify lacks out_trade_no, transaction_id or total_fee');
    return {
      kind: 'payment', orderNo: f.out_trade_no, channelTradeNo: f.transaction_id, status: 'succeeded', amount, currency: f.fee_type || 'CNY',
      appId: f.appid, merchantId: f.mch_id, paidAt: timeEndSeconds(f.time_end), notifyId: f.transaction_id,
    };
  }
  throw new MalformedMessageError('WeChat Pay v2 notify is neither a contract nor a PAP deduction');
}

/** v2 notifies are answered in XML; return_code SUCCESS stops WeChat's retries. */
export function papayAck(accepted: boolean): { status: number; contentType: string; body: string } {
  return accepted
    ? { status: 200, contentType: 'text/xml; charset=utf-8', body: '<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>' }
    : { status: 500, contentType: 'text/xml; charset=utf-8', body: '<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[refused]]></return_msg></xml>' };
}

export type PapayContractState = { status: 'active'; contractId: string } | { status: 'terminated'; contractId?: string; mode?: string } | { status: 'pending' };

/** querycontract by plan_id + contract_code (§2.1): state 0 signed, 1 terminated; no contract yet is pending. */
export async function queryContract(cred: WechatpayCredentials, contractCode: string): Promise<PapayContractState> {
  const a = await callV2(cred, v2Of(cred), 'querycontract', QUERY_CONTRACT_PATH, { appid: cred.appid, mch_id: cred.mchid, plan_id: planOf(cred), contract_code: contractCode, version: '1.0' });
  if (a.result_code !== 'SUCCESS') {
    const code = str(a.err_code);
    if (code === 'CONTRACT_NOT_EXIST') return { status: 'pending' };
    throw faultOfV2('querycontract', a);
  }
  if (a.contract_code !== undefined && a.contract_code !== contractCode) throw new ChannelUnavailable('WeChat querycontract answered about another contract_code');
  if (str(a.contract_state) === '0') return { status: 'active', contractId: str(a.contract_id) };
  if (str(a.contract_state) === '1') return { status: 'terminated', contractId: str(a.contract_id) || undefined, mode: str(a.contract_termination_mode) || undefined };
  throw new ChannelUnavailable(`WeChat querycontract: unknown contract_state ${str(a.contract_state).slice(0, 10)}`);
}

/** deletecontract by contract_id (§2.1); an already-terminated (or unknown) contract counts as done. */
export async function deleteContract(cred: WechatpayCredentials, contractId: string, remark: string): Promise<void> {
  const a = await callV2(cred, v2Of(cred), 'deletecontract', DELETE_CONTRACT_PATH, {
    appid: cred.appid, mch_id: cred.mchid, contract_id: contractId, contract_termination_remark: remark.slice(0, 60), version: '1.0',
  });
  if (a.result_code === 'SUCCESS') return;
  const code = str(a.err_code);
  if (code === 'CONTRACT_NOT_EXIST' || code === 'CONTRACT_TERMINATED') return;
  throw faultOfV2('deletecontract', a);
}

// --- pre-deduction notice and deduction -----------------------------------------------------------

/**
 * The pre-deduction notice, POST /v3/papay/contracts/{contract_id}/notify (§2.3, v3-signed):
 * WeChat tells the user; a deduction follows after the waiting day, within deduct_duration and
 * at most estimated_amount. Callable 06:00–22:00 Beijing only: a refusal is a ChannelRequestError.
 */
export async function sendPreDeductNotice(cred: WechatpayCredentials, contractId: string, r: { amount: number; days?: number }): Promise<void> {
  const answer = await callApi(cred, 'papay notify', 'POST', `/v3/papay/contracts/${encodeURIComponent(contractId)}/notify`, {
    mchid: cred.mchid, appid: cred.appid, deduct_duration: { count: r.days ?? DEDUCT_DURATION_DAYS, unit: 'DAY' }, estimated_amount: { amount: r.amount, currency: 'CNY' },
  });
  if (!answer.ok) throw faultOf('papay notify', answer);
}

export interface PapayDeductRequest {
  /** out_trade_no: the idempotency key; repeat it after an unknown answer, never draw a new one. */
  orderNo: string;
  contractId: string;
  /** fen */
  amount: number;
  subject: string;
  notifyUrl: string;
  /** The calling server's IPv4 address (spbill_create_ip). */
  serverIp?: string;
}

export type PapayDeductResult =
  | { status: 'succeeded'; channelTradeNo: string; paidAt?: number; amount?: number }
  | { status: 'pending' }
  | { status: 'failed'; code: string; message: string };

/**
 * pappayapply (§2.2): SUCCESS means accepted, not paid: pending, settled by the success-only
 * notify or paporderquery. ORDERPAID means this out_trade_no was charged: the query confirms it.
 * A definite refusal (NOTENOUGH, RULELIMIT: no notice or its wait not over, over the estimate,
 * CONTRACT_NOT_EXIST…) is a decline; SYSTEMERROR or no answer throws ChannelUnavailable.
 */
export async function applyDeduction(cred: WechatpayCredentials, r: PapayDeductRequest): Promise<PapayDeductResult> {
  const a = await callV2(cred, v2Of(cred), 'pappayapply', APPLY_PATH, {
    appid: cred.appid,
    mch_id: cred.mchid,
    // Fixed per order: a resend is byte for byte the first request.
    nonce_str: crypto.createHash('sha256').update(`pappayapply\n${r.orderNo}`).digest('hex').slice(0, 32),
    sign_type: 'MD5',
    body: r.subject.slice(0, 40) || r.orderNo,
    out_trade_no: r.orderNo,
    total_fee: r.amount,
    fee_type: 'CNY',
    spbill_create_ip: r.serverIp ?? '127.0.0.1',
    notify_url: r.notifyUrl,
    trade_type: 'PAP',
    contract_id: r.contractId,
  });
  if (a.result_code === 'SUCCESS') return { status: 'pending' };
  const code = str(a.err_code);
  if (code === 'ORDERPAID') {
    const q = await queryDeduction(cred, r.orderNo);
    if (q.status !== 'succeeded') throw new ChannelUnavailable(`WeChat pappayapply answered ORDERPAID but paporderquery says ${q.status}`);
    if (q.amount !== undefined && q.amount !== r.amount) throw new ChannelRequestError('ORDERPAID', `WeChat: out_trade_no ${r.orderNo} was paid with ${q.amount} fen, not ${r.amount}`);
    return q;
  }
  if (DEDUCT_DECLINES.has(code)) return { status: 'failed', code, message: str(a.err_code_des).slice(0, 200) || code };
  throw faultOfV2('pappayapply', a);
}

export type PapayOrderState =
  | { status: 'succeeded'; channelTradeNo: string; paidAt?: number; amount?: number }
  | { status: 'failed'; code: string; message: string }
  | { status: 'pending' }
  | { status: 'not_found' };

/** paporderquery (§2.2): SUCCESS/REFUND paid; PAY_FAIL/CLOSED final failures; ACCEPT/NOTPAY and anything else pending. */
export async function queryDeduction(cred: WechatpayCredentials, orderNo: string): Promise<PapayOrderState> {
  const a = await callV2(cred, v2Of(cred), 'paporderquery', ORDER_QUERY_PATH, { appid: cred.appid, mch_id: cred.mchid, out_trade_no: orderNo, nonce_str: newNonce() });
  if (a.result_code !== 'SUCCESS') {
    if (str(a.err_code) === 'ORDERNOTEXIST') return { status: 'not_found' };
    throw faultOfV2('paporderquery', a);
  }
  if (a.out_trade_no !== undefined && a.out_trade_no !== orderNo) throw new ChannelUnavailable('WeChat paporderquery answered about another order');
  const state = str(a.trade_state);
  switch (state) {
    case 'SUCCESS':
    case 'REFUND': {
      const tx = str(a.transaction_id);
      if (!tx) throw new ChannelUnavailable('WeChat paporderquery answered SUCCESS without transaction_id');
      const amount = Number(a.total_fee);
      return { status: 'succeeded', channelTradeNo: tx, paidAt: timeEndSeconds(str(a.time_end)), ...(Number.isSafeInteger(amount) ? { amount } : {}) };
    }
    case 'PAY_FAIL':
    case 'CLOSED':
      return { status: 'failed', code: str(a.err_code) || state, message: str(a.trade_state_desc).slice(0, 200) || state };
    default:
      return { status: 'pending' };
  }
}

// --- private helpers ---------------------------------------------------------------------------

function v2Of(cred: WechatpayCredentials): WechatpayV2Credentials {
  if (!cred.v2) throw new ChannelConfigError('WeChat Pay config: 委托代扣 uses API v2 and needs api_v2_key (the 32-character API密钥) and apiclient_cert');
  return cred.v2;
}

function planOf(cred: WechatpayCredentials): string {
  if (!cred.papayPlanId) throw new ChannelConfigError('WeChat Pay config: papay_plan_id (the 委托代扣 template id from the merchant platform) is required for agreements');
  return cred.papayPlanId;
}

function faultOfV2(op: string, a: XmlMessage): Error {
  const code = str(a.err_code) || str(a.return_code) || 'no code';
  const words = `WeChat ${op}: ${code.slice(0, 40)}: ${(str(a.err_code_des) || str(a.return_msg)).slice(0, 200)}`;
  if (CONFIG_CODES.has(code)) return new ChannelConfigError(words);
  if (code === 'SYSTEMERROR' || code === 'FREQUENCY_LIMITED') return new ChannelUnavailable(words);
  if (code === 'PARAM_ERROR' || code === 'XML_FORMAT_ERROR') return new ChannelRequestError(code, words);
  return new ChannelUnavailable(`${words} (not a known answer)`);
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** time_end `yyyyMMddHHmmss` (Beijing) → unix seconds. */
function timeEndSeconds(text: string | undefined): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text ?? '');
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}+08:00`);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}
