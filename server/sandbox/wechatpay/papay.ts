/**
 * The simulator's 委托代扣 contracts (protocols/recurring.md §2.1, §2.5): the 公众号 signing page
 * (GET /sandbox/wechatpay/papay/entrustweb, its v2 MD5 sign checked with the merchant's v2 key),
 * the WeChat user's hands on it (sign, refuse) and later in WeChat (cancel: 解约), the signed
 * XML contract notifies (ADD to the signing's notify_url; DELETE to the template's 解约回调地址,
 * which in the simulator is that same notify_url: the gateway's /notify/wechatpay/<app>), and
 * querycontract / deletecontract over the v2 listener. Contracts live in sandbox_agreements
 * (provider 'wechatpay'): SIGNING (page opened, not signed), SIGNED, TERMINATED.
 */
import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Knex } from 'knex';
import type { Logger } from '../../log.ts';
import type { NotifyMode, SandboxDeps } from '../types.ts';
import { parseJson } from '../../db.ts';
import { timingSafeEqualStr } from '../../crypto.ts';
import { buildXml, parseXml, textFields, v2Sign, verifyV2Sign } from '../../channels/wechatpay/v2.ts';
import { isNotifyUrl } from '../gateway-urls.ts';
import { notifyModeOf, notifySchedule } from '../notify-delivery.ts';
import { findV2Merchant, type V2Merchant } from './redpack-store.ts';
import { insertV2Row, readV2Row } from './v2-tls.ts';
import { digits, sandboxOpenid } from './wire.ts';
import { fail, type Answer, type Fields } from './redpack.ts';

const PROVIDER = 'wechatpay';
/** WeChat re-sends a contract notify at 0/10/10/10/30/30/30 s, then every 300 s (~30 times). */
export const CONTRACT_NOTIFY_DELAYS_MS = [10, 10, 10, 30, 30, 30, ...Array(23).fill(300)].map((s: number) => s * 1000);
const schedule = notifySchedule('wechatpay papay', CONTRACT_NOTIFY_DELAYS_MS);
/** A contract expires at WeChat's "long-term" date unless the template says otherwise. */
const EXPIRES = '2099-12-31 23:59:59';

export type ContractStatus = 'SIGNING' | 'SIGNED' | 'TERMINATED';

export interface PreDeductNotice {
  /** The simulator's time of the notice, ms. */
  atMs: number;
  /** estimated_amount, fen: no deduction after it may take more. */
  amount: number;
  /** deduct_duration.count (DAY). */
  days: number;
  /** A successful deduction uses the notice up: the next one needs a notice of its own. */
  used?: boolean;
}

export interface ContractData {
  planId: string;
  displayAccount: string;
  notifyUrl: string;
  requestSerial: string;
  openid?: string;
  signedAt?: number;
  terminatedAt?: number;
  /** contract_termination_mode: 2 the user, 3 the merchant's API. */
  terminationMode?: '2' | '3';
  remark?: string;
  notice?: PreDeductNotice;
}

export interface SandboxContract {
  mchid: string;
  contractCode: string;
  contractId: string;
  status: ContractStatus;
  data: ContractData;
}

