/**
 * The simulator's 委托代扣 deductions (protocols/recurring.md §2.2, §2.3, §2.5): the pre-deduction
 * notice (v3 POST /v3/papay/contracts/{contract_id}/notify), pappayapply and paporderquery (v2
 * XML over the v2 listener). Time is the simulator's clock for the mchid (sandbox/clock.ts,
 * setSandboxClock(db, 'wechatpay', mchid, offsetMs)), read afresh on every request.
 *
 * Rules enforced:
 * - a notice is taken 06:00–22:00 Beijing only, for a SIGNED contract, with deduct_duration
 *   {count 1–31, unit DAY} and estimated_amount {amount > 0, currency CNY} (else 403 RULE_LIMIT
 *   or 400 PARAM_ERROR); a new notice replaces the contract's previous one;
 * - pappayapply needs a notice not used yet, on the day after the waiting day or later (notice on
 *   the 1st, the 2nd waits, deduct from the 3rd) and within deduct_duration days, and total_fee
 *   ≤ estimated_amount: else RULELIMIT. A successful deduction uses the notice up. An unsigned or
 *   terminated contract is CONTRACT_NOT_EXIST. (The note names no error codes for these; RULELIMIT
 *   and CONTRACT_NOT_EXIST are the simulator's words.)
 * - accept-then-settle: SUCCESS means accepted; the order is settled at once (SUCCESS or
 *   PAY_FAIL, visible to paporderquery) and only a success is notified (PAP payment notify, XML,
 *   to notify_url, after the answer). out_trade_no is re-entrant: the same request again gets
 *   SUCCESS (or ORDERPAID once paid) and charges nothing more.
 *
 * Scripted outcomes, by total_fee's last two digits (fen), after every rule above:
 * - …51 (e.g. 10.51 yuan): accepted, then PAY_FAIL with err_code NOTENOUGH (余额不足); no notify;
 * - …52: charged (SUCCESS, notified) but the answer is SYSTEMERROR, as when WeChat's answer is
 *   lost: the caller queries (or repeats the same out_trade_no), never charges a new number.
 */
import type { Request } from 'express';
import type { Knex } from 'knex';
import type { SandboxDeps } from '../types.ts';
import { parseJson } from '../../db.ts';
import { buildXml, v2Sign } from '../../channels/wechatpay/v2.ts';
import { isNotifyUrl } from '../gateway-urls.ts';
import { sandboxNowMs } from '../clock.ts';
import type { V2Merchant } from './redpack-store.ts';
import { fail, type Answer, type Fields } from './redpack.ts';
import type { Answer as V3Answer } from './orders.ts';
import type { SandboxMerchant } from './store.ts';
import { digits } from './wire.ts';
import { deleteContractRoute, findContract, moveContract, queryContractRoute, sendXmlNotify, type SandboxContract } from './papay.ts';

export const SCRIPTED_NOT_ENOUGH = 51;
export const SCRIPTED_SYSTEMERROR = 52;
const DAY_MS = 86_400_000;
const BEIJING_OFFSET_MS = 8 * 3_600_000;
const beijingDay = (ms: number) => Math.floor((ms + BEIJING_OFFSET_MS) / DAY_MS);
const beijingHour = (ms: number) => new Date(ms + BEIJING_OFFSET_MS).getUTCHours();
const timeEnd = (ms: number) => new Date(ms + BEIJING_OFFSET_MS).toISOString().slice(0, 19).replace(/[-T:]/g, '');

type Json = Record<string, unknown>;
const v3 = (status: number, code: string, message: string): V3Answer => ({ status, body: { code, message } });

/** The v2 routes of 委托代扣, mounted by redpack.ts's createV2Router. */
export const PAPAY_V2_ROUTES: [string, (deps: SandboxDeps, req: Request, m: V2Merchant, f: Fields) => Promise<Answer>][] = [
  ['/papay/querycontract', queryContractRoute],
  ['/papay/deletecontract', deleteContractRoute],
  ['/pay/pappayapply', papPayApply],
  ['/pay/paporderquery', papOrderQuery],
];

