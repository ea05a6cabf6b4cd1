/**
 * The simulated UnionPay gateway: checks a request as UnionPay does (merchant certificate by
 * certId, signMethod 01 signature, then the fields), and runs consume, query, refund and undo
 * against the simulator's store. Codes: protocols/unionpay.md.
 */
import crypto from 'node:crypto';
import type { SandboxDeps } from '../types.ts';
import { verifySignature } from '../../channels/unionpay/sign.ts';
import { CNY_CODE, ENCODING, VERSION, parseBeijingTime } from '../../channels/unionpay/transform.ts';
import { isCashierUrl, isNotifyUrl } from '../gateway-urls.ts';
import {
  ensureCa, findMerchantByCertId, findTxn, findTxnByQueryId, findTxnOfDay, insertTxn, recordRefund, settleTxn,
  type SandboxMerchant, type SandboxTxn,
} from './store.ts';
import { newQueryId, newTraceNo, notifyFields, respMsgOf, sendNotify } from './notify.ts';

export type Checked = { ok: true; merchant: SandboxMerchant; fields: Record<string, string> } | { ok: false; code: string; message: string };

const refuse = (code: string, what: string): Checked => ({ ok: false, code, message: `${respMsgOf(code)} ${what}` });

/** Common fields and the merchant's signature (certId → its certificate), in UnionPay's order of checks. */
export async function authenticate(deps: SandboxDeps, fields: Record<string, string>): Promise<Checked> {
  for (const name of ['version', 'encoding', 'certId', 'signMethod', 'signature', 'txnType', 'merId'] as const) {
    if (!fields[name]) return refuse('13', `Missing field[${name}]`);
  }
  if (fields.version !== VERSION) return refuse('10', 'Invalid field[version]');
  if (fields.encoding.toUpperCase() !== ENCODING) return refuse('10', 'Invalid field[encoding]');
  if (fields.signMethod !== '01') return refuse('10', 'Invalid field[signMethod]');
  const merchant = await findMerchantByCertId(deps.db, fields.certId!);
  if (!merchant) return refuse('11', 'certId is not a registered merchant certificate');
  if (!verifySignature(fields, merchant.signCert.publicKey)) return refuse('11', 'Signature verification failed');
  if (fields.merId !== merchant.merId) return refuse('11', 'merId is not the certificate owner');
  return { ok: true, merchant, fields };
}

const TIME = /^\d{14}$/;
const now = () => Math.floor(Date.now() / 1000);

function validTime(v: string | undefined): boolean {
  if (!v || !TIME.test(v)) return false;
  try {
    parseBeijingTime(v);
    return true;
  } catch {
    return false;
  }
}

/** txnAmt: fen, digits only, no leading zero, at least 1. */
const validAmount = (v: string | undefined) => Boolean(v && /^[1-9]\d{0,11}$/.test(v));

export type Opened = { ok: true; txn: SandboxTxn } | { ok: false; code: string; message: string };

