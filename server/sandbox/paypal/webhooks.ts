/**
 * The simulator's webhooks, sent as PayPal sends them: an event envelope POSTed to the listener
 * registered for the merchant, with PAYPAL-TRANSMISSION-ID/-TIME/-SIG, PAYPAL-CERT-URL (served by
 * the simulator) and PAYPAL-AUTH-ALGO; a fresh transmission (id, time, signature) per delivery,
 * the same event id on every retry, re-sent until a 2xx comes back.
 */
import crypto from 'node:crypto';
import type { Logger } from '../../log.ts';
import type { NotifyMode } from '../types.ts';
import { notifySchedule } from '../notify-delivery.ts';
import { signTransmission } from '../../channels/paypal/sign.ts';
import type { SandboxMerchant } from './store.ts';
import { iso, nowSeconds, upperId } from './wire.ts';

/** PayPal retries up to 25 times over 3 days: these 24 re-sends add up to about 72 h. */
export const WEBHOOK_RETRY_DELAYS_MS = [
  30, 60, 120, 300, 600, 900, 1800, 1800, 3600, 3600, 3600, 7200, 7200, 7200, 10800, 10800, 14400, 14400, 18000, 18000, 21600, 21600, 25200, 25200,
].map((s) => s * 1000);
const DELIVERY_TIMEOUT_MS = 10_000;

const schedule = notifySchedule('paypal', WEBHOOK_RETRY_DELAYS_MS);
export const cancelScheduledNotifies = (): void => schedule.cancel();
export const scheduledNotifyCount = (): number => schedule.count();

export const newEventId = () => `WH-${upperId(17)}-${upperId(17)}`;

export interface OutboundEvent {
  id: string;
  eventType: string;
  body: string;
}

const SUMMARY: Record<string, string> = {
  'CHECKOUT.ORDER.APPROVED': 'An order has been approved by buyer',
  'PAYMENT.CAPTURE.COMPLETED': 'Payment completed',
  'PAYMENT.CAPTURE.PENDING': 'Payment pending',
  'PAYMENT.CAPTURE.DECLINED': 'Payment declined',
  'PAYMENT.CAPTURE.DENIED': 'Payment denied',
  'PAYMENT.CAPTURE.REFUNDED': 'A capture has been refunded',
};

/** An event envelope (also for test drivers that need an odd one). */
export function buildEvent(b: string, id: string, eventType: string, resourceType: string, resource: Record<string, unknown>): OutboundEvent {
  const body = JSON.stringify({
    id,
    event_version: '1.0',
    create_time: iso(nowSeconds()),
    resource_type: resourceType,
    resource_version: '2.0',
    event_type: eventType,
    summary: SUMMARY[eventType] ?? eventType,
    resource,
    links: [
      { href: `${b}/v1/notifications/webhooks-events/${id}`, rel: 'self', method: 'GET' },
      { href: `${b}/v1/notifications/webhooks-events/${id}/resend`, rel: 'resend', method: 'POST' },
    ],
  });
  return { id, eventType, body };
}

export const certUrlOf = (b: string, merchant: SandboxMerchant) => `${b}/v1/notifications/certs/${merchant.certId}`;

/** The headers of one delivery, signed now (also for test drivers). */
export function transmissionHeaders(b: string, merchant: SandboxMerchant, body: string | Buffer, at = new Date()): Record<string, string> {
  const id = crypto.randomUUID();
  const time = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    'paypal-transmission-id': id,
    'paypal-transmission-time': time,
    'paypal-transmission-sig': signTransmission(merchant.signingKey, id, time, merchant.webhookId, Buffer.from(body)),
    'paypal-cert-url': certUrlOf(b, merchant),
    'paypal-auth-algo': 'SHA256withRSA',
    'user-agent': 'PayPal/AUHD-214.0-58457367 (Checkstand PayPal sandbox)',
  };
}

async function postEvent(b: string, merchant: SandboxMerchant, e: OutboundEvent, logger: Logger): Promise<boolean> {
  const fields = { event_id: e.id, event_type: e.eventType, webhook_id: merchant.webhookId };
  try {
    const res = await fetch(merchant.webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...transmissionHeaders(b, merchant, e.body) },
      body: e.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await res.arrayBuffer();
    const ok = res.status >= 200 && res.status < 300;
    logger.info('paypal sandbox webhook sent', { ...fields, status: res.status, accepted: ok });
    return ok;
  } catch (err) {
    logger.warn('paypal sandbox webhook failed', { ...fields, err: (err as Error).name });
    return false;
  }
}

/** Sends per the notify mode (notify-delivery.ts), retried on PayPal's schedule. Never throws. */
export async function sendEvent(b: string, merchant: SandboxMerchant, e: OutboundEvent, mode: NotifyMode, logger: Logger): Promise<void> {
  await schedule.send(() => postEvent(b, merchant, e, logger), mode, logger, { event_id: e.id, event_type: e.eventType });
}