const nowS = () => Math.floor(Date.now() / 1000);
const beijingTime = (unix: number) => new Date(unix * 1000 + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');

// --- the merchant's template -----------------------------------------------------------------------

/** A sandbox merchant's 委托代扣 template: its plan_id, drawn at provisioning (index.ts draftMerchant). */
export async function registerPapayPlan(db: Knex, masterKey: Buffer, mchid: string): Promise<{ papay_plan_id: string }> {
  const planId = `1${digits(5)}`;
  if (!(await insertV2Row(db, masterKey, `papay:${mchid}`, { plan_id: planId }))) throw new Error(`wechatpay sandbox: mchid ${mchid} already has a papay plan`);
  return { papay_plan_id: planId };
}

export async function planOf(db: Knex, masterKey: Buffer, mchid: string): Promise<string | undefined> {
  return (await readV2Row<{ plan_id: string }>(db, masterKey, `papay:${mchid}`))?.plan_id;
}

// --- storage -----------------------------------------------------------------------------------------

function contractOf(r: any): SandboxContract {
  return { mchid: r.merchant_id, contractCode: r.external_agreement_no, contractId: r.agreement_no, status: r.status, data: parseJson<ContractData>(r.data, {} as ContractData) };
}

export async function findContract(db: Knex, mchid: string, by: { contractCode?: string; contractId?: string }): Promise<SandboxContract | undefined> {
  const q = db('sandbox_agreements').where({ provider: PROVIDER, merchant_id: mchid });
  if (by.contractId) q.where('agreement_no', by.contractId);
  else if (by.contractCode) q.where('external_agreement_no', by.contractCode);
  else return undefined;
  const r = await q.first();
  return r ? contractOf(r) : undefined;
}

/** Moves a contract conditionally on its status; false when another writer moved it first. */
export async function moveContract(db: Knex, c: SandboxContract, to: ContractStatus, data: ContractData): Promise<boolean> {
  const n = await db('sandbox_agreements')
    .where({ provider: PROVIDER, merchant_id: c.mchid, external_agreement_no: c.contractCode, status: c.status })
    .update({ status: to, data: JSON.stringify(data), updated_ms: Date.now() });
  return n === 1;
}

/** The capability that lets the WeChat user (or a test) act on one contract. */
export function contractSignerToken(masterKey: Buffer, mchid: string, contractCode: string): string {
  return crypto.createHmac('sha256', masterKey).update(`wechatpay-sandbox-papay\n${mchid}\n${contractCode}`).digest('base64url').slice(0, 32);
}

// --- notifies ----------------------------------------------------------------------------------------

/** The signed XML contract notify of a contract's current state (ADD when signed, DELETE when terminated). */
export function contractNotifyXml(m: V2Merchant, c: SandboxContract): string {
  const d = c.data;
  const add = c.status === 'SIGNED';
  const f: Record<string, string> = {
    return_code: 'SUCCESS', return_msg: 'OK', result_code: 'SUCCESS', mch_id: m.mchid, appid: m.appid, contract_code: c.contractCode, plan_id: d.planId,
    openid: d.openid ?? '', change_type: add ? 'ADD' : 'DELETE', operate_time: beijingTime((add ? d.signedAt : d.terminatedAt) ?? nowS()),
    contract_id: c.contractId, contract_expired_time: EXPIRES, request_serial: d.requestSerial,
    ...(add ? {} : { contract_termination_mode: d.terminationMode ?? '2' }),
  };
  for (const k of Object.keys(f)) if (f[k] === '') delete f[k];
  return buildXml({ ...f, sign: v2Sign(f, m.apiV2Key) });
}

/** POSTs a v2 XML notify; delivered only when the answer is XML with return_code SUCCESS. */
async function postXmlNotify(url: string, body: string, logger: Logger, fields: Record<string, string>): Promise<boolean> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/xml; charset=utf-8' }, body, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    let ok = false;
    try {
      ok = res.status === 200 && textFields(parseXml(text)).return_code === 'SUCCESS';
    } catch {
      ok = false;
    }
    logger.info('wechatpay sandbox v2 notify sent', { ...fields, status: res.status, accepted: ok });
    return ok;
  } catch (err) {
    logger.warn('wechatpay sandbox v2 notify failed', { ...fields, err: (err as Error).name });
    return false;
  }
}

/** Sends a v2 XML notify as the mode says, re-sent on WeChat's schedule until it is acknowledged. Never throws. */
export async function sendXmlNotify(url: string, body: string, mode: NotifyMode, logger: Logger, fields: Record<string, string>): Promise<void> {
  await schedule.send(() => postXmlNotify(url, body, logger, fields), mode, logger, fields);
}

