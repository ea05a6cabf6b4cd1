/**
 * The WeChat Pay simulator's 商家转账 (user-confirmation mode, protocols/app-and-money-out.md §5):
 * POST /v3/fund-app/mch-transfer/transfer-bills, GET …/out-bill-no/{no} and …/transfer-bill-no/{id},
 * POST …/out-bill-no/{no}/cancel, signed and checked like every /v3 call (api.ts); and the
 * recipient's WeChat, at /sandbox/wechatpay/transfer: the confirm sheet wx.requestMerchantTransfer
 * opens with {mchId, appId, package}, and the sandbox clock that lets the 24 h window lapse.
 *
 * What it checks as WeChat does: appid bound to the mchid; out_bill_no ≤ 32 letters and digits;
 * transfer_scene_id 1000 (现金营销, report items 活动名称 + 奖励说明) or 1005 (佣金报酬, 岗位类型 +
 * 报酬说明); openid the simulator's payer for that appid or of WeChat's shape (28 of A-Z a-z 0-9 _ -);
 * transfer_amount ≥ 10 fen; transfer_remark 1–32 characters; user_name mandatory from 200000 fen,
 * RSA-OAEP (SHA-1) under the platform key named by Wechatpay-Serial, PARAM_ERROR when it does not
 * decrypt; notify_url only the gateway's own. A repeated out_bill_no with the same terms (the
 * decrypted name, not its randomised ciphertext) answers the bill as it is now; other terms get
 * 400 INVALID_REQUEST 单号已存在但信息不一致 (FAQ pay.weixin.qq.com/doc/v3/merchant/4013778940).
 *
 * Scripted outcomes:
 * - transfer_amount 40301 (403.01 yuan): 403 NOT_ENOUGH, 商户运营账户资金不足; no bill is created.
 * - transfer_amount 50001 (500.01 yuan): the bill IS created (WAIT_USER_CONFIRM), but the first
 *   answer is 500 SYSTEM_ERROR; a query finds the bill, a resubmission answers it.
 * - transfer_amount 40302 (403.02 yuan): the bill is created; when the recipient confirms it ends
 *   FAIL with fail_reason DAY_RECEIVED_QUOTA_EXCEED (the recipient's daily limit, checked at payment).
 * - user_name that decrypts to 不匹配: the bill is created; when the recipient confirms it ends
 *   FAIL with fail_reason NAME_NOT_CORRECT (WeChat checks the name at the recipient's confirmation,
 *   and reports it in fail_reason, not at create).
 * Recipient outcomes (POST /transfer/confirm `action`, or wechatpaySandbox.transferRecipient):
 * confirm → SUCCESS (paid once); decline → FAIL with OTHER_FAIL_REASON_TYPE (WeChat's fail_reason
 * list, doc 4013774966, has no code for a recipient's refusal; 其它失败原因 is its catch-all);
 * cancel → the sheet is closed, nothing changes (as WeChat: the bill waits for its 24 h);
 * expire (POST /transfer/lapse) → the window is over: FAIL with OVERDUE_CLOSE. A merchant cancel
 * before confirmation answers CANCELING, then CANCELLED. Every final state posts
 * MCHTRANSFER.BILL.FINISHED to the bill's notify_url, retried on WeChat's schedule.
 */
import crypto from 'node:crypto';
import express, { type Request, type RequestHandler } from 'express';
import type { SandboxDeps } from '../types.ts';
import { decryptSensitive, TRANSFER_EVENT } from '../../channels/wechatpay/transfers.ts';
import { encryptResource, newNonce } from '../../channels/wechatpay/sign.ts';
import { rfc3339Beijing } from '../../channels/wechatpay/transform.ts';
import { findMerchant, type SandboxMerchant } from './store.ts';
import { newNotifyId, sendNotify, type OutboundNotify } from './notify.ts';
import type { Answer } from './orders.ts';
import { digits, nowSeconds, paramError, sandboxOpenid, v3Error, yuanText, type V3Error } from './wire.ts';
import {
  FINAL_STATES, billPaidCount, findBill, findBillByPackage, findBillByTransferBillNo, insertBill, setConfirmBy, transitionBill,
  type BillData, type BillState, type SandboxTransferBill,
} from './transfer-store.ts';
import { GATEWAY_URL_RULE, isNotifyUrl } from '../gateway-urls.ts';

