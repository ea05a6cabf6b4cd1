import { z } from 'zod';
import { noParams } from '../http/body.ts';
import { listPageSchema } from '../http/pagination.ts';
import { errorObjectSchema } from '../http/errors.ts';
import { confirmPaymentSchema, createPaymentSchema } from '../payments/validation.ts';
import { listPaymentsQuery } from '../payments/routes.ts';
import { paymentObjectSchema } from '../payments/service.ts';
import { simulateSchema } from '../payments/simulate.ts';
import { createRefundSchema } from '../refunds/service.ts';
import { refundObjectSchema } from '../refunds/repo.ts';
import { listEventsQuery } from '../events/routes.ts';
import { eventObjectSchema } from '../events/schema.ts';
import { listEndpointsQuery } from '../webhooks/routes.ts';
import {
  createEndpointSchema, deletedWebhookEndpointSchema, rotateSecretSchema, updateEndpointSchema,
  webhookEndpointObjectSchema, webhookEndpointWithSecretSchema,
} from '../webhooks/service.ts';
import { deliveryListQuery, resendSchema, webhookDeliveryObjectSchema } from '../webhooks/deliveries.ts';
import { balanceTransactionObjectSchema, customerObjectSchema, deletedCustomerSchema } from '../customers/repo.ts';
import { createBalanceTransactionSchema, createCustomerSchema, updateCustomerSchema } from '../customers/service.ts';
import { listBalanceTransactionsQuery, listCustomersQuery } from '../customers/routes.ts';
import { couponObjectSchema } from '../coupons/repo.ts';
import { createCouponSchema, updateCouponSchema } from '../coupons/service.ts';
import { listCouponsQuery } from '../coupons/routes.ts';
import { agreementObjectSchema } from '../agreements/repo.ts';
import { createAgreementSchema } from '../agreements/service.ts';
import { listAgreementsQuery } from '../agreements/routes.ts';
import { subscriptionObjectSchema } from '../subscriptions/repo.ts';
import { cancelSubscriptionSchema, createSubscriptionSchema } from '../subscriptions/service.ts';
import { advanceSubscriptionSchema, listSubscriptionsQuery } from '../subscriptions/routes.ts';
import { transferObjectSchema } from '../transfers/repo.ts';
import { createTransferSchema } from '../transfers/service.ts';
import { listTransfersQuery, simulateTransferSchema } from '../transfers/routes.ts';
import { redPacketObjectSchema } from '../red-packets/repo.ts';
import { createRedPacketSchema } from '../red-packets/service.ts';
import { listRedPacketsQuery, simulateRedPacketSchema } from '../red-packets/routes.ts';
import { apiKeyObjectSchema, apiKeyWithSecretSchema } from '../api-keys/repo.ts';
import { createApiKeySchema, rollApiKeySchema } from '../api-keys/service.ts';

/**
 * Every /v1 operation, described by the very schemas its route validates with (exported by the
 * route files) and the schema of the object it answers. The OpenAPI document is built from this
 * table, and a test walks the Express router and fails on any route missing here.
 */
export interface Operation {
  method: 'get' | 'post' | 'delete';
  /** OpenAPI style: /v1/payments/{id}. */
  path: string;
  operationId: string;
  tag: 'Payments' | 'Refunds' | 'Customers' | 'Coupons' | 'Agreements' | 'Subscriptions' | 'Transfers' | 'Red packets' | 'API keys' | 'Events' | 'Webhook endpoints' | 'Test helpers' | 'Meta';
  summary: string;
  description?: string;
  query?: z.ZodObject;
  /** The JSON body's schema; omitted for a POST that takes none. */
  body?: z.ZodType;
  response: z.ZodType;
  /** Statuses besides 200 and those every /v1 call can answer (400, 401, 429, 500; and 409 on a POST, an Idempotency-Key in use). */
  errors?: number[];
  /** No API key needed (the document itself). */
  public?: boolean;
}

