/**
 * The simulator's outbound messages: the async notify (trade_status_sync) with Alipay's retry
 * schedule, the signed browser return, and the fund-out message alipay.fund.trans.order.changed
 * pushed to the app's 应用网关. All are signed with "Alipay"'s private key by the V1 rule (sign
 * and sign_type left out of the signed string).
 */
import crypto from 'node:crypto';
import type { Logger } from '../../log.ts';
import type { NotifyMode } from '../types.ts';
import { notifyModeOf, notifySchedule } from '../notify-delivery.ts';
import { signNotify } from '../../channels/alipay/sign.ts';
import { beijingTime, fenToYuan, nowBeijing } from '../../channels/alipay/transform.ts';
import type { SandboxMerchant, SandboxOrder, SandboxRefund } from './store.ts';
import type { SandboxFundTransfer } from './fund-store.ts';
import { hbFqPayInfo } from './installments.ts';

/** Alipay retries a notify not answered `success` after 4m, 10m, 10m, 1h, 2h, 6h and 15h. */
export const NOTIFY_RETRY_DELAYS_MS = [4, 10, 10, 60, 120, 360, 900].map((m) => m * 60_000);
const DELIVERY_TIMEOUT_MS = 10_000;

const schedule = notifySchedule('alipay', NOTIFY_RETRY_DELAYS_MS);

/** Cancels every scheduled notify (delayed sends and retries), e.g. on shutdown. */
export const cancelScheduledNotifies = (): void => schedule.cancel();

/** How many notifies wait on a timer (delayed sends and retries). */
export const scheduledNotifyCount = (): number => schedule.count();

const yuan = (fen: number) => fenToYuan(fen);

/** Alipay-style notify_id: 36 hex-ish characters, new for each status change. */
export const newNotifyId = (): string => crypto.randomBytes(18).toString('hex');

/** The signed trade_status_sync notify for a trade's current status (or a refund on it). */
export function tradeNotifyParams(merchant: SandboxMerchant, order: SandboxOrder, notifyId: string, refund?: SandboxRefund): Record<string, string> {
  const d = order.data;
  const paid = d.gmtPayment !== undefined;
  const p: Record<string, string> = {
    notify_type: 'trade_status_sync',
    notify_time: nowBeijing(),
    notify_id: notifyId,
    app_id: merchant.appId,
    auth_app_id: merchant.appId,
    charset: 'utf-8',
    version: '1.0',
    sign_type: 'RSA2',
    trade_no: order.tradeNo,
    out_trade_no: order.outTradeNo,
    seller_id: merchant.sellerId,
    trade_status: order.status,
    total_amount: yuan(order.amount),
    subject: d.subject,
    gmt_create: beijingTime(d.gmtCreate),
  };
  if (d.body) p.body = d.body;
  if (d.buyerId) p.buyer_id = d.buyerId;
  if (d.buyerLogonId) p.buyer_logon_id = d.buyerLogonId;
  if (paid) {
    const received = yuan(order.amount);
    Object.assign(p, {
      gmt_payment: beijingTime(d.gmtPayment!),
      receipt_amount: received,
      buyer_pay_amount: received,
      invoice_amount: received,
      point_amount: '0.00',
      fund_bill_list: JSON.stringify([{ amount: received, fundChannel: d.installments ? 'PCREDIT' : 'ALIPAYACCOUNT' }]),
    });
    // A Huabei installment payment: the periods taken, as JSON text like fund_bill_list.
    if (d.installments) p.hb_fq_pay_info = JSON.stringify(hbFqPayInfo(d.installments, order.amount));
  }
  if (d.gmtClose !== undefined) p.gmt_close = beijingTime(d.gmtClose);
  if (refund) {
    // Refund notifies carry the trade's cumulative refund_fee and our out_request_no as out_biz_no.
    Object.assign(p, { refund_fee: yuan(order.amountRefunded), gmt_refund: `${beijingTime(refund.gmtRefund)}.000`, out_biz_no: refund.outRequestNo });
  }
  p.sign = signNotify(p, merchant.alipayPrivateKey);
  return p;
}

/** The signed parameters Alipay appends to return_url after a page payment. */
export function returnParams(merchant: SandboxMerchant, order: SandboxOrder): Record<string, string> {
  const p: Record<string, string> = {
    charset: 'utf-8',
    out_trade_no: order.outTradeNo,
    method: `${order.data.method}.return`,
    total_amount: yuan(order.amount),
    trade_no: order.tradeNo,
    auth_app_id: merchant.appId,
    version: '1.0',
    app_id: merchant.appId,
    seller_id: merchant.sellerId,
    timestamp: nowBeijing(),
    sign_type: 'RSA2',
  };
  p.sign = signNotify(p, merchant.alipayPrivateKey);
  return p;
}