/** The scripted amounts and name (see the header). */
export const SANDBOX_TRANSFER_NOT_ENOUGH_FEN = 40301;
export const SANDBOX_TRANSFER_SYSTEM_ERROR_FEN = 50001;
export const SANDBOX_TRANSFER_WRONG_NAME = '不匹配';
export const SANDBOX_TRANSFER_DAILY_QUOTA_FEN = 40302;
/** WeChat closes a bill the recipient has not confirmed after 24 hours. */
export const CONFIRM_WINDOW_S = 24 * 3600;

const SCENE_REPORTS: Record<string, readonly string[]> = { '1000': ['活动名称', '奖励说明'], '1005': ['岗位类型', '报酬说明'] };
const OUT_BILL_NO = /^[A-Za-z0-9]{1,32}$/;
const OPENID_SHAPE = /^[A-Za-z0-9_-]{28}$/;

type Json = Record<string, unknown>;
type Run = (fn: (auth: { merchant: SandboxMerchant; body: Json }, req: Request) => Promise<Answer>) => RequestHandler;
const fromError = (e: V3Error): Answer => ({ status: e.status, body: e.body });
const isObject = (v: unknown): v is Json => Boolean(v) && typeof v === 'object' && !Array.isArray(v);
const chars = (s: string) => [...s].length;

/** The /v3/fund-app/mch-transfer routes, behind api.ts's request authentication. */
export function createTransferBillsRouter(deps: SandboxDeps, run: Run): express.Router {
  const router = express.Router();
  router.post('/transfer-bills', run(({ merchant, body }, req) => createBill(deps, merchant, body, req.get('wechatpay-serial'))));
  router.get('/transfer-bills/out-bill-no/:no', run(async ({ merchant }, req) => billAnswer(deps, merchant, await findBill(deps.db, merchant.mchid, String(req.params.no)))));
  router.get('/transfer-bills/transfer-bill-no/:no', run(async ({ merchant }, req) => billAnswer(deps, merchant, await findBillByTransferBillNo(deps.db, merchant.mchid, String(req.params.no)))));
  router.post('/transfer-bills/out-bill-no/:no/cancel', run(({ merchant }, req) => cancelBill(deps, merchant, String(req.params.no))));
  return router;
}

// --- create ----------------------------------------------------------------------------------

interface BillTerms {
  appid: string; outBillNo: string; sceneId: string; openid: string; amount: number; remark: string;
  notifyUrl?: string; userName?: string; digest: string;
}

/** POST /v3/fund-app/mch-transfer/transfer-bills */
export async function createBill(deps: SandboxDeps, merchant: SandboxMerchant, b: Json, serialHeader: string | undefined): Promise<Answer> {
  const terms = billTerms(deps, merchant, b, serialHeader);
  if ('status' in terms) return fromError(terms);
  const existing = await findBill(deps.db, merchant.mchid, terms.outBillNo);
  if (existing) return repeat(deps, merchant, existing, terms.digest);
  if (terms.amount === SANDBOX_TRANSFER_NOT_ENOUGH_FEN) {
    return fromError(v3Error(403, 'NOT_ENOUGH', '商户运营账户资金不足，充值后可以原单号发起重试，请勿更换商户单号'));
  }
  const now = nowSeconds();
  const bill: SandboxTransferBill = {
    mchid: merchant.mchid, outBillNo: terms.outBillNo, transferBillNo: newTransferBillNo(), packageInfo: newPackageInfo(),
    state: 'WAIT_USER_CONFIRM', amount: terms.amount, paidCount: 0,
    data: {
      appid: terms.appid, openid: terms.openid, sceneId: terms.sceneId, remark: terms.remark, notifyUrl: terms.notifyUrl, terms: terms.digest,
      userName: terms.userName, createdAt: now, updatedAt: now, confirmBy: now + CONFIRM_WINDOW_S, notifyId: newNotifyId(),
    },
  };
  if (!(await insertBill(deps.db, bill))) {
    const raced = await findBill(deps.db, merchant.mchid, terms.outBillNo);
    return raced ? repeat(deps, merchant, raced, terms.digest) : fromError(v3Error(500, 'SYSTEM_ERROR', '系统错误'));
  }
  // Scripted: the bill exists, but the answer does not say so.
  if (terms.amount === SANDBOX_TRANSFER_SYSTEM_ERROR_FEN) return fromError(v3Error(500, 'SYSTEM_ERROR', '系统繁忙，请使用相同参数稍后重试'));
  return { status: 200, body: createAnswerOf(bill) };
}

