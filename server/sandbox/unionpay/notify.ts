/**
 * The simulator's outbound messages: the back notify (form-encoded, signed with signPubKeyCert in
 * CRLF) on UnionPay's retry schedule, the front notify the payer's browser posts to frontUrl, and
 * the raw `k=v` answers of the back-end APIs.
 */
import crypto from 'node:crypto';
import type { Logger } from '../../log.ts';
import type { NotifyMode } from '../types.ts';
import { notifyModeOf, notifySchedule, type NotifySchedule } from '../notify-delivery.ts';
import { rawResponseOf, signAsUnionpay } from '../../channels/unionpay/sign.ts';
import { beijingTime, CNY_CODE, ENCODING, VERSION } from '../../channels/unionpay/transform.ts';
import type { SandboxCa, SandboxTxn } from './store.ts';

/** UnionPay sends a back notify at most 5 times, 1, 2, 4 and 5 minutes apart, until it gets HTTP 200. */
export const NOTIFY_RETRY_DELAYS_MS = [1, 2, 4, 5].map((m) => m * 60_000);
const DELIVERY_TIMEOUT_MS = 10_000;

let schedule: NotifySchedule = notifySchedule('unionpay', NOTIFY_RETRY_DELAYS_MS);

/** Compresses the retry schedule (tests): every delay divided by `factor`. */
export function compressNotifyRetries(factor: number): void {
  schedule.cancel();
  schedule = notifySchedule('unionpay', NOTIFY_RETRY_DELAYS_MS.map((ms) => Math.max(1, Math.round(ms / factor))));
}

/** Cancels every scheduled notify (delayed sends and retries), e.g. on shutdown. */
export const cancelScheduledNotifies = (): void => schedule.cancel();
export const scheduledNotifyCount = (): number => schedule.count();

const digits = (n: number) => Array.from({ length: n }, () => String(crypto.randomInt(0, 10))).join('');

/** A 21-digit queryId (UnionPay's serial): Beijing time and 7 random digits. The adapter never parses it. */
export const newQueryId = (): string => beijingTime(Date.now() / 1000) + digits(7);
export const newTraceNo = (): string => digits(6);

const RESP_MSG: Record<string, string> = {
  '00': '成功[0000000]',
  '01': '交易失败[1000001]',
  '05': '交易已受理，请稍后查询交易结果[6154037]',
  '10': '报文格式错误[9100003]',
  '11': '验证签名失败[9100004]',
  '12': '重复交易[2010002]',
  '13': '报文交易要素缺失[9100005]',
  '34': '查无此交易[2600000]',
  '35': '原交易不存在或状态不正确[2011000]',
  '36': '交易金额超限或与原交易不符[2011001]',
};
export const respMsgOf = (code: string): string => RESP_MSG[code] ?? `交易失败[${code}00000]`;

/** The unsigned fields of a transaction's result notify (back and front notify carry the same). */
export function resultFields(txn: SandboxTxn): Record<string, string> {
  const d = txn.data;
  const code = d.respCode ?? '00';
  const p: Record<string, string> = {
    version: VERSION, encoding: ENCODING, signMethod: '01',
    txnType: txn.txnType, txnSubType: txn.txnType === '01' ? '01' : '00', bizType: '000201', accessType: '0',
    acqInsCode: '00000000', merId: txn.merId, orderId: txn.orderId, txnTime: txn.txnTime, txnAmt: String(txn.amount),
    currencyCode: CNY_CODE, queryId: txn.queryId, respCode: code, respMsg: d.respMsg ?? respMsgOf(code),
    settleAmt: String(txn.amount), settleCurrencyCode: CNY_CODE, settleDate: d.settleDate ?? txn.txnTime.slice(4, 8),
    traceNo: d.traceNo ?? '', traceTime: txn.txnTime.slice(4, 14),
  };
  if (txn.origQryId) p.origQryId = txn.origQryId;
  if (d.reqReserved) p.reqReserved = d.reqReserved;
  if (txn.txnType === '01') Object.assign(p, { payType: '0001', payCardType: '01', accNo: '6216***********0018' });
  return p;
}

/** Signed by the simulator's leaf, blanks left out (UnionPay sends no empty fields). */
export function signedBy(ca: SandboxCa, fields: Record<string, string>): Record<string, string> {
  const nonEmpty = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== ''));
  return signAsUnionpay(nonEmpty, ca.leafKey, ca.leafCert);
}

/** The signed result notify of a transaction. */
export function notifyFields(ca: SandboxCa, txn: SandboxTxn): Record<string, string> {
  return signedBy(ca, resultFields(txn));
}

/** A raw `k=v` answer, signed. */
export const signedAnswer = (ca: SandboxCa, fields: Record<string, string>): string => rawResponseOf(signedBy(ca, fields));

/** POSTs one back notify; UnionPay counts HTTP 200 as received, whatever the body. */
async function postNotify(url: string, fields: Record<string, string>, logger: Logger): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
      body: new URLSearchParams(fields).toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await res.arrayBuffer();
    logger.info('unionpay sandbox notify sent', { order_id: fields.orderId, txn_type: fields.txnType, status: res.status, accepted: res.status === 200 });
    return res.status === 200;
  } catch (err) {
    logger.warn('unionpay sandbox notify failed', { order_id: fields.orderId, err: (err as Error).name });
    return false;
  }
}

/** Sends a back notify as the mode says (notify-delivery.ts), re-sent on UnionPay's schedule until answered 200. Never throws. */
export async function sendNotify(url: string | undefined, fields: Record<string, string>, mode: NotifyMode, logger: Logger): Promise<void> {
  if (!url) return;
  await schedule.send(() => postNotify(url, fields, logger), mode, logger, { order_id: fields.orderId });
}

export { notifyModeOf };