export const cancelPapayNotifies = (): void => schedule.cancel();

// --- the WeChat user ---------------------------------------------------------------------------------

export type ContractActed = { ok: true; contract: SandboxContract; changed: boolean } | { ok: false; code: string; message: string };

/**
 * The WeChat user's actions: sign (SIGNING → SIGNED, ADD to notify_url), refuse (stays SIGNING,
 * nothing is notified: only successes are), cancel later in WeChat (SIGNED → TERMINATED, mode 2,
 * DELETE to the template's unsign URL).
 */
export async function actOnContract(deps: SandboxDeps, m: V2Merchant, c: SandboxContract, action: 'sign' | 'refuse' | 'cancel', mode: NotifyMode = 'normal'): Promise<ContractActed> {
  if (action === 'refuse') return c.status === 'SIGNING' ? { ok: true, contract: c, changed: false } : { ok: false, code: 'CONTRACT_STATE_ERROR', message: '协议状态不正确' };
  if (action === 'sign') {
    if (c.status === 'SIGNED') return { ok: true, contract: c, changed: false };
    if (c.status !== 'SIGNING') return { ok: false, code: 'CONTRACT_STATE_ERROR', message: '协议已解约 · This contract was terminated' };
    const data = { ...c.data, signedAt: nowS(), openid: sandboxOpenid(deps.masterKey, m.appid) };
    if (!(await moveContract(deps.db, c, 'SIGNED', data))) return { ok: false, code: 'CONTRACT_STATE_ERROR', message: '协议状态已变化' };
    const signed = { ...c, status: 'SIGNED' as const, data };
    await sendXmlNotify(data.notifyUrl, contractNotifyXml(m, signed), mode, deps.logger, { contract_code: c.contractCode, change_type: 'ADD' });
    return { ok: true, contract: signed, changed: true };
  }
  const ended = await terminateContract(deps, c, '2', '用户解约');
  if (ended.ok && ended.changed) await sendXmlNotify(ended.contract.data.notifyUrl, contractNotifyXml(m, ended.contract), mode, deps.logger, { contract_code: c.contractCode, change_type: 'DELETE' });
  return ended;
}

async function terminateContract(deps: SandboxDeps, c: SandboxContract, mode: '2' | '3', remark: string): Promise<ContractActed> {
  if (c.status === 'TERMINATED') return { ok: true, contract: c, changed: false };
  if (c.status !== 'SIGNED') return { ok: false, code: 'CONTRACT_NOT_EXIST', message: '签约协议不存在 · Not signed' };
  const data: ContractData = { ...c.data, terminatedAt: nowS(), terminationMode: mode, remark };
  if (!(await moveContract(deps.db, c, 'TERMINATED', data))) return { ok: false, code: 'CONTRACT_STATE_ERROR', message: '协议状态已变化' };
  return { ok: true, contract: { ...c, status: 'TERMINATED', data }, changed: true };
}

/** For test drivers: the WeChat user acts on the contract of this contract_code (as the page's buttons do). */
export async function actAsPapayUser(deps: SandboxDeps, opts: { mchid: string; contractCode: string; action: 'sign' | 'refuse' | 'cancel'; notify?: NotifyMode }): Promise<SandboxContract> {
  const m = await findV2Merchant(deps.db, deps.masterKey, opts.mchid);
  const c = m && (await findContract(deps.db, opts.mchid, { contractCode: opts.contractCode }));
  if (!m || !c) throw new Error(`wechatpay sandbox refused ${opts.action}: no contract ${opts.contractCode} (it exists once its signing page was opened)`);
  const acted = await actOnContract(deps, m, c, opts.action, opts.notify);
  if (!acted.ok) throw new Error(`wechatpay sandbox refused ${opts.action}: ${acted.code} ${acted.message}`);
  return acted.contract;
}

// --- the signing page ----------------------------------------------------------------------------------

