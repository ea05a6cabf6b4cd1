/**
 * The simulator's webhooks: events in Stripe's envelope, signed `Stripe-Signature: t=…,v1=…`
 * (HMAC-SHA256 of `t.payload` with the endpoint's whsec_ secret), sent per the notify mode and
 * retried while not answered 2xx (test mode: 3 times over a few hours).
 */
import type { Logger } from '../../log.ts';
import type { NotifyMode } from '../types.ts';
import { notifySchedule } from '../notify-delivery.ts';
import { signatureHeader } from '../../channels/stripe/sign.ts';
import type { StripeAccount } from './store.ts';
import { KNOWN_VERSIONS, newObjectId } from './wire.ts';

export const NOTIFY_RETRY_DELAYS_MS = [60, 180, 360].map((m) => m * 60_000);
const DELIVERY_TIMEOUT_MS = 10_000;
const schedule = notifySchedule('stripe', NOTIFY_RETRY_DELAYS_MS);

export const cancelScheduledNotifies = (): void => schedule.cancel();
export const scheduledNotifyCount = (): number => schedule.count();

/** An event envelope around a snapshot of `object`. */
export function eventOf(type: string, object: unknown): { id: string; body: string } {
  const id = newObjectId('evt', 24);
  const body = JSON.stringify({
    id,
    object: 'event',
    api_version: KNOWN_VERSIONS[0],
    created: Math.floor(Date.now() / 1000),
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  });
  return { id, body };
}

/** POSTs one event, signed at the moment of sending (each retry carries a fresh timestamp, as Stripe's do). */
async function postEvent(account: StripeAccount, event: { id: string; body: string }, logger: Logger): Promise<boolean> {
  try {
    const res = await fetch(account.webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signatureHeader(event.body, account.webhookSecret), 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
      body: event.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await res.arrayBuffer();
    const ok = res.status >= 200 && res.status < 300;
    logger.info('stripe sandbox webhook sent', { event_id: event.id, status: res.status, accepted: ok });
    return ok;
  } catch (err) {
    logger.warn('stripe sandbox webhook failed', { event_id: event.id, err: (err as Error).name });
    return false;
  }
}

/** Sends events in order per the mode (see notify-delivery.ts). Never throws. */
export async function sendEvents(account: StripeAccount, events: Array<{ id: string; body: string }>, mode: NotifyMode, logger: Logger): Promise<void> {
  for (const e of events) await schedule.send(() => postEvent(account, e, logger), mode, logger, { event_id: e.id });
}