/** A repeated out_bill_no: the same terms get the bill as it is now; other terms are refused. */
async function repeat(deps: SandboxDeps, merchant: SandboxMerchant, bill: SandboxTransferBill, digest: string): Promise<Answer> {
  if (bill.data.terms !== digest) return fromError(v3Error(400, 'INVALID_REQUEST', '单号已存在但信息不一致，请查单后比较确认'));
  return { status: 200, body: createAnswerOf(await closeIfOverdue(deps, merchant, bill, false)) };
}

function billTerms(deps: SandboxDeps, merchant: SandboxMerchant, b: Json, serialHeader: string | undefined): BillTerms | V3Error {
  const appid = b.appid;
  if (typeof appid !== 'string' || !appid) return paramError('body', 'appid', '必填 (required)');
  if (appid !== merchant.appid && appid !== merchant.appAppid) return v3Error(400, 'APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配，请检查后再试 (appid is not bound to this mchid)');
  const outBillNo = b.out_bill_no;
  if (typeof outBillNo !== 'string' || !OUT_BILL_NO.test(outBillNo)) return paramError('body', 'out_bill_no', '1–32 letters and digits');
  const sceneId = b.transfer_scene_id;
  if (typeof sceneId !== 'string' || !sceneId) return paramError('body', 'transfer_scene_id', '必填 (required)');
  const reports = SCENE_REPORTS[sceneId];
  if (!reports) return v3Error(400, 'INVALID_REQUEST', '你尚未获取该转账场景 (the sandbox merchant has scenes 1000 and 1005)');
  const infos = b.transfer_scene_report_infos;
  const given = Array.isArray(infos) ? infos : [];
  const content = (type: string) => given.find((i) => isObject(i) && i.info_type === type && typeof i.info_content === 'string' && i.info_content !== '' && chars(i.info_content) <= 32);
  if (!Array.isArray(infos) || given.length !== reports.length || !reports.every(content)) {
    return v3Error(400, 'PARAM_ERROR', `需传入转账场景报备信息，请检查 (scene ${sceneId} needs exactly: ${reports.join(', ')}, each 1–32 characters)`);
  }
  const openid = b.openid;
  if (typeof openid !== 'string' || !openid) return paramError('body', 'openid', '必填 (required)');
  if (openid !== sandboxOpenid(deps.masterKey, appid) && !OPENID_SHAPE.test(openid)) return paramError('body', 'openid', 'the recipient\'s openid under appid');
  const amount = b.transfer_amount;
  if (!Number.isSafeInteger(amount)) return paramError('body', 'transfer_amount', 'an integer of fen');
  if ((amount as number) < 10) return v3Error(400, 'PARAM_ERROR', '转账金额不能低于0.1元 (transfer_amount is at least 10 fen)');
  const remark = b.transfer_remark;
  if (typeof remark !== 'string' || !remark) return paramError('body', 'transfer_remark', '必填 (required)');
  if (chars(remark) > 32) return paramError('body', 'transfer_remark', 'at most 32 characters');
  let notifyUrl: string | undefined;
  if (b.notify_url !== undefined) {
    if (typeof b.notify_url !== 'string' || !isNotifyUrl(deps.publicUrl, b.notify_url, 'wechatpay')) {
      return paramError('body', 'notify_url', `an absolute URL without query parameters that ${GATEWAY_URL_RULE.notify('wechatpay')}`);
    }
    notifyUrl = b.notify_url;
  }
  if (b.user_recv_perception !== undefined && typeof b.user_recv_perception !== 'string') return paramError('body', 'user_recv_perception', 'a string');
  let userName: string | undefined;
  if (b.user_name !== undefined) {
    if (typeof b.user_name !== 'string' || !b.user_name) return paramError('body', 'user_name', 'the encrypted name (base64)');
    if (serialHeader !== merchant.platformSerial) {
      return v3Error(400, 'PARAM_ERROR', 'Wechatpay-Serial 请求头缺失或有误 (name the WeChat Pay public key id or platform certificate user_name was encrypted with)');
    }
    try {
      userName = decryptSensitive(b.user_name, merchant.platformPrivateKey);
    } catch {
      return v3Error(400, 'PARAM_ERROR', '请确认待处理的消息是否为加密后的密文 (user_name must be RSA-OAEP/SHA-1 under the WeChat Pay public key)');
    }
  } else if ((amount as number) >= 200_000) {
    return v3Error(400, 'PARAM_ERROR', '转账金额>=2000元时，收款用户姓名必填 (user_name is required from 200000 fen)');
  }
  const pick = (t: string) => (content(t) as Json).info_content;
  const digest = crypto.createHash('sha256')
    .update(JSON.stringify([appid, sceneId, openid, amount, remark, notifyUrl ?? null, reports.map(pick), userName ?? null, b.user_recv_perception ?? null]))
    .digest('base64url');
  return { appid, outBillNo, sceneId, openid, amount: amount as number, remark, notifyUrl, userName, digest };
}

