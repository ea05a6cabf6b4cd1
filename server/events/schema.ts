import { z } from 'zod';
import { CHANNEL_CODES } from '../channels/types.ts';
import { paymentObjectSchema } from '../payments/service.ts';
import { refundObjectSchema } from '../refunds/repo.ts';
import { agreementObjectSchema } from '../agreements/repo.ts';
import { transferObjectSchema } from '../transfers/repo.ts';
import { subscriptionObjectSchema } from '../subscriptions/repo.ts';
import { redPacketObjectSchema } from '../red-packets/repo.ts';
import { webhookEndpointObjectSchema } from '../webhooks/service.ts';
import { statementDayObjectSchema } from '../statements/repo.ts';
import type { EventType } from './repo.ts';

/**
 * The event object's schemas, one per type (what `data.object` holds), for the API's answers
 * and the OpenAPI document's webhooks. A Record over EventType: a new type does not compile
 * until it is described here.
 */

export const EVENT_DATA_SCHEMAS: Record<EventType, { object: z.ZodType; summary: string }> = {
  'payment.succeeded': { object: paymentObjectSchema, summary: 'A payment succeeded: the customer paid and the channel confirmed it.' },
  'payment.closed': { object: paymentObjectSchema, summary: 'A pending payment was closed (by the merchant, or on expiry), also at the channel.' },
  'payment.attempt_failed': { object: paymentObjectSchema, summary: 'A channel order of a payment was declined, failed or cancelled; the payment stays pending, and its last_attempt_error says why.' },
  'refund.succeeded': { object: refundObjectSchema, summary: 'A refund was confirmed by the channel.' },
  'refund.failed': { object: refundObjectSchema, summary: 'A refund was refused by the channel; its amount can be refunded again.' },
  'webhook_endpoint.disabled': { object: webhookEndpointObjectSchema, summary: 'An endpoint was disabled: it answered 410 Gone, or every delivery failed for three days.' },
  'agreement.active': { object: agreementObjectSchema, summary: 'The customer signed an agreement (mandate) in the wallet; subscriptions may now charge through it.' },
  'agreement.terminated': { object: agreementObjectSchema, summary: 'An agreement ended: terminated by the merchant, or cancelled by the customer from the wallet (terminated_reason says which).' },
  'subscription.created': { object: subscriptionObjectSchema, summary: 'A subscription was created on an active agreement; its first period is charged inside Alipay\'s window before its first scheduled date.' },
  'subscription.renewed': { object: subscriptionObjectSchema, summary: 'A period was paid: the subscription is active on it (current_period_start/end), latest_payment is its payment.' },
  'subscription.payment_failed': { object: subscriptionObjectSchema, summary: 'A charge try of a period failed (latest_payment, closed, says why); it is tried again inside the window while tries are left.' },
  'subscription.past_due': { object: subscriptionObjectSchema, summary: 'Every try of a period failed: the period is unpaid. The next period is charged as usual; a second unpaid period in a row cancels the subscription.' },
  'subscription.canceled': { object: subscriptionObjectSchema, summary: 'A subscription ended: canceled by the merchant (now or at period end), after two unpaid periods, or because its agreement ended (cancellation_reason says which).' },
  'transfer.succeeded': { object: transferObjectSchema, summary: 'A transfer paid its recipient; the money has left and cannot be called back.' },
  'transfer.failed': { object: transferObjectSchema, summary: 'A transfer failed at the channel (failure_code says why): nothing was paid, and a balance it was taken from has it back.' },
  'transfer.canceled': { object: transferObjectSchema, summary: 'A transfer was canceled: rejected at approval, withdrawn by the merchant, or canceled before the recipient confirmed it. Nothing was paid.' },
  'transfer.awaiting_recipient': { object: transferObjectSchema, summary: 'A WeChat transfer waits for its recipient to confirm it (next_action.wechat_transfer_confirm); unconfirmed for 24 h it fails.' },
  'red_packet.sent': { object: redPacketObjectSchema, summary: 'A red packet was delivered to its recipient, who has not opened it yet.' },
  'red_packet.received': { object: redPacketObjectSchema, summary: 'The recipient opened the red packet: it is paid.' },
  'red_packet.refunded': { object: redPacketObjectSchema, summary: 'A red packet left unopened for 24 h went back to the merchant.' },
  'red_packet.failed': { object: redPacketObjectSchema, summary: 'A red packet could not be sent (failure_code says why); nothing was paid.' },
  'reconciliation.discrepancy': { object: statementDayObjectSchema, summary: 'A check of a day\'s channel statement (对账单) found discrepancies no earlier check of that day had found: payments or refunds only on one side, or whose amount or status differs, or fees the statement itself does not add up to.' },
  'test.webhook': { object: webhookEndpointObjectSchema, summary: 'A test event sent to one endpoint by POST /v1/webhook_endpoints/{id}/test.' },
};

/** `payment.attempt_failed` → `PaymentAttemptFailedEvent`. */
export const eventSchemaId = (type: string) =>
  `${type.split(/[._]/).map((w) => w[0].toUpperCase() + w.slice(1)).join('')}Event`;

function eventSchemaOf<T extends EventType>(type: T, object: z.ZodType) {
  return z
    .object({
      id: z.string().describe('evt_…, also the webhook-id header of its deliveries'),
      object: z.literal('event'),
      type: z.literal(type),
      created: z.number().int(),
      livemode: z.boolean(),
      data: z.object({ object }).strict(),
    })
    .strict()
    .meta({ id: eventSchemaId(type) });
}

export const EVENT_SCHEMAS = Object.fromEntries(
  Object.entries(EVENT_DATA_SCHEMAS).map(([type, d]) => [type, eventSchemaOf(type as EventType, d.object)]),
) as Record<EventType, ReturnType<typeof eventSchemaOf>>;

/** Any event, told apart by `type`. */
export const eventObjectSchema = z
  .discriminatedUnion('type', Object.values(EVENT_SCHEMAS) as [ReturnType<typeof eventSchemaOf>, ...ReturnType<typeof eventSchemaOf>[]])
  .meta({ id: 'Event' });
