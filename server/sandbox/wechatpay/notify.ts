/**
 * The simulator's notifies, sent exactly as WeChat Pay sends them: a JSON envelope whose resource
 * is encrypted with the merchant's APIv3 key (AEAD_AES_256_GCM), signed headers from the
 * platform key (fresh for every delivery, so a retry hours later still passes the 5-minute
 * window), and WeChat's retry schedule until a 2xx comes back.
 */
import crypto from 'node:crypto';
import type { Logger } from '../../log.ts';
import type { NotifyMode } from '../types.ts';
import { notifyModeOf, notifySchedule } from '../notify-delivery.ts';
import { encryptResource, newNonce, signedHeaders } from '../../channels/wechatpay/sign.ts';
import { rfc3339Beijing } from '../../channels/wechatpay/transform.ts';
import type { SandboxMerchant, SandboxOrder, SandboxRefund } from './store.ts';
import { nowSeconds, refundNoticeOf, transactionOf } from './wire.ts';

/** WeChat retries a notify not answered 2xx after 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h. */
export const NOTIFY_RETRY_DELAYS_MS = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600].map((s) => s * 1000);
/** WeChat waits 5 s for an answer; the simulator is a little more patient with slow test machines. */
const DELIVERY_TIMEOUT_MS = 10_000;

const schedule = notifySchedule('wechatpay', NOTIFY_RETRY_DELAYS_MS);

/** Cancels every scheduled notify (delayed sends and retries), e.g. on shutdown. */
export const cancelScheduledNotifies = (): void => schedule.cancel();

/** How many notifies wait on a timer (delayed sends and retries). */
export const scheduledNotifyCount = (): number => schedule.count();

/** One notify, encrypted once; its headers are signed at each delivery. */
export interface OutboundNotify {
  url: string;
  id: string;
  eventType: string;
  outTradeNo: string;
  body: string;
}

/** A WeChat-style notify id (a UUID), new for each event; retries and duplicates repeat it. */
export const newNotifyId = (): string => crypto.randomUUID();

/** Encrypts a plaintext into a notify envelope as WeChat Pay does (also for test drivers that need an odd one). */
export function buildNotify(merchant: SandboxMerchant, url: string, id: string, eventType: string, summary: string, originalType: 'transaction' | 'refund', plaintext: Record<string, unknown>): OutboundNotify {
  const nonce = newNonce(12);
  const body = JSON.stringify({
    id,
    create_time: rfc3339Beijing(nowSeconds()),
    resource_type: 'encrypt-resource',
    event_type: eventType,
    summary,
    resource: {
      original_type: originalType,
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: encryptResource(JSON.stringify(plaintext), merchant.apiV3Key, nonce, originalType),
      associated_data: originalType,
      nonce,
    },
  });
  return { url, id, eventType, outTradeNo: String(plaintext.out_trade_no), body };
}

/** TRANSACTION.SUCCESS for a paid order (WeChat notifies no other payment outcome). */
export function transactionNotify(merchant: SandboxMerchant, order: SandboxOrder): OutboundNotify {
  return buildNotify(merchant, order.data.notifyUrl, order.data.notifyId ?? newNotifyId(), 'TRANSACTION.SUCCESS', '支付成功', 'transaction', transactionOf(order));
}

/** REFUND.SUCCESS (or ABNORMAL / CLOSED) for a refund, to the notify_url given with the refund. */
export function refundNotify(merchant: SandboxMerchant, order: SandboxOrder, refund: SandboxRefund, url: string): OutboundNotify {
  const event = refund.status === 'SUCCESS' ? 'REFUND.SUCCESS' : 'REFUND.ABNORMAL';
  return buildNotify(merchant, url, refund.notifyId, event, event === 'REFUND.SUCCESS' ? '退款成功' : '退款异常', 'refund', refundNoticeOf(order, refund));
}

/** The HTTP message of one delivery: the body, signed now by the platform key (also for test drivers). */
export function notifyRequest(merchant: SandboxMerchant, n: OutboundNotify): { contentType: string; headers: Record<string, string>; body: string } {
  return {
    contentType: 'application/json',
    headers: { 'user-agent': 'Mozilla/4.0 (Checkstand WeChat Pay sandbox)', ...signedHeaders(n.body, merchant.platformPrivateKey, merchant.platformSerial) },
    body: n.body,
  };
}

/** POSTs one notify with freshly signed headers; true only for HTTP 2xx. */
async function postNotify(merchant: SandboxMerchant, n: OutboundNotify, logger: Logger): Promise<boolean> {
  const fields = { out_trade_no: n.outTradeNo, notify_id: n.id, event_type: n.eventType };
  try {
    const message = notifyRequest(merchant, n);
    const res = await fetch(n.url, {
      method: 'POST',
      headers: { 'content-type': message.contentType, ...message.headers },
      body: message.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await res.arrayBuffer();
    const ok = res.status >= 200 && res.status < 300;
    logger.info('wechatpay sandbox notify sent', { ...fields, status: res.status, accepted: ok });
    return ok;
  } catch (err) {
    logger.warn('wechatpay sandbox notify failed', { ...fields, err: (err as Error).name });
    return false;
  }
}

/**
 * Sends a notify as the mode says (see notify-delivery.ts), re-sent on WeChat's schedule (same
 * id, a new signature each time) until a 2xx comes back. Never throws.
 */
export async function sendNotify(merchant: SandboxMerchant, n: OutboundNotify, mode: NotifyMode, logger: Logger): Promise<void> {
  await schedule.send(() => postNotify(merchant, n, logger), mode, logger, { out_trade_no: n.outTradeNo, notify_id: n.id });
}

export { notifyModeOf };