// --- query and cancel --------------------------------------------------------------------------

async function billAnswer(deps: SandboxDeps, merchant: SandboxMerchant, bill: SandboxTransferBill | undefined): Promise<Answer> {
  if (!bill) return fromError(v3Error(404, 'NOT_FOUND', '记录不存在'));
  return { status: 200, body: billOf(await closeIfOverdue(deps, merchant, bill, false)) };
}

/** POST …/out-bill-no/{no}/cancel: before the recipient confirms, CANCELING (then CANCELLED, notified). */
export async function cancelBill(deps: SandboxDeps, merchant: SandboxMerchant, outBillNo: string): Promise<Answer> {
  for (let tries = 0; tries < 3; tries++) {
    const found = await findBill(deps.db, merchant.mchid, outBillNo);
    if (!found) return fromError(v3Error(404, 'NOT_FOUND', '记录不存在'));
    const bill = await closeIfOverdue(deps, merchant, found, false);
    const answer = () => ({ status: 200, body: { out_bill_no: bill.outBillNo, transfer_bill_no: bill.transferBillNo, state: bill.state, update_time: rfc3339Beijing(bill.data.updatedAt) } });
    if (bill.state === 'CANCELING' || bill.state === 'CANCELLED') return answer();
    if (bill.state !== 'WAIT_USER_CONFIRM' && bill.state !== 'ACCEPTED' && bill.state !== 'PROCESSING') {
      return fromError(v3Error(400, 'INVALID_REQUEST', `当前转账单状态不支持撤销 (the bill is ${bill.state})`));
    }
    const now = nowSeconds();
    const canceling = await transitionBill(deps.db, bill, 'CANCELING', { ...bill.data, updatedAt: now });
    if (!canceling) continue;
    // WeChat finishes a cancel shortly after accepting it.
    setImmediate(() => void finish(deps, merchant, canceling, 'CANCELLED', {}, true).catch((err) => {
      deps.logger.warn('wechatpay sandbox could not finish a transfer cancel', { out_bill_no: outBillNo, err: (err as Error).message });
    }));
    return { status: 200, body: { out_bill_no: canceling.outBillNo, transfer_bill_no: canceling.transferBillNo, state: 'CANCELING', update_time: rfc3339Beijing(now) } };
  }
  return fromError(v3Error(500, 'SYSTEM_ERROR', '系统繁忙，请稍后重试'));
}

// --- state changes and notifies ----------------------------------------------------------------