/** A consume (front trans, txnType 01): the fields checked, the transaction created (or the same one re-opened). */
export async function openConsume(deps: SandboxDeps, merchant: SandboxMerchant, f: Record<string, string>): Promise<Opened> {
  const bad = (code: string, field: string): Opened => ({ ok: false, code, message: `${respMsgOf(code)} Invalid field[${field}]` });
  if (f.txnType !== '01' || f.txnSubType !== '01') return bad('10', 'txnType');
  if (f.bizType !== '000201') return bad('10', 'bizType');
  if (f.channelType !== '07' && f.channelType !== '08') return bad('10', 'channelType');
  if (f.accessType !== '0') return bad('10', 'accessType');
  if (!f.orderId || !/^[A-Za-z0-9]{8,40}$/.test(f.orderId)) return bad('10', 'orderId');
  if (!validTime(f.txnTime)) return bad('10', 'txnTime');
  if (!validAmount(f.txnAmt)) return bad('10', 'txnAmt');
  if (f.currencyCode !== CNY_CODE) return bad('10', 'currencyCode');
  if (!f.frontUrl || !isCashierUrl(deps.publicUrl, f.frontUrl, 'back')) return bad('10', 'frontUrl');
  if (!f.backUrl || !isNotifyUrl(deps.publicUrl, f.backUrl, 'unionpay')) return bad('10', 'backUrl');
  if (f.payTimeout !== undefined && (!validTime(f.payTimeout) || f.payTimeout <= f.txnTime!)) return bad('10', 'payTimeout');
  const payTimeout = f.payTimeout ? parseBeijingTime(f.payTimeout) : undefined;
  if (payTimeout !== undefined && payTimeout <= now()) return { ok: false, code: '01', message: '交易已超时 The order passed its payTimeout' };
  const txn: SandboxTxn = {
    merId: merchant.merId, orderId: f.orderId, txnTime: f.txnTime!, txnType: '01', queryId: newQueryId(), status: 'pending',
    amount: Number(f.txnAmt), amountRefunded: 0,
    data: { channelType: f.channelType, frontUrl: f.frontUrl, backUrl: f.backUrl, payTimeout, reqReserved: f.reqReserved },
  };
  if (await insertTxn(deps.db, txn)) return { ok: true, txn };
  // The same order posted again (the payer reloaded): shown again while unpaid; another one with
  // that orderId the same day is a duplicate.
  const same = await findTxn(deps.db, merchant.merId, f.orderId, f.txnTime!);
  if (same && same.txnType === '01' && same.status === 'pending' && same.amount === txn.amount) return { ok: true, txn: same };
  return { ok: false, code: '12', message: `${respMsgOf('12')} orderId ${f.orderId} was used today` };
}

/** Settles a consume on the payer's word: pay (before payTimeout) or fail. */
export async function settleConsume(deps: SandboxDeps, txn: SandboxTxn, outcome: 'pay' | 'fail'): Promise<{ ok: true; txn: SandboxTxn; changed: boolean } | { ok: false; code: string; message: string }> {
  if (txn.status !== 'pending') {
    const same = (txn.status === 'succeeded') === (outcome === 'pay');
    return same ? { ok: true, txn, changed: false } : { ok: false, code: 'TXN_SETTLED', message: `the order is already ${txn.status}` };
  }
  if (outcome === 'pay' && txn.data.payTimeout !== undefined && txn.data.payTimeout <= now()) {
    return { ok: false, code: 'PAY_TIMEOUT', message: '交易已超时 · the order passed its payTimeout' };
  }
  const data = outcome === 'pay'
    ? { ...txn.data, respCode: '00', paidAt: now(), traceNo: newTraceNo(), settleDate: txn.txnTime.slice(4, 8) }
    : { ...txn.data, respCode: '01' };
  const to = outcome === 'pay' ? 'succeeded' : 'failed';
  if (!(await settleTxn(deps.db, txn, to, data))) {
    const current = await findTxn(deps.db, txn.merId, txn.orderId, txn.txnTime);
    return current ? settleConsume(deps, current, outcome) : { ok: false, code: '34', message: 'no such order' };
  }
  return { ok: true, txn: { ...txn, status: to, data }, changed: true };
}

/** queryTrans.do (txnType 00): by orderId + txnTime, or by queryId. */
export async function queryTrans(deps: SandboxDeps, merchant: SandboxMerchant, f: Record<string, string>): Promise<Record<string, string>> {
  const base = { version: VERSION, encoding: ENCODING, bizType: '000000', txnType: '00', txnSubType: '00', accessType: '0', merId: merchant.merId };
  const answer = (code: string, extra: Record<string, string> = {}) => ({ ...base, ...extra, respCode: code, respMsg: respMsgOf(code) });
  if (f.txnType !== '00' || f.txnSubType !== '00') return answer('10');
  const echo = { ...(f.orderId ? { orderId: f.orderId } : {}), ...(f.txnTime ? { txnTime: f.txnTime } : {}) };
  let txn: SandboxTxn | undefined;
  if (f.queryId) txn = await findTxnByQueryId(deps.db, merchant.merId, f.queryId);
  else if (f.orderId && validTime(f.txnTime)) txn = await findTxn(deps.db, merchant.merId, f.orderId, f.txnTime!);
  else return answer('13', echo);
  if (!txn) return answer('34', echo);
  // An unpaid consume past payTimeout is failed for good.
  const timedOut = txn.status === 'pending' && txn.data.payTimeout !== undefined && txn.data.payTimeout <= now();
  const orig = txn.status === 'succeeded' ? '00' : txn.status === 'failed' || timedOut ? (txn.data.respCode ?? '01') : '05';
  return {
    ...base,
    orderId: txn.orderId, txnTime: txn.txnTime, txnAmt: String(txn.amount), currencyCode: CNY_CODE, queryId: txn.queryId,
    origRespCode: orig, origRespMsg: respMsgOf(orig),
    ...(txn.status === 'succeeded' ? { settleAmt: String(txn.amount), settleCurrencyCode: CNY_CODE, settleDate: txn.data.settleDate ?? '', traceNo: txn.data.traceNo ?? '', traceTime: txn.txnTime.slice(4) } : {}),
    ...(txn.origQryId ? { origQryId: txn.origQryId } : {}),
    respCode: '00', respMsg: respMsgOf('00'),
  };
}