// --- the pre-deduction notice (v3) ---------------------------------------------------------------

export async function preDeductNotice(deps: SandboxDeps, merchant: SandboxMerchant, contractId: string, body: Json): Promise<V3Answer> {
  if (body.mchid !== merchant.mchid) return v3(400, 'PARAM_ERROR', 'mchid 与请求的商户号不一致');
  if (body.appid !== merchant.appid) return v3(400, 'APPID_MCHID_NOT_MATCH', 'appid 与 mchid 不匹配');
  const duration = (body.deduct_duration ?? {}) as Json;
  const estimate = (body.estimated_amount ?? {}) as Json;
  const days = Number(duration.count);
  const amount = Number(estimate.amount);
  if (duration.unit !== 'DAY' || !Number.isInteger(days) || days < 1 || days > 31) return v3(400, 'PARAM_ERROR', '输入源“/body/deduct_duration”映射到字段“count/unit”值错误 (count 1–31, unit DAY)');
  if (!Number.isSafeInteger(amount) || amount < 1) return v3(400, 'PARAM_ERROR', '输入源“/body/estimated_amount/amount”映射到值字段“预计扣费金额”值错误 (a positive integer of fen)');
  if ((estimate.currency ?? 'CNY') !== 'CNY') return v3(400, 'PARAM_ERROR', 'estimated_amount.currency 须为 CNY');
  const c = await findContract(deps.db, merchant.mchid, { contractId });
  if (!c || c.status !== 'SIGNED') return v3(404, 'RESOURCE_NOT_EXISTS', '签约协议不存在或已解约 (no signed contract with this contract_id)');
  const nowMs = await sandboxNowMs(deps.db, 'wechatpay', merchant.mchid);
  const h = beijingHour(nowMs);
  if (h < 6 || h >= 22) return v3(403, 'RULE_LIMIT', `预扣费通知仅可在北京时间 06:00–22:00 调用 (it is ${h}:xx Beijing time at the simulator)`);
  if (!(await moveContract(deps.db, c, 'SIGNED', { ...c.data, notice: { atMs: nowMs, amount, days } }))) return v3(500, 'SYSTEM_ERROR', '系统繁忙');
  return { status: 204 };
}

// --- pappayapply / paporderquery (v2) -----------------------------------------------------------------

interface PapOrder {
  mchid: string;
  outTradeNo: string;
  contractId: string;
  transactionId: string;
  state: 'ACCEPT' | 'SUCCESS' | 'PAY_FAIL';
  amount: number;
  data: { appid: string; openid?: string; body: string; notifyUrl: string; paidMs?: number; errCode?: string; errDes?: string };
}

async function findOrder(db: Knex, mchid: string, outTradeNo: string): Promise<PapOrder | undefined> {
  const r = await db('sandbox_papay_orders').where({ merchant_id: mchid, out_trade_no: outTradeNo }).first();
  return r && { mchid, outTradeNo, contractId: r.contract_id, transactionId: r.transaction_id, state: r.trade_state, amount: Number(r.amount), data: parseJson(r.data, {} as PapOrder['data']) };
}

const APPLY_REQUIRED = ['appid', 'mch_id', 'nonce_str', 'body', 'out_trade_no', 'total_fee', 'spbill_create_ip', 'notify_url', 'trade_type', 'contract_id'];