/** A bill whose 24 h window is over closes FAIL / OVERDUE_CLOSE on the next look at it. */
async function closeIfOverdue(deps: SandboxDeps, merchant: SandboxMerchant, bill: SandboxTransferBill, awaitNotify: boolean): Promise<SandboxTransferBill> {
  if (bill.state !== 'WAIT_USER_CONFIRM' || bill.data.confirmBy > nowSeconds()) return bill;
  return (await finish(deps, merchant, bill, 'FAIL', { failReason: 'OVERDUE_CLOSE' }, awaitNotify)) ?? (await findBill(deps.db, bill.mchid, bill.outBillNo)) ?? bill;
}

/** Moves a bill to a final state and sends its notify; undefined when another change won. */
async function finish(deps: SandboxDeps, merchant: SandboxMerchant, bill: SandboxTransferBill, to: BillState, extra: Partial<BillData>, awaitNotify: boolean): Promise<SandboxTransferBill | undefined> {
  const moved = await transitionBill(deps.db, bill, to, { ...bill.data, ...extra, updatedAt: nowSeconds() });
  if (!moved) return undefined;
  if (FINAL_STATES.has(to) && moved.data.notifyUrl) {
    const sent = sendNotify(merchant, transferNotify(merchant, moved), 'normal', deps.logger);
    if (awaitNotify) await sent;
  }
  return moved;
}

/** MCHTRANSFER.BILL.FINISHED, its resource sealed with the APIv3 key (original_type and AAD mch_payment). */
export function transferNotify(merchant: SandboxMerchant, bill: SandboxTransferBill): OutboundNotify {
  const plaintext = {
    mchid: bill.mchid, out_bill_no: bill.outBillNo, transfer_bill_no: bill.transferBillNo, state: bill.state, transfer_amount: bill.amount,
    ...(bill.data.failReason ? { fail_reason: bill.data.failReason } : {}),
    openid: bill.data.openid, create_time: rfc3339Beijing(bill.data.createdAt), update_time: rfc3339Beijing(bill.data.updatedAt),
  };
  const nonce = newNonce(12);
  const body = JSON.stringify({
    id: bill.data.notifyId,
    create_time: rfc3339Beijing(nowSeconds()),
    resource_type: 'encrypt-resource',
    event_type: TRANSFER_EVENT,
    summary: '商家转账单据终态通知',
    resource: { original_type: 'mch_payment', algorithm: 'AEAD_AES_256_GCM', ciphertext: encryptResource(JSON.stringify(plaintext), merchant.apiV3Key, nonce, 'mch_payment'), associated_data: 'mch_payment', nonce },
  });
  return { url: bill.data.notifyUrl!, id: bill.data.notifyId, eventType: TRANSFER_EVENT, outTradeNo: bill.outBillNo, body };
}

// --- the recipient's WeChat --------------------------------------------------------------------

export type RecipientAction = 'confirm' | 'decline' | 'cancel';

/**
 * /sandbox/wechatpay/transfer: GET /confirm?mchId&appId&package shows the confirm sheet; POST
 * /confirm takes {mchId, appId, package, openId?, action} (JSON or form) as
 * wx.requestMerchantTransfer hands them over; POST /lapse {mch_id, out_bill_no} is the sandbox
 * clock: the bill's 24 h window ends now.
 */