/** backTransReq.do: refund (04) or consume undo (31, same day, full amount). The result notify goes to backUrl. */
export async function backTrans(deps: SandboxDeps, merchant: SandboxMerchant, f: Record<string, string>): Promise<Record<string, string>> {
  const echo: Record<string, string> = { version: VERSION, encoding: ENCODING, bizType: '000201', txnType: f.txnType ?? '', txnSubType: f.txnSubType ?? '', accessType: '0', merId: merchant.merId };
  for (const k of ['orderId', 'txnTime', 'txnAmt', 'origQryId', 'reqReserved'] as const) if (f[k]) echo[k] = f[k]!;
  const answer = (code: string, extra: Record<string, string> = {}) => ({ ...echo, ...extra, respCode: code, respMsg: respMsgOf(code) });
  if (f.txnType !== '04' && f.txnType !== '31') return answer('10');
  if (f.txnSubType !== '00' || f.bizType !== '000201' || f.accessType !== '0') return answer('10');
  if (!f.orderId || !/^[A-Za-z0-9]{8,40}$/.test(f.orderId)) return answer('10');
  if (!validTime(f.txnTime) || !validAmount(f.txnAmt) || !f.origQryId) return answer('13');
  if (f.currencyCode !== undefined && f.currencyCode !== CNY_CODE) return answer('10');
  if (!f.backUrl || !isNotifyUrl(deps.publicUrl, f.backUrl, 'unionpay')) return answer('10');
  const amount = Number(f.txnAmt);
  if (f.txnType === '31') {
    const orig = await findTxnByQueryId(deps.db, merchant.merId, f.origQryId);
    if (!orig || orig.txnTime.slice(0, 8) !== f.txnTime!.slice(0, 8)) return answer('35');
    if (orig.amount !== amount || orig.amountRefunded !== 0) return answer('36');
  }
  const refund: SandboxTxn = {
    merId: merchant.merId, orderId: f.orderId, txnTime: f.txnTime!, txnType: f.txnType, queryId: newQueryId(), origQryId: f.origQryId,
    status: 'succeeded', amount, amountRefunded: 0,
    data: { channelType: f.channelType ?? '07', backUrl: f.backUrl, reqReserved: f.reqReserved, respCode: '00', traceNo: newTraceNo(), settleDate: f.txnTime!.slice(4, 8) },
  };
  const outcome = await recordRefund(deps.db, refund);
  if (outcome.kind === 'duplicate') return answer('12');
  if (outcome.kind === 'original_missing') return answer('35');
  if (outcome.kind === 'exceeds') return answer('36');
  // Accepted now; the result comes by notify (after this answer, as at UnionPay) and by query.
  const ca = await ensureCa(deps.db, deps.masterKey);
  void sendNotify(refund.data.backUrl, notifyFields(ca, refund), 'delay:0', deps.logger);
  return answer('00', { queryId: refund.queryId });
}

/** The payer page's and act()'s token for one order: an HMAC, so only the page that showed the order can settle it. */
export function payerToken(masterKey: Buffer, merId: string, orderId: string, txnTime: string): string {
  return crypto.createHmac('sha256', masterKey).update(`unionpay-sandbox-payer:${merId}:${orderId}:${txnTime}`).digest('base64url');
}

export { findTxn, findTxnOfDay };