async function papPayApply(deps: SandboxDeps, _req: Request, m: V2Merchant, f: Fields): Promise<Answer> {
  const key = m.apiV2Key;
  const missing = APPLY_REQUIRED.find((k) => !f[k]);
  if (missing) return fail('PARAM_ERROR', `参数错误: ${missing} 必填`, key);
  if (f.appid !== m.appid) return fail('APPID_MCHID_NOT_MATCH', 'appid 与 mch_id 不匹配', key);
  if (f.trade_type !== 'PAP') return fail('PARAM_ERROR', '参数错误: trade_type 须为 PAP', key);
  if ((f.fee_type ?? 'CNY') !== 'CNY') return fail('PARAM_ERROR', '参数错误: fee_type 须为 CNY', key);
  if (!/^[A-Za-z0-9_*|-]{1,32}$/.test(f.out_trade_no!)) return fail('PARAM_ERROR', '参数错误: out_trade_no 须为 32 位以内的字母、数字或 _-|*', key);
  if (!/^[1-9]\d{0,9}$/.test(f.total_fee!)) return fail('PARAM_ERROR', '参数错误: total_fee 须为正整数（分）', key);
  if (!isNotifyUrl(deps.publicUrl, f.notify_url!, 'wechatpay')) return fail('PARAM_ERROR', "参数错误: notify_url must be this gateway's /notify/wechatpay/…", key);
  const amount = Number(f.total_fee);

  // A repeated out_trade_no is answered from the order it names, before any rule is judged again.
  const existing = await findOrder(deps.db, m.mchid, f.out_trade_no!);
  if (existing) {
    if (existing.contractId !== f.contract_id || existing.amount !== amount) return fail('OUT_TRADE_NO_USED', '商户订单号重复 (another contract or amount)', key);
    if (existing.state === 'SUCCESS') return fail('ORDERPAID', '订单已支付', key);
    return accepted(m, f);
  }
  const c = await findContract(deps.db, m.mchid, { contractId: f.contract_id });
  if (!c || c.status !== 'SIGNED') return fail('CONTRACT_NOT_EXIST', '签约协议不存在或已解约', key);
  const nowMs = await sandboxNowMs(deps.db, 'wechatpay', m.mchid);
  const refused = noticeRule(c, amount, nowMs);
  if (refused) return fail('RULELIMIT', refused, key);

  const order: PapOrder = {
    mchid: m.mchid, outTradeNo: f.out_trade_no!, contractId: c.contractId, transactionId: `4200${digits(24)}`, state: 'ACCEPT', amount,
    data: { appid: m.appid, openid: c.data.openid, body: f.body!, notifyUrl: f.notify_url! },
  };
  const inserted = await deps.db('sandbox_papay_orders')
    .insert({ merchant_id: m.mchid, out_trade_no: order.outTradeNo, contract_id: order.contractId, transaction_id: order.transactionId, trade_state: 'ACCEPT', amount, data: JSON.stringify(order.data), created: Math.floor(nowMs / 1000), updated_ms: Date.now() })
    .onConflict(['merchant_id', 'out_trade_no'])
    .ignore()
    .returning('out_trade_no');
  if (inserted.length === 0) return accepted(m, f);

  // Settled at once (so a query right after the answer knows), notified after the answer.
  const failed = amount % 100 === SCRIPTED_NOT_ENOUGH;
  const settled: PapOrder = failed
    ? { ...order, state: 'PAY_FAIL', data: { ...order.data, errCode: 'NOTENOUGH', errDes: '余额不足' } }
    : { ...order, state: 'SUCCESS', data: { ...order.data, paidMs: nowMs } };
  await deps.db('sandbox_papay_orders').where({ merchant_id: m.mchid, out_trade_no: order.outTradeNo, trade_state: 'ACCEPT' }).update({ trade_state: settled.state, data: JSON.stringify(settled.data), updated_ms: Date.now() });
  if (!failed) {
    // One deduction per notice.
    await moveContract(deps.db, c, 'SIGNED', { ...c.data, notice: { ...c.data.notice!, used: true } });
    const xml = payNotifyXml(m, settled);
    setImmediate(() => void sendXmlNotify(settled.data.notifyUrl, xml, 'normal', deps.logger, { out_trade_no: settled.outTradeNo, trade_type: 'PAP' }));
  }
  if (amount % 100 === SCRIPTED_SYSTEMERROR) return fail('SYSTEMERROR', '系统繁忙，请稍后再试', key);
  return accepted(m, f);
}