export function createTransferRecipientRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  const input = [express.urlencoded({ extended: false, limit: '8kb' }), express.json({ limit: '8kb' })];
  const fieldsOf = (req: Request): Record<string, string> => {
    const src = { ...(req.query as Json), ...(isObject(req.body) ? req.body : {}) };
    return Object.fromEntries(Object.entries(src).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  };

  router.get('/confirm', async (req, res) => {
    const f = fieldsOf(req);
    const found = await sheetBill(deps, f);
    if ('error' in found) return res.status(found.status).type('html').send(page(`<p data-error-code="${esc(found.error)}">${esc(found.message)}</p>`));
    const { bill } = found;
    const hidden = ['mchId', 'appId', 'package'].map((k) => `<input type="hidden" name="${k}" value="${esc(f[k] ?? '')}">`).join('');
    const button = (action: RecipientAction, label: string) => `<button type="submit" name="action" value="${action}" data-sandbox-action="${action}">${label}</button>`;
    res.type('html').send(page(`<h1>确认收款 · Confirm receipt</h1><p>¥${yuanText(bill.amount)}</p><p>${esc(bill.data.remark)}</p><p data-state="${bill.state}">${bill.state}</p>`
      + `<form method="post" action="confirm">${hidden}${button('confirm', '确认收款 · Confirm')}${button('decline', '拒绝 · Decline')}${button('cancel', '关闭 · Close')}</form>`));
  });

  router.post('/confirm', ...input, async (req, res) => {
    const f = fieldsOf(req);
    const action = f.action ?? 'confirm';
    const reply = (status: number, body: Json) => (req.is('application/json') ? res.status(status).json(body) : res.status(status).type('html').send(page(`<p data-result="${esc(String(body.state ?? body.code ?? ''))}">${esc(String(body.errMsg))}</p>`)));
    if (action !== 'confirm' && action !== 'decline' && action !== 'cancel') return reply(400, { errMsg: 'requestMerchantTransfer:fail invalid action', code: 'PARAM_ERROR' });
    const found = await sheetBill(deps, f);
    if ('error' in found) return reply(found.status, { errMsg: `requestMerchantTransfer:fail ${found.message}`, code: found.error });
    const { bill, merchant } = found;
    if (action === 'cancel') return reply(200, { errMsg: 'requestMerchantTransfer:fail cancel', state: bill.state });
    const outcome = action === 'decline'
      ? { to: 'FAIL' as const, extra: { failReason: 'OTHER_FAIL_REASON_TYPE' } }
      : bill.data.userName === SANDBOX_TRANSFER_WRONG_NAME
        ? { to: 'FAIL' as const, extra: { failReason: 'NAME_NOT_CORRECT' } }
        : bill.amount === SANDBOX_TRANSFER_DAILY_QUOTA_FEN
          ? { to: 'FAIL' as const, extra: { failReason: 'DAY_RECEIVED_QUOTA_EXCEED' } }
          : { to: 'SUCCESS' as const, extra: {} };
    const moved = await finish(deps, merchant, bill, outcome.to, outcome.extra, true);
    if (!moved) return reply(409, { errMsg: 'requestMerchantTransfer:fail the bill changed meanwhile', code: 'INVALID_REQUEST' });
    reply(200, { errMsg: action === 'confirm' ? 'requestMerchantTransfer:ok' : 'requestMerchantTransfer:fail declined', state: moved.state });
  });

  router.post('/lapse', ...input, async (req, res) => {
    const f = fieldsOf(req);
    const merchant = await findMerchant(deps.db, deps.masterKey, f.mch_id ?? '');
    const bill = merchant && (await findBill(deps.db, merchant.mchid, f.out_bill_no ?? ''));
    if (!merchant || !bill) return res.status(404).json({ code: 'NOT_FOUND', message: '记录不存在' });
    if (bill.state !== 'WAIT_USER_CONFIRM') return res.status(409).json({ code: 'INVALID_REQUEST', message: `the bill is ${bill.state}, not waiting for the recipient` });
    const now = nowSeconds();
    await setConfirmBy(deps.db, bill, now);
    const closed = await closeIfOverdue(deps, merchant, { ...bill, data: { ...bill.data, confirmBy: now } }, true);
    res.json({ out_bill_no: closed.outBillNo, state: closed.state, fail_reason: closed.data.failReason });
  });
  return router;
}