/** POSTs one notify; true only for HTTP 2xx with the exact body `success`. */
async function postNotify(url: string, params: Record<string, string>, logger: Logger, about: Record<string, unknown> = { out_trade_no: params.out_trade_no }): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: new URLSearchParams(params).toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    const answer = await res.text();
    const ok = res.status >= 200 && res.status < 300 && answer === 'success';
    logger.info('alipay sandbox notify sent', { ...about, notify_id: params.notify_id, status: res.status, accepted: ok });
    return ok;
  } catch (err) {
    logger.warn('alipay sandbox notify failed', { ...about, notify_id: params.notify_id, err: (err as Error).name });
    return false;
  }
}

/**
 * Sends a notify as the mode says (see notify-delivery.ts), re-sent on Alipay's schedule with
 * the same notify_id until it is answered `success`. Never throws.
 */
export async function sendNotify(url: string | undefined, params: Record<string, string>, mode: NotifyMode, logger: Logger): Promise<void> {
  if (!url) return;
  await schedule.send(() => postNotify(url, params, logger), mode, logger, { out_trade_no: params.out_trade_no, notify_id: params.notify_id });
}

// --- fund-out messages (消息服务) ---------------------------------------------------------------

export const FUND_MESSAGE_METHOD = 'alipay.fund.trans.order.changed';

/**
 * Test switch: out_biz_nos whose order.changed messages are not sent (or all, with '*'), so a
 * test can show that a query alone settles a transfer. Process-wide, like the notify timers.
 */
const droppedFundMessages = new Set<string>();

/** Stops order.changed messages for one out_biz_no, or for every transfer when called without one. */
export function dropFundMessages(outBizNo = '*'): void {
  droppedFundMessages.add(outBizNo);
}

/** Undoes dropFundMessages: for one out_biz_no, or every drop when called without one. */
export function resumeFundMessages(outBizNo?: string): void {
  if (outBizNo === undefined) droppedFundMessages.clear();
  else droppedFundMessages.delete(outBizNo);
}

const fundMessageDropped = (outBizNo: string) => droppedFundMessages.has('*') || droppedFundMessages.has(outBizNo);

/**
 * The signed form of alipay.fund.trans.order.changed for a transfer's current status
 * (protocols/app-and-money-out.md §4.2): biz_content is JSON text; utc_timestamp is in ms.
 */
export function fundMessageParams(merchant: SandboxMerchant, t: SandboxFundTransfer): Record<string, string> {
  const p: Record<string, string> = {
    msg_method: FUND_MESSAGE_METHOD,
    app_id: merchant.appId,
    version: '1.1',
    charset: 'utf-8',
    sign_type: 'RSA2',
    utc_timestamp: String(Date.now()),
    notify_id: t.data.notifyId,
    biz_content: JSON.stringify({
      out_biz_no: t.outBizNo,
      order_id: t.orderId,
      pay_fund_order_id: t.payFundOrderId,
      product_code: t.data.productCode,
      biz_scene: t.data.bizScene,
      origin_interface: 'alipay.fund.trans.uni.transfer',
      status: t.status,
      action_type: 'FINISH',
      trans_amount: yuan(t.amount),
      ...(t.data.payDate !== undefined ? { pay_date: beijingTime(t.data.payDate) } : {}),
    }),
  };
  p.sign = signNotify(p, merchant.alipayPrivateKey);
  return p;
}

/**
 * Pushes a transfer's order.changed message to the app's 应用网关 (none stored → none sent), on
 * the notify schedule with one notify_id until answered `success`. Dropped when the test switch
 * or the transfer's own script says so. Never throws.
 */
export async function sendFundMessage(merchant: SandboxMerchant, t: SandboxFundTransfer, logger: Logger, dropScripted = false): Promise<void> {
  const url = merchant.appGatewayUrl;
  if (!url) return;
  const params = fundMessageParams(merchant, t);
  const about = { msg_method: FUND_MESSAGE_METHOD, out_biz_no: t.outBizNo };
  const mode: NotifyMode = dropScripted || fundMessageDropped(t.outBizNo) ? 'drop' : 'normal';
  await schedule.send(() => postNotify(url, params, logger, about), mode, logger, { ...about, notify_id: params.notify_id });
}

export { notifyModeOf };