/** Why the notice rule refuses this deduction now, or undefined when it allows it. */
function noticeRule(c: SandboxContract, amount: number, nowMs: number): string | undefined {
  const n = c.data.notice;
  if (!n || n.used) return '超出扣款规则限制: 扣款前须先发送预扣费通知 (no pre-deduction notice for this deduction)';
  const first = beijingDay(n.atMs) + 2;
  const today = beijingDay(nowMs);
  if (today < first) return `超出扣款规则限制: 预扣费通知后须等待 (the notice was sent on day ${beijingDay(n.atMs)}; deductions from day ${first}, today is ${today})`;
  if (today >= first + n.days) return `超出扣款规则限制: 已超过扣费期 (deduct_duration of ${n.days} day(s) after the waiting day is over)`;
  if (amount > n.amount) return `超出扣款规则限制: 扣款金额超过预扣费通知的金额 (estimated_amount ${n.amount} fen)`;
  return undefined;
}

function accepted(m: V2Merchant, f: Fields): Answer {
  return { fields: { return_code: 'SUCCESS', return_msg: 'OK', result_code: 'SUCCESS', appid: m.appid, mch_id: m.mchid, nonce_str: f.nonce_str ?? '' }, signWith: m.apiV2Key };
}

function payNotifyXml(m: V2Merchant, o: PapOrder): string {
  const f: Record<string, string> = {
    return_code: 'SUCCESS', result_code: 'SUCCESS', appid: m.appid, mch_id: m.mchid, nonce_str: digits(16), openid: o.data.openid ?? '',
    trade_type: 'PAP', bank_type: 'OTHERS', total_fee: String(o.amount), fee_type: 'CNY', cash_fee: String(o.amount), transaction_id: o.transactionId,
    out_trade_no: o.outTradeNo, time_end: timeEnd(o.data.paidMs ?? Date.now()), contract_id: o.contractId,
  };
  for (const k of Object.keys(f)) if (f[k] === '') delete f[k];
  return buildXml({ ...f, sign: v2Sign(f, m.apiV2Key) });
}

async function papOrderQuery(deps: SandboxDeps, _req: Request, m: V2Merchant, f: Fields): Promise<Answer> {
  const key = m.apiV2Key;
  if (!f.out_trade_no && !f.transaction_id) return fail('PARAM_ERROR', '参数错误: out_trade_no 或 transaction_id 必填', key);
  if (f.appid !== m.appid) return fail('APPID_MCHID_NOT_MATCH', 'appid 与 mch_id 不匹配', key);
  const o = f.out_trade_no ? await findOrder(deps.db, m.mchid, f.out_trade_no) : undefined;
  if (!o) return fail('ORDERNOTEXIST', '此交易订单号不存在', key);
  const paid = o.state === 'SUCCESS';
  const fields: Fields = {
    return_code: 'SUCCESS', return_msg: 'OK', result_code: 'SUCCESS', appid: m.appid, mch_id: m.mchid, nonce_str: digits(16), out_trade_no: o.outTradeNo,
    contract_id: o.contractId, trade_type: 'PAP', trade_state: o.state, total_fee: String(o.amount), fee_type: 'CNY', openid: o.data.openid ?? '',
    trade_state_desc: paid ? '支付成功' : o.state === 'PAY_FAIL' ? `扣款失败: ${o.data.errDes ?? ''}` : '已接收，等待扣款',
    ...(o.state === 'PAY_FAIL' ? { err_code: o.data.errCode ?? 'PAY_FAIL', err_code_des: o.data.errDes ?? '' } : {}),
    ...(paid ? { transaction_id: o.transactionId, cash_fee: String(o.amount), time_end: timeEnd(o.data.paidMs!) } : {}),
  };
  for (const k of Object.keys(fields)) if (fields[k] === '') delete fields[k];
  return { fields, signWith: key };
}