export const paymentListSchema = listPageSchema(paymentObjectSchema, 'PaymentList');
export const eventListSchema = listPageSchema(eventObjectSchema, 'EventList');
export const webhookEndpointListSchema = listPageSchema(webhookEndpointObjectSchema, 'WebhookEndpointList');
export const apiKeyListSchema = listPageSchema(apiKeyObjectSchema, 'ApiKeyList');
export const webhookDeliveryListSchema = listPageSchema(webhookDeliveryObjectSchema, 'WebhookDeliveryList');
export const customerListSchema = listPageSchema(customerObjectSchema, 'CustomerList');
export const balanceTransactionListSchema = listPageSchema(balanceTransactionObjectSchema, 'BalanceTransactionList');
export const couponListSchema = listPageSchema(couponObjectSchema, 'CouponList');
export const agreementListSchema = listPageSchema(agreementObjectSchema, 'AgreementList');
export const subscriptionListSchema = listPageSchema(subscriptionObjectSchema, 'SubscriptionList');
export const transferListSchema = listPageSchema(transferObjectSchema, 'TransferList');
export const redPacketListSchema = listPageSchema(redPacketObjectSchema, 'RedPacketList');
/** The document itself: an OpenAPI 3.1 object, not described further here. */
const openApiDocumentSchema = z.object({ openapi: z.string() }).loose();