/** The bill a confirm sheet was opened for, checked as WeChat checks requestMerchantTransfer's arguments. */
async function sheetBill(deps: SandboxDeps, f: Record<string, string>): Promise<{ bill: SandboxTransferBill; merchant: SandboxMerchant } | { status: number; error: string; message: string }> {
  const found = f.package ? await findBillByPackage(deps.db, f.package) : undefined;
  const merchant = found && (await findMerchant(deps.db, deps.masterKey, found.mchid));
  if (!found || !merchant) return { status: 404, error: 'INVALID_PACKAGE', message: 'package 无效 · No transfer bill for this package' };
  if (f.mchId !== found.mchid || f.appId !== found.data.appid) return { status: 400, error: 'PARAM_ERROR', message: 'mchId 或 appId 与转账单不一致 · mchId / appId are not the bill\'s' };
  if (f.openId !== undefined && f.openId !== found.data.openid) return { status: 400, error: 'OPENID_MISMATCH', message: '当前用户不是收款用户 · This is not the recipient\'s WeChat' };
  const bill = await closeIfOverdue(deps, merchant, found, true);
  if (bill.state !== 'WAIT_USER_CONFIRM') return { status: 409, error: 'BILL_NOT_CONFIRMABLE', message: `转账单不可确认 · The bill is ${bill.state}` };
  return { bill, merchant };
}

/** Test mode: acts as the recipient of a bill over HTTP (the sheet, or the clock), then the notify has been answered. */
export async function actAsTransferRecipient(deps: SandboxDeps, opts: { merchantId: string; transferNo: string; outcome: 'confirm' | 'decline' | 'expire' }): Promise<void> {
  const bill = await findBill(deps.db, opts.merchantId, opts.transferNo);
  if (!bill) throw new Error(`wechatpay sandbox refused ${opts.outcome} for ${opts.transferNo}: NOT_FOUND no such transfer bill at the simulator`);
  const base = `${deps.publicUrl.replace(/\/$/, '')}/sandbox/wechatpay/transfer`;
  const post = (path: string, body: Json) => fetch(`${base}/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });
  const res = opts.outcome === 'expire'
    ? await post('lapse', { mch_id: bill.mchid, out_bill_no: bill.outBillNo })
    : await post('confirm', { mchId: bill.mchid, appId: bill.data.appid, package: bill.packageInfo, openId: bill.data.openid, action: opts.outcome });
  const answer = (await res.json().catch(() => undefined)) as { code?: string; errMsg?: string; message?: string } | undefined;
  if (!res.ok) throw new Error(`wechatpay sandbox refused ${opts.outcome} for ${opts.transferNo}: ${answer?.code ?? `HTTP ${res.status}`} ${answer?.errMsg ?? answer?.message ?? ''}`.trim());
}

/** How many times the simulator paid the bill out: a test asserts exactly once. */
export const sandboxTransferPaidCount = (deps: Pick<SandboxDeps, 'db'>, mchid: string, outBillNo: string): Promise<number> => billPaidCount(deps.db, mchid, outBillNo);

// --- wire shapes -----------------------------------------------------------------------------

function createAnswerOf(bill: SandboxTransferBill): Json {
  return {
    out_bill_no: bill.outBillNo, transfer_bill_no: bill.transferBillNo, create_time: rfc3339Beijing(bill.data.createdAt), state: bill.state,
    ...(bill.state === 'FAIL' ? { fail_reason: bill.data.failReason } : {}),
    ...(bill.state === 'WAIT_USER_CONFIRM' ? { package_info: bill.packageInfo } : {}),
  };
}

/** A bill as the queries answer it (user_name, sealed on the way in, is not echoed). */
function billOf(bill: SandboxTransferBill): Json {
  return {
    mch_id: bill.mchid, out_bill_no: bill.outBillNo, transfer_bill_no: bill.transferBillNo, appid: bill.data.appid, state: bill.state,
    transfer_amount: bill.amount, transfer_remark: bill.data.remark, ...(bill.data.failReason ? { fail_reason: bill.data.failReason } : {}),
    openid: bill.data.openid, create_time: rfc3339Beijing(bill.data.createdAt), update_time: rfc3339Beijing(bill.data.updatedAt),
  };
}

/** transfer_bill_no: 1330000 + the Beijing date + 22 digits (opaque to merchants). */
const newTransferBillNo = (): string => `1330000${rfc3339Beijing(nowSeconds()).slice(0, 10).replace(/-/g, '')}${digits(22)}`;
/** package_info is opaque; ours is random base64, the only handle the confirm sheet gets. */
const newPackageInfo = (): string => crypto.randomBytes(48).toString('base64');

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (inner: string) => `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>WeChat sandbox · 商家转账</title></head><body>${inner}</body></html>`;