const ENTRUST_REQUIRED = ['appid', 'mch_id', 'plan_id', 'contract_code', 'request_serial', 'contract_display_account', 'notify_url', 'version', 'timestamp', 'sign'];

/** Checks an entrustweb request as WeChat does and stores the SIGNING contract (a repeat of a SIGNING one opens it again). */
async function openContract(deps: SandboxDeps, q: Fields): Promise<{ ok: true; merchant: V2Merchant; contract: SandboxContract } | { ok: false; status: number; code: string; message: string }> {
  const bad = (code: string, message: string, status = 400) => ({ ok: false as const, status, code, message });
  const missing = ENTRUST_REQUIRED.find((k) => !q[k]);
  if (missing) return bad('PARAM_ERROR', `参数错误: ${missing} 必填`);
  const m = await findV2Merchant(deps.db, deps.masterKey, q.mch_id!);
  if (!m) return bad('PARAM_ERROR', 'mch_id 商户号不存在');
  // The sign covers the raw values (notify_url not encoded), sign excluded.
  if (!verifyV2Sign(q, m.apiV2Key)) return bad('SIGNERROR', '签名错误 (MD5 over the sorted non-empty fields, raw values, then &key=<API v2 key>)');
  if (q.appid !== m.appid) return bad('APPID_MCHID_NOT_MATCH', 'appid 与 mch_id 不匹配');
  if (q.plan_id !== (await planOf(deps.db, deps.masterKey, m.mchid))) return bad('PLAN_NOT_EXIST', '模板不存在 (plan_id is not this merchant\'s 委托代扣 template)');
  if (q.version !== '1.0') return bad('PARAM_ERROR', 'version 须为 1.0');
  if (!/^\d{10}$/.test(q.timestamp!) || Math.abs(Number(q.timestamp) - nowS()) > 600) return bad('PARAM_ERROR', 'timestamp 须为 10 位秒级时间戳，且在当前时间前后 10 分钟内');
  if (!/^\d{1,12}$/.test(q.request_serial!)) return bad('PARAM_ERROR', 'request_serial 须为不超过 12 位的整数');
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(q.contract_code!)) return bad('PARAM_ERROR', 'contract_code 须为 32 位以内的字母、数字');
  if (!isNotifyUrl(deps.publicUrl, q.notify_url!, 'wechatpay')) return bad('PARAM_ERROR', "notify_url must be this gateway's /notify/wechatpay/…");
  const existing = await findContract(deps.db, m.mchid, { contractCode: q.contract_code });
  if (existing) {
    if (existing.status === 'SIGNING') return { ok: true, merchant: m, contract: existing };
    return bad('CONTRACT_CODE_USED', '该签约协议号已签约或已解约 · This contract_code was signed or terminated already', 409);
  }
  const data: ContractData = { planId: q.plan_id!, displayAccount: q.contract_display_account!, notifyUrl: q.notify_url!, requestSerial: q.request_serial! };
  await deps.db('sandbox_agreements')
    .insert({ provider: PROVIDER, merchant_id: m.mchid, external_agreement_no: q.contract_code, agreement_no: `2${digits(20)}`, status: 'SIGNING', data: JSON.stringify(data), created: nowS(), updated_ms: Date.now() })
    .onConflict(['provider', 'merchant_id', 'external_agreement_no'])
    .ignore();
  const stored = await findContract(deps.db, m.mchid, { contractCode: q.contract_code });
  return stored?.status === 'SIGNING' ? { ok: true, merchant: m, contract: stored } : bad('CONTRACT_CODE_USED', '该签约协议号已被使用', 409);
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function page(res: Response, status: number, title: string, inner: string): void {
  const nonce = esc(String(res.locals.cspNonce ?? ''));
  res.status(status).type('html').send(`<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex"><title>${esc(title)} · WeChat Pay sandbox</title>
<style nonce="${nonce}">body{margin:0;font:14px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f5f5f5;color:#1f1f1f}header{background:#07c160;color:#fff;padding:12px 20px;font-weight:700;font-size:18px}main{max-width:520px;margin:32px auto;background:#fff;border-radius:8px;padding:24px}dl{display:grid;grid-template-columns:max-content 1fr;gap:6px 16px}dt{color:#666}dd{margin:0}form{display:inline}button{font:inherit;padding:8px 20px;border-radius:6px;border:1px solid #07c160;margin-right:8px;cursor:pointer;background:#fff;color:#07a550}button.sign{background:#07c160;color:#fff}</style>
</head><body><header>微信支付 WeChat Pay · 沙箱 Sandbox</header><main>${inner}</main></body></html>`);
}