export const OPERATIONS: Operation[] = [
  {
    method: 'post', path: '/v1/payments', operationId: 'createPayment', tag: 'Payments',
    summary: 'Create a payment',
    description: 'Without `channel`, the customer picks one on the hosted cashier at `checkout_url`. '
      + 'With `channel`, the channel order is placed at once and `next_action` says what the payer does next '
      + '(a channel that declines does not fail the create: `next_action` is null and `last_attempt_error` says why).',
    body: createPaymentSchema, response: paymentObjectSchema, errors: [402, 502],
  },
  {
    method: 'get', path: '/v1/payments', operationId: 'listPayments', tag: 'Payments',
    summary: 'List payments', description: 'Newest first; page with `starting_after` / `ending_before`.',
    query: listPaymentsQuery, response: paymentListSchema,
  },
  {
    method: 'get', path: '/v1/payments/{id}', operationId: 'retrievePayment', tag: 'Payments',
    summary: 'Retrieve a payment', query: noParams, response: paymentObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/payments/{id}/confirm', operationId: 'confirmPayment', tag: 'Payments',
    summary: 'Place (or switch to) a channel order now',
    description: 'A new attempt on `channel` for a pending payment; answers the payment with `next_action`. '
      + '`client_ip` is required for wechat_h5, `openid` for wechat_jsapi.',
    body: confirmPaymentSchema, response: paymentObjectSchema, errors: [402, 404, 502],
  },
  {
    method: 'post', path: '/v1/payments/{id}/close', operationId: 'closePayment', tag: 'Payments',
    summary: 'Close a pending payment', description: 'Also closes its orders at the channels.',
    response: paymentObjectSchema, errors: [404, 502],
  },
  {
    method: 'post', path: '/v1/payments/{id}/refunds', operationId: 'createRefund', tag: 'Refunds',
    summary: 'Refund a succeeded payment', description: '`amount` defaults to what is left to refund.',
    body: createRefundSchema, response: refundObjectSchema, errors: [402, 404, 502],
  },
  {
    method: 'get', path: '/v1/refunds/{id}', operationId: 'retrieveRefund', tag: 'Refunds',
    summary: 'Retrieve a refund', query: noParams, response: refundObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/customers', operationId: 'createCustomer', tag: 'Customers',
    summary: 'Create a customer', description: 'A customer of the app, with a stored-value balance in `currency` (0 at first). `out_user_id` is unique per app and mode.',
    body: createCustomerSchema, response: customerObjectSchema,
  },
  {
    method: 'get', path: '/v1/customers', operationId: 'listCustomers', tag: 'Customers',
    summary: 'List customers', description: 'Newest first; page with `starting_after` / `ending_before`.',
    query: listCustomersQuery, response: customerListSchema,
  },
  {
    method: 'get', path: '/v1/customers/{id}', operationId: 'retrieveCustomer', tag: 'Customers',
    summary: 'Retrieve a customer', query: noParams, response: customerObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/customers/{id}', operationId: 'updateCustomer', tag: 'Customers',
    summary: 'Update a customer', description: 'A field sent as null is cleared; `metadata` replaces the whole map. The balance changes only through its ledger.',
    body: updateCustomerSchema, response: customerObjectSchema, errors: [404],
  },
  {
    method: 'delete', path: '/v1/customers/{id}', operationId: 'deleteCustomer', tag: 'Customers',
    summary: 'Delete a customer',
    description: 'Only with a zero balance (else a 400 `customer_balance_not_zero`). A soft delete: the customer and its ledger are kept for the books, '
      + 'but it is gone from the API, and its `out_user_id` is free again.',
    query: noParams, response: deletedCustomerSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/customers/{id}/balance_transactions', operationId: 'createBalanceTransaction', tag: 'Customers',
    summary: "Adjust a customer's balance",
    description: 'A manual ledger entry of type `adjustment` that credits `amount` (positive). The balance is spent only by '
      + 'payments with `channel: "balance"`, so every debit has its payment.',
    body: createBalanceTransactionSchema, response: balanceTransactionObjectSchema, errors: [404],
  },
  {
    method: 'get', path: '/v1/customers/{id}/balance_transactions', operationId: 'listBalanceTransactions', tag: 'Customers',
    summary: "List a customer's balance transactions",
    description: 'The ledger, newest first: top-ups, balance payments, their refunds and adjustments. The entries always sum to the balance.',
    query: listBalanceTransactionsQuery, response: balanceTransactionListSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/coupons', operationId: 'createCoupon', tag: 'Coupons',
    summary: 'Create a coupon',
    description: 'Exactly one of `amount_off` and `percent_off` (1–100, rounded half up to the minor unit). '
      + 'Give `coupon` (its code, any case, or its id) when creating a payment; `allow_coupon_code` lets the payer type it on the cashier.',
    body: createCouponSchema, response: couponObjectSchema,
  },
  {
    method: 'get', path: '/v1/coupons', operationId: 'listCoupons', tag: 'Coupons',
    summary: 'List coupons', description: 'Newest first; `code` finds one by its code, whatever the case.',
    query: listCouponsQuery, response: couponListSchema,
  },
  {
    method: 'get', path: '/v1/coupons/{id}', operationId: 'retrieveCoupon', tag: 'Coupons',
    summary: 'Retrieve a coupon', query: noParams, response: couponObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/coupons/{id}', operationId: 'updateCoupon', tag: 'Coupons',
    summary: 'Update a coupon', description: '`active: false` deactivates it: payments holding it keep their discount; new ones are refused.',
    body: updateCouponSchema, response: couponObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/agreements', operationId: 'createAgreement', tag: 'Agreements',
    summary: 'Create an auto-debit agreement',
    description: 'A mandate (Alipay 周期扣款) for a customer, `pending` until they sign in the wallet: `next_action` says how '
      + '(a page to redirect to, or a QR). The signed notify makes it `active` (`agreement.active`).',
    body: createAgreementSchema, response: agreementObjectSchema, errors: [404],
  },
  {
    method: 'get', path: '/v1/agreements', operationId: 'listAgreements', tag: 'Agreements',
    summary: 'List agreements', description: 'Newest first; filter by `customer` or `status`.',
    query: listAgreementsQuery, response: agreementListSchema,
  },
  {
    method: 'get', path: '/v1/agreements/{id}', operationId: 'retrieveAgreement', tag: 'Agreements',
    summary: 'Retrieve an agreement', query: noParams, response: agreementObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/agreements/{id}/terminate', operationId: 'terminateAgreement', tag: 'Agreements',
    summary: 'Terminate an agreement',
    description: 'Unsigns the mandate at the channel; `terminated` with `terminated_reason: "merchant"` and `agreement.terminated`. '
      + 'A wallet user who cancels from the wallet ends it the same way with the reason `customer`.',
    response: agreementObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/subscriptions', operationId: 'createSubscription', tag: 'Subscriptions',
    summary: 'Create a subscription',
    description: 'Charges `amount` each period through an `active` agreement, on the agreement\'s own schedule (Alipay deducts only on its scheduled dates, '
      + 'and the 3 days before each): `interval` and `interval_count` must say the agreement\'s period rule. Each period is one payment (`subscription` set, '
      + 'channel `alipay_agreement`), tried 2 days before the scheduled date (Beijing 10:00), the day before and on the date; all failed is `past_due`, '
      + 'two unpaid periods in a row `canceled`. `trial_end`: `trialing` until then.',
    body: createSubscriptionSchema, response: subscriptionObjectSchema, errors: [404],
  },
  {
    method: 'get', path: '/v1/subscriptions', operationId: 'listSubscriptions', tag: 'Subscriptions',
    summary: 'List subscriptions', description: 'Newest first; filter by `customer`, `agreement` or `status`.',
    query: listSubscriptionsQuery, response: subscriptionListSchema,
  },
  {
    method: 'get', path: '/v1/subscriptions/{id}', operationId: 'retrieveSubscription', tag: 'Subscriptions',
    summary: 'Retrieve a subscription', query: noParams, response: subscriptionObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/subscriptions/{id}/cancel', operationId: 'cancelSubscription', tag: 'Subscriptions',
    summary: 'Cancel a subscription',
    description: 'Now (`canceled`, `subscription.canceled`), or with `at_period_end: true` when the current period ends, without charging the next one. '
      + 'A subscription also ends when its agreement does (the wallet user\'s cancellation included).',
    body: cancelSubscriptionSchema, response: subscriptionObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/transfers', operationId: 'createTransfer', tag: 'Transfers',
    summary: 'Create a transfer',
    description: "Pays a person's Alipay or WeChat account (企业付款). Alipay pays at once (`succeeded`); WeChat waits for the recipient to confirm "
      + '(`awaiting_recipient`, `next_action.wechat_transfer_confirm`). Above the app\'s approval threshold it waits in `requires_approval` for a console user. '
      + 'An unknown answer from the channel leaves it `pending`: it is queried, never paid twice. `source: "balance"` takes the amount from the customer\'s balance, '
      + 'given back if the transfer fails.',
    body: createTransferSchema, response: transferObjectSchema, errors: [402, 404, 502],
  },
  {
    method: 'get', path: '/v1/transfers', operationId: 'listTransfers', tag: 'Transfers',
    summary: 'List transfers', description: 'Newest first; filter by `status`, `channel`, `out_transfer_no` or `customer`.',
    query: listTransfersQuery, response: transferListSchema,
  },
  {
    method: 'get', path: '/v1/transfers/{id}', operationId: 'retrieveTransfer', tag: 'Transfers',
    summary: 'Retrieve a transfer', query: noParams, response: transferObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/transfers/{id}/cancel', operationId: 'cancelTransfer', tag: 'Transfers',
    summary: 'Cancel a transfer',
    description: 'One waiting for approval, or a WeChat transfer its recipient has not confirmed yet (canceled at the channel). `canceled` and `transfer.canceled`.',
    response: transferObjectSchema, errors: [402, 404, 502],
  },
  {
    method: 'post', path: '/v1/red_packets', operationId: 'createRedPacket', tag: 'Red packets',
    summary: 'Send a red packet',
    description: '`sending`, then `sent` once delivered; `received` when opened, `refunded` when left unopened for 24 h, or `failed`. '
      + 'WeChat tells nothing by itself: Checkstand polls the channel until the packet is final.',
    body: createRedPacketSchema, response: redPacketObjectSchema, errors: [402, 404, 502],
  },
  {
    method: 'get', path: '/v1/red_packets', operationId: 'listRedPackets', tag: 'Red packets',
    summary: 'List red packets', description: 'Newest first; filter by `status`, `channel` or `out_red_packet_no`.',
    query: listRedPacketsQuery, response: redPacketListSchema,
  },
  {
    method: 'get', path: '/v1/red_packets/{id}', operationId: 'retrieveRedPacket', tag: 'Red packets',
    summary: 'Retrieve a red packet', query: noParams, response: redPacketObjectSchema, errors: [404],
  },
  {
    method: 'get', path: '/v1/events', operationId: 'listEvents', tag: 'Events',
    summary: 'List events', description: '`type` takes an exact type or a family: `payment.*`.',
    query: listEventsQuery, response: eventListSchema,
  },
  {
    method: 'get', path: '/v1/events/{id}', operationId: 'retrieveEvent', tag: 'Events',
    summary: 'Retrieve an event', query: noParams, response: eventObjectSchema, errors: [404],
  },
  {
    method: 'get', path: '/v1/events/{id}/deliveries', operationId: 'listEventDeliveries', tag: 'Events',
    summary: "List an event's webhook deliveries", query: deliveryListQuery, response: webhookDeliveryListSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/events/{id}/resend', operationId: 'resendEvent', tag: 'Events',
    summary: 'Resend an event', description: 'To one endpoint, or to every enabled endpoint subscribed to its type; the receiver sees the same webhook-id.',
    body: resendSchema, response: webhookDeliveryListSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/webhook_endpoints', operationId: 'createWebhookEndpoint', tag: 'Webhook endpoints',
    summary: 'Create a webhook endpoint', description: 'The answer carries the signing secret (`whsec_…`), the only time it is shown.',
    body: createEndpointSchema, response: webhookEndpointWithSecretSchema,
  },
  {
    method: 'get', path: '/v1/webhook_endpoints', operationId: 'listWebhookEndpoints', tag: 'Webhook endpoints',
    summary: 'List webhook endpoints', query: listEndpointsQuery, response: webhookEndpointListSchema,
  },
  {
    method: 'get', path: '/v1/webhook_endpoints/{id}', operationId: 'retrieveWebhookEndpoint', tag: 'Webhook endpoints',
    summary: 'Retrieve a webhook endpoint', query: noParams, response: webhookEndpointObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/webhook_endpoints/{id}', operationId: 'updateWebhookEndpoint', tag: 'Webhook endpoints',
    summary: 'Update a webhook endpoint', description: '`status: "enabled"` re-enables a disabled endpoint.',
    body: updateEndpointSchema, response: webhookEndpointObjectSchema, errors: [404],
  },
  {
    method: 'delete', path: '/v1/webhook_endpoints/{id}', operationId: 'deleteWebhookEndpoint', tag: 'Webhook endpoints',
    summary: 'Delete a webhook endpoint', response: deletedWebhookEndpointSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/webhook_endpoints/{id}/rotate_secret', operationId: 'rotateWebhookEndpointSecret', tag: 'Webhook endpoints',
    summary: "Roll an endpoint's signing secret",
    description: 'The old secret keeps signing beside the new one for `expires_in` seconds (two signatures in webhook-signature).',
    body: rotateSecretSchema, response: webhookEndpointWithSecretSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/webhook_endpoints/{id}/test', operationId: 'sendTestWebhook', tag: 'Webhook endpoints',
    summary: 'Send a test.webhook event to this endpoint', response: eventObjectSchema, errors: [404],
  },
  {
    method: 'get', path: '/v1/webhook_endpoints/{id}/deliveries', operationId: 'listWebhookEndpointDeliveries', tag: 'Webhook endpoints',
    summary: "List an endpoint's deliveries", query: deliveryListQuery, response: webhookDeliveryListSchema, errors: [404],
  },
  {
    method: 'get', path: '/v1/api_keys', operationId: 'listApiKeys', tag: 'API keys',
    summary: "List the app's secret keys of this mode", description: 'Hints only: a secret is shown once, when it is made.',
    query: noParams, response: apiKeyListSchema,
  },
  {
    method: 'post', path: '/v1/api_keys', operationId: 'createApiKey', tag: 'API keys',
    summary: 'Create a secret key', description: 'A new key of the calling key\'s mode; the answer carries the secret, the only time it is shown.',
    body: createApiKeySchema, response: apiKeyWithSecretSchema,
  },
  {
    method: 'get', path: '/v1/api_keys/{id}', operationId: 'retrieveApiKey', tag: 'API keys',
    summary: 'Retrieve a secret key (its hint)', query: noParams, response: apiKeyObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/api_keys/{id}/roll', operationId: 'rollApiKey', tag: 'API keys',
    summary: 'Roll a secret key',
    description: 'Makes its successor (the answer, with the secret) and lets the old key work `expires_in` more seconds, at most 7 days; 0 stops it now.',
    body: rollApiKeySchema, response: apiKeyWithSecretSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/api_keys/{id}/revoke', operationId: 'revokeApiKey', tag: 'API keys',
    summary: 'Revoke a secret key now', description: "The app's last working key of a mode cannot be revoked: roll it.",
    response: apiKeyObjectSchema, errors: [404],
  },
  {
    method: 'post', path: '/v1/test_helpers/payments/{id}/simulate', operationId: 'simulatePayment', tag: 'Test helpers',
    summary: 'Act as the customer and the channel (test mode only)',
    description: 'Places a real order at the channel simulator and pays, fails or cancels it there; the result arrives through the real notify path. A live key gets 404.',
    body: simulateSchema, response: paymentObjectSchema, errors: [402, 404, 502],
  },
  {
    method: 'post', path: '/v1/test_helpers/transfers/{id}/simulate', operationId: 'simulateTransferRecipient', tag: 'Test helpers',
    summary: "Act as a transfer's recipient (test mode only)",
    description: 'For a transfer `awaiting_recipient`: confirm it, decline it, or let the 24 h confirmation lapse, at the simulator; the result arrives through the real notify path. A live key gets 404.',
    body: simulateTransferSchema, response: transferObjectSchema, errors: [402, 404, 502],
  },
  {
    method: 'post', path: '/v1/test_helpers/red_packets/{id}/simulate', operationId: 'simulateRedPacketRecipient', tag: 'Test helpers',
    summary: "Act as a red packet's recipient (test mode only)",
    description: 'Open a sent WeChat red packet, or leave it unopened for 24 h so it is refunded, at the simulator. A live key gets 404.',
    body: simulateRedPacketSchema, response: redPacketObjectSchema, errors: [402, 404, 502],
  },
  {
    method: 'post', path: '/v1/test_helpers/subscriptions/{id}/advance', operationId: 'advanceSubscriptionClock', tag: 'Test helpers',
    summary: "Advance a subscription's test clock (test mode only)",
    description: "Freezes the subscription's time and moves it to `to` (never back, at most 5 years ahead): every charge due on the way runs in order, at its own time, "
      + 'through the Alipay simulator, before the answer. The background scheduler leaves a subscription on a test clock alone. A live key gets 404.',
    body: advanceSubscriptionSchema, response: subscriptionObjectSchema, errors: [404],
  },
  {
    method: 'get', path: '/v1/openapi.json', operationId: 'getOpenApiDocument', tag: 'Meta',
    summary: 'This document', description: 'Served without an API key: it describes the public contract and holds nothing secret.',
    response: openApiDocumentSchema, public: true,
  },
];

/** The error schema every error status answers. */
export { errorObjectSchema };