function errorPage(res: Response, status: number, code: string, message: string): void {
  page(res, status, '签约失败', `<h1>签约失败 · Cannot sign</h1><p data-error-code="${esc(code)}">${esc(code)}: ${esc(message)}</p>`);
}

export function createPapayPageRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  router.get('/entrustweb', async (req: Request, res: Response) => {
    const q: Fields = {};
    for (const [k, v] of Object.entries(req.query)) if (typeof v === 'string') q[k] = v;
    const opened = await openContract(deps, q);
    if (!opened.ok) return errorPage(res, opened.status, opened.code, opened.message);
    const c = opened.contract;
    const token = contractSignerToken(deps.masterKey, c.mchid, c.contractCode);
    const buttons = ([['sign', '同意并开通 · Agree'], ['refuse', '放弃 · Refuse']] as const).map(([action, label]) => `<form method="post" action="${esc(`${req.baseUrl}/action`)}">
<input type="hidden" name="mch_id" value="${esc(c.mchid)}"><input type="hidden" name="contract_code" value="${esc(c.contractCode)}"><input type="hidden" name="t" value="${esc(token)}"><input type="hidden" name="action" value="${action}">
<button type="submit" class="${action}" data-sandbox-action="${action}">${label}</button></form>`).join('\n');
    page(res, 200, '开通免密支付', `<h1 data-sandbox-contract="${esc(c.contractCode)}">开通自动扣费 · Allow auto-debit</h1><dl><dt>商户号 · Merchant</dt><dd>${esc(c.mchid)}</dd><dt>模板 · Plan</dt><dd>${esc(c.data.planId)}</dd><dt>账户 · Account</dt><dd>${esc(c.data.displayAccount)}</dd></dl>${buttons}`);
  });

  // The page's buttons, the user's 解约 in WeChat later (action cancel), and the tests' hands.
  router.post('/action', express.urlencoded({ extended: false, limit: '8kb' }), express.json({ limit: '8kb' }), async (req: Request, res: Response) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const field = (k: string) => (typeof b[k] === 'string' ? (b[k] as string) : '');
    const wantsJson = req.is('application/json') === 'application/json' || String(req.get('accept') ?? '').includes('application/json');
    const refuse = (status: number, code: string, message: string) => (wantsJson ? res.status(status).json({ ok: false, error: { code, message } }) : errorPage(res, status, code, message));
    const mchid = field('mch_id');
    const code = field('contract_code');
    const action = field('action');
    if (!mchid || !code || !timingSafeEqualStr(field('t'), contractSignerToken(deps.masterKey, mchid, code))) return refuse(403, 'INVALID_TOKEN', '无效的签约请求 · This signing link is not valid');
    if (action !== 'sign' && action !== 'refuse' && action !== 'cancel') return refuse(400, 'INVALID_ACTION', 'action must be sign, refuse or cancel');
    const m = await findV2Merchant(deps.db, deps.masterKey, mchid);
    const c = m && (await findContract(deps.db, mchid, { contractCode: code }));
    if (!m || !c) return refuse(404, 'CONTRACT_NOT_EXIST', '签约协议不存在 · No such contract');
    const acted = await actOnContract(deps, m, c, action, notifyModeOf(b.notify as string | undefined, b.notify_delay as string | undefined));
    if (!acted.ok) return refuse(409, acted.code, acted.message);
    if (wantsJson) return res.json({ ok: true, status: acted.contract.status, contract_id: acted.contract.status === 'SIGNING' ? undefined : acted.contract.contractId });
    page(res, 200, '完成', `<h1>${action === 'sign' ? '签约成功 · Auto-debit signed' : action === 'refuse' ? '已放弃签约 · Signing refused' : '已解约 · Auto-debit cancelled'}</h1>`);
  });
  return router;
}

// --- v2 API: querycontract, deletecontract ------------------------------------------------------------

async function contractOfRequest(deps: SandboxDeps, m: V2Merchant, f: Fields): Promise<SandboxContract | Answer> {
  const key = m.apiV2Key;
  if (f.appid !== m.appid) return fail('APPID_MCHID_NOT_MATCH', 'appid 与 mch_id 不匹配', key);
  if (f.version !== '1.0') return fail('PARAM_ERROR', '参数错误: version 须为 1.0', key);
  if (!f.contract_id && !(f.plan_id && f.contract_code)) return fail('PARAM_ERROR', '参数错误: contract_id 或 plan_id + contract_code 必填', key);
  const c = await findContract(deps.db, m.mchid, f.contract_id ? { contractId: f.contract_id } : { contractCode: f.contract_code });
  if (!c || c.status === 'SIGNING' || (!f.contract_id && c.data.planId !== f.plan_id)) return fail('CONTRACT_NOT_EXIST', '签约协议不存在', key);
  return c;
}

export async function queryContractRoute(deps: SandboxDeps, _req: Request, m: V2Merchant, f: Fields): Promise<Answer> {
  const c = await contractOfRequest(deps, m, f);
  if (!('contractId' in c)) return c;
  const d = c.data;
  const signed = c.status === 'SIGNED';
  const fields: Fields = {
    return_code: 'SUCCESS', return_msg: 'OK', result_code: 'SUCCESS', mch_id: m.mchid, appid: m.appid, plan_id: d.planId, contract_code: c.contractCode, contract_id: c.contractId,
    request_serial: d.requestSerial, contract_display_account: d.displayAccount, openid: d.openid ?? '', contract_state: signed ? '0' : '1',
    contract_signed_time: d.signedAt ? beijingTime(d.signedAt) : '', contract_expired_time: EXPIRES,
    ...(signed ? { contract_termination_mode: '0' } : { contract_terminated_time: beijingTime(d.terminatedAt ?? nowS()), contract_termination_mode: d.terminationMode ?? '2', contract_termination_remark: d.remark ?? '' }),
  };
  for (const k of Object.keys(fields)) if (fields[k] === '') delete fields[k];
  return { fields, signWith: m.apiV2Key };
}

export async function deleteContractRoute(deps: SandboxDeps, _req: Request, m: V2Merchant, f: Fields): Promise<Answer> {
  const c = await contractOfRequest(deps, m, f);
  if (!('contractId' in c)) return c;
  if (!f.contract_termination_remark) return fail('PARAM_ERROR', '参数错误: contract_termination_remark 必填', m.apiV2Key);
  const ended = await terminateContract(deps, c, '3', f.contract_termination_remark);
  if (!ended.ok) return fail(ended.code, ended.message, m.apiV2Key);
  // The merchant's termination is notified too, to the template's unsign URL, after the answer.
  if (ended.changed) {
    const xml = contractNotifyXml(m, ended.contract);
    setImmediate(() => void sendXmlNotify(ended.contract.data.notifyUrl, xml, 'normal', deps.logger, { contract_code: c.contractCode, change_type: 'DELETE' }));
  }
  return { fields: { return_code: 'SUCCESS', return_msg: 'OK', result_code: 'SUCCESS', mch_id: m.mchid, appid: m.appid, contract_id: c.contractId, plan_id: c.data.planId, contract_code: c.contractCode }, signWith: m.apiV2Key };
}
