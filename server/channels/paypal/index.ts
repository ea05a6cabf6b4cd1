/**
 * PayPal adapter (Orders v2, intent CAPTURE): the order is created server-side, the payer
 * approves on PayPal (redirect), and the gateway captures: on the return (queryPayment), on the
 * CHECKOUT.ORDER.APPROVED webhook (parseNotification) or from the query worker, whichever comes
 * first; the capture is idempotent (PayPal-Request-Id `capture:<order id>`, and
 * ORDER_ALREADY_CAPTURED re-reads the order). Paid or failed is decided by the capture's status,
 * never the order's. Webhooks are verified offline by default (sign.ts). Stateless.
 */
import { inspect } from 'node:util';
import { z } from 'zod';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../errors.ts';
import type { Ack, Channel, ChannelNotification, CreateResult, InboundMessage, PaymentQueryResult, RefundResult } from '../types.ts';
import { callApi, describe, faultOf } from './client.ts';
import { postbackBody, verifyTransmission, transmissionOf, type CertRule } from './sign.ts';
import {
  IN_COUNTRY_CURRENCIES, PAYPAL_CURRENCIES, approveLinkOf, captureResultOf, createOrderBody, eventOf, firstCapture, linkedId, moneyOf,
  orderResultOf, refundBody, refundResultOf, unixOf, type PaypalCapture, type PaypalOrder, type PaypalRefund,
} from './transform.ts';

/** A secret string that never prints (JSON, inspect, template strings show [redacted]). */
export class SecretText {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return 'SecretText [redacted]';
  }
}

export interface PaypalCredentials {
  clientId: string;
  clientSecret: SecretText;
  /** The id of the webhook listener registered for this app: part of every signed message. */
  webhookId: string;
  baseUrl: string;
  /** The merchant's PayPal account id (payer id of the business account), when known: webhooks naming another payee are refused. */
  merchantId?: string;
  /** offline (default): crc32 + SHA256withRSA on the raw body; postback: PayPal's verify-webhook-signature. */
  webhookVerification: 'offline' | 'postback';
  brandName?: string;
  certRule: CertRule;
}

export const PAYPAL_LIVE_BASE_URL = 'https://api-m.paypal.com';
/** PayPal's own API hosts (live and PayPal's sandbox, new and old names): their certificates come from *.paypal.com. */
const PAYPAL_HOSTS = new Set(['api-m.paypal.com', 'api-m.sandbox.paypal.com', 'api.paypal.com', 'api.sandbox.paypal.com']);
const MAX_WEBHOOK_BYTES = 64 * 1024;

/** Issues from create that the payer or a new attempt can get past: a decline, not a fault. */
const CREATE_DECLINES = new Set(['PAYEE_ACCOUNT_RESTRICTED', 'PAYEE_ACCOUNT_LOCKED_OR_CLOSED', 'PAYEE_BLOCKED_TRANSACTION', 'DUPLICATE_INVOICE_ID', 'CURRENCY_NOT_SUPPORTED_FOR_RECEIVER', 'TRANSACTION_REFUSED']);
/** Capture issues that leave the order payable (the payer can approve again or pick another source). */
const CAPTURE_WAIT = new Set(['ORDER_NOT_APPROVED', 'INSTRUMENT_DECLINED', 'PAYER_ACTION_REQUIRED', 'PAYER_CANNOT_PAY', 'COMPLIANCE_VIOLATION_PENDING']);
/** Capture issues that end the attempt. */
const CAPTURE_FINAL = new Set(['PAYMENT_DENIED', 'TRANSACTION_REFUSED', 'DUPLICATE_INVOICE_ID', 'ORDER_EXPIRED', 'ORDER_CANNOT_BE_SAVED', 'PAYEE_ACCOUNT_RESTRICTED']);

const configSchema = z.object({
  client_id: z.string().regex(/^[A-Za-z0-9_-]{8,128}$/, 'must be the REST app client id (letters, digits, _ and -)'),
  client_secret: z.string().regex(/^[A-Za-z0-9_-]{8,128}$/, 'must be the REST app secret (letters, digits, _ and -)'),
  webhook_id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be the id PayPal gave the webhook listener (letters, digits and -)'),
  base_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL of the PayPal REST API (default https://api-m.paypal.com)' }).optional(),
  merchant_id: z.string().regex(/^[A-Z0-9]{8,20}$/, 'must be the PayPal merchant id of the account (13 upper-case letters and digits)').optional(),
  webhook_verification: z.enum(['offline', 'postback'], { error: 'must be offline or postback' }).optional(),
  brand_name: z.string().min(1).max(127, 'must be at most 127 characters').optional(),
});

export const paypal: Channel<PaypalCredentials> = {
  // --- metadata --------------------------------------------------------------------------------
  provider: 'paypal',
  displayName: 'PayPal',
  codes: ['paypal'],
  currencies: PAYPAL_CURRENCIES,

  // --- credentials -----------------------------------------------------------------------------
  parseCredentials(raw: unknown): PaypalCredentials {
    const parsed = configSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ChannelConfigError(`PayPal config: ${issue.path.join('.') || 'config'} ${issue.message}`);
    }
    const c = parsed.data;
    const baseUrl = (c.base_url ?? PAYPAL_LIVE_BASE_URL).replace(/\/+$/, '');
    const u = new URL(baseUrl);
    const atPaypal = PAYPAL_HOSTS.has(u.hostname.toLowerCase());
    if (atPaypal && u.protocol !== 'https:') throw new ChannelConfigError('PayPal config: base_url must use https for PayPal');
    return {
      clientId: c.client_id,
      clientSecret: new SecretText(c.client_secret),
      webhookId: c.webhook_id,
      baseUrl,
      merchantId: c.merchant_id,
      webhookVerification: c.webhook_verification ?? 'offline',
      brandName: c.brand_name,
      certRule: atPaypal ? { kind: 'paypal' } : { kind: 'origin', origin: u.origin, pathPrefix: `${u.pathname.replace(/\/+$/, '')}/` },
    };
  },
  credentialKeys: Object.keys(configSchema.shape),
  appIdOf: (cred) => cred.clientId,
  merchantIdOf: (cred) => cred.merchantId,

  // --- operations ------------------------------------------------------------------------------
  async createPayment(cred, order): Promise<CreateResult> {
    // Installments are Alipay Huabei's (DESIGN §2.5); the API refuses them for other channels already.
    if (order.installments) throw new ChannelRequestError('installments_unsupported', 'PayPal does not take Huabei installments');
    requireCurrency(cred, order.currency);
    const answer = await callApi(cred, 'create order', 'POST', '/v2/checkout/orders', {
      body: createOrderBody(order, { brandName: cred.brandName }),
      requestId: `create:${order.orderNo}`,
    });
    if (!answer.ok) {
      const issue = answer.error.issue ?? answer.error.name;
      if (answer.status === 422 && CREATE_DECLINES.has(issue)) return { ok: false, decline: { code: issue, message: describe('create order', answer).slice(0, 200) } };
      throw faultOf('create order', answer);
    }
    const o = answer.data as PaypalOrder;
    const url = approveLinkOf(o);
    if (typeof o.id !== 'string' || !o.id || !url) throw new ChannelUnavailable('PayPal create order answered without an id or a payer-action link');
    return { ok: true, action: { type: 'redirect', url }, reference: o.id };
  },

  /** Reads the order; an APPROVED one is captured now (the return, the worker and close all come here). */
  async queryPayment(cred, orderNo, ctx): Promise<PaymentQueryResult> {
    const orderId = orderIdOf(ctx?.reference);
    const expected = ctx ? { currency: ctx.currency } : undefined;
    const got = await getOrder(cred, orderId);
    if (!got) return { status: 'not_found' };
    checkOrderNo(got, orderNo);
    if (got.status === 'APPROVED') return (await captureOrder(cred, orderId, expected)).result;
    return orderResultOf(got, expected);
  },

  /**
   * PayPal has no void for intent-CAPTURE orders: closing is never capturing it. The core asks
   * (queryPayment) before it closes, and stops asking about a closed attempt; an approval that
   * still arrives by webhook is captured and the core refunds it automatically.
   */
  async closePayment(): Promise<void> {
    return;
  },

  async refund(cred, req): Promise<RefundResult> {
    requireCurrency(cred, req.currency);
    const captureId = req.attempt?.channelTradeNo ?? (await captureIdOf(cred, req.attempt?.reference ?? null));
    if (!/^[A-Za-z0-9-]{1,64}$/.test(captureId)) throw new ChannelRequestError('capture_unknown', 'PayPal refund: the attempt has no capture id');
    const answer = await callApi(cred, 'refund', 'POST', `/v2/payments/captures/${captureId}/refund`, {
      body: refundBody(req),
      requestId: `refund:${req.refundNo}`,
    });
    if (!answer.ok) {
      const issue = answer.error.issue ?? answer.error.name;
      // The capture has nothing left to refund: what the payer was owed is back with them (protocols/paypal.md: count as refunded).
      if (issue === 'CAPTURE_FULLY_REFUNDED') return { status: 'succeeded' };
      if (answer.status === 422 || answer.status === 404) return { status: 'failed', failureMessage: describe('refund', answer).slice(0, 300) };
      throw faultOf('refund', answer);
    }
    const r = answer.data as PaypalRefund;
    if (r.custom_id !== undefined && r.custom_id !== req.refundNo) throw new ChannelUnavailable('PayPal refund answered about another refund');
    return refundResultOf(r);
  },

  /**
   * GET /v2/payments/refunds/{id}. Without PayPal's refund id (the refund's answer was lost) the
   * refund is not final either way: the worker re-submits it with the same PayPal-Request-Id,
   * which PayPal answers with the same refund for 45 days.
   */
  async queryRefund(cred, _orderNo, refundNo, ctx): Promise<RefundResult> {
    const id = ctx?.channelRefundNo;
    if (!id) throw new ChannelUnavailable(`PayPal refund query: no PayPal refund id for ${refundNo.slice(0, 64)} yet; re-submit the refund to learn its fate`);
    if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw new ChannelRequestError('refund_unknown', 'PayPal refund id is malformed');
    const answer = await callApi(cred, 'refund query', 'GET', `/v2/payments/refunds/${id}`);
    if (!answer.ok) {
      if (answer.status === 404) throw new ChannelUnavailable(`PayPal refund query: refund ${id} not found (yet)`);
      throw faultOf('refund query', answer);
    }
    const r = answer.data as PaypalRefund;
    if (r.custom_id !== undefined && r.custom_id !== refundNo) throw new ChannelUnavailable('PayPal refund query answered about another refund');
    return refundResultOf(r);
  },

  async parseNotification(cred, msg: InboundMessage): Promise<ChannelNotification> {
    if (msg.body.length > MAX_WEBHOOK_BYTES) throw new MalformedMessageError(`PayPal webhook of ${msg.body.length} bytes is larger than any real one`);
    const mediaType = msg.contentType.split(';')[0]!.trim().toLowerCase();
    if (mediaType !== 'application/json') throw new MalformedMessageError(`PayPal webhooks are JSON, got ${mediaType.slice(0, 60) || 'no content type'}`);
    const headers = lowerCaseHeaders(msg.headers);
    // The signature covers the exact body bytes; nothing in the body is believed before it verifies.
    if (cred.webhookVerification === 'postback') await verifyByPostback(cred, headers, msg.body);
    else await verifyTransmission({ headers, body: msg.body, webhookId: cred.webhookId, certRule: cred.certRule });
    let json: unknown;
    try {
      json = JSON.parse(msg.body.toString('utf8'));
    } catch {
      throw new MalformedMessageError('PayPal webhook is not JSON');
    }
    const event = eventOf(json);
    switch (event.event_type) {
      case 'CHECKOUT.ORDER.APPROVED':
        return approvedNotification(cred, event.id, event.resource as PaypalOrder);
      case 'PAYMENT.CAPTURE.COMPLETED':
      case 'PAYMENT.CAPTURE.PENDING':
      case 'PAYMENT.CAPTURE.DENIED':
      case 'PAYMENT.CAPTURE.DECLINED':
        return captureNotification(event.id, event.resource as PaypalCapture);
      case 'PAYMENT.CAPTURE.REFUNDED':
        return refundNotification(cred, event.id, event.resource_type, event.resource as PaypalRefund);
      case 'CHECKOUT.PAYMENT-APPROVAL.REVERSED':
        // An approval PayPal took back before it was captured: the order can no longer be paid.
        return reversedApprovalNotification(event.id, event.resource as PaypalOrder);
      case 'PAYMENT.CAPTURE.REVERSED': {
        // A chargeback or reversal of a paid capture: money left the merchant's account at
        // PayPal, outside any refund of ours. Acknowledged (else PayPal resends it for 3 days)
        // and logged for the operator, who settles it in PayPal's Resolution Center.
        const r = (event.resource ?? {}) as { invoice_id?: unknown; id?: unknown };
        return {
          kind: 'ignored',
          notifyId: event.id,
          orderNo: typeof r.invoice_id === 'string' ? r.invoice_id.slice(0, 64) : undefined,
          reason: `PayPal reversed capture ${typeof r.id === 'string' ? r.id.slice(0, 40) : '(unknown)'} (chargeback or reversal): settle it at PayPal`,
        };
      }
      default:
        throw new MalformedMessageError(`PayPal event_type ${event.event_type.slice(0, 60)} is not one the gateway subscribes to`);
    }
  },

  acknowledge(accepted: boolean): Ack {
    // PayPal counts any 2xx as delivered and retries anything else (25 times over 3 days).
    return accepted
      ? { status: 200, contentType: 'text/plain; charset=utf-8', body: '' }
      : { status: 400, contentType: 'text/plain; charset=utf-8', body: 'refused' };
  },
};

// --- private helpers ---------------------------------------------------------------------------

/**
 * CNY, BRL and MYR are PayPal currencies only for accounts registered in that country; the
 * gateway offers a channel by its currency list alone, so they are not offered at all.
 */
function requireCurrency(_cred: PaypalCredentials, currency: string): void {
  if ((PAYPAL_CURRENCIES as readonly string[]).includes(currency)) return;
  if ((IN_COUNTRY_CURRENCIES as readonly string[]).includes(currency)) {
    throw new ChannelRequestError('currency_unsupported', `PayPal takes ${currency} only for accounts registered in its country, which this gateway does not offer`);
  }
  throw new ChannelRequestError('currency_unsupported', `PayPal does not take ${currency.slice(0, 3)}`);
}

const ORDER_ID = /^[A-Za-z0-9-]{1,36}$/;
function orderIdOf(reference: string | null | undefined): string {
  if (!reference || !ORDER_ID.test(reference)) throw new ChannelRequestError('order_unknown', 'PayPal: the attempt has no PayPal order id (reference)');
  return reference;
}

/** GET the order; undefined when PayPal does not know it (never created, or expired and purged). */
async function getOrder(cred: PaypalCredentials, orderId: string): Promise<PaypalOrder | undefined> {
  const answer = await callApi(cred, 'get order', 'GET', `/v2/checkout/orders/${orderId}`);
  if (!answer.ok) {
    if (answer.status === 404) return undefined;
    throw faultOf('get order', answer);
  }
  return answer.data as PaypalOrder;
}

/** The order must be ours for this attempt: its invoice_id is the attempt's order number. */
function checkOrderNo(order: PaypalOrder, orderNo: string): void {
  const invoice = order.purchase_units?.[0]?.invoice_id;
  if (invoice !== undefined && invoice !== orderNo) throw new ChannelUnavailable('PayPal answered about another order');
}

/**
 * Captures an approved order, idempotently. ORDER_ALREADY_CAPTURED (a concurrent capture won)
 * re-reads the order; the issues that leave it payable answer pending; the final ones closed.
 */
async function captureOrder(cred: PaypalCredentials, orderId: string, expected?: { currency: string }): Promise<{ result: PaymentQueryResult; order?: PaypalOrder }> {
  const answer = await callApi(cred, 'capture', 'POST', `/v2/checkout/orders/${orderId}/capture`, { body: {}, requestId: `capture:${orderId}` });
  if (answer.ok) {
    const order = answer.data as PaypalOrder;
    return { result: orderResultOf(order, expected), order };
  }
  const issue = answer.error.issue ?? answer.error.name;
  if (issue === 'ORDER_ALREADY_CAPTURED') {
    const order = await getOrder(cred, orderId);
    if (!order) throw new ChannelUnavailable(`PayPal capture: order ${orderId} already captured but not found`);
    return { result: orderResultOf(order, expected), order };
  }
  if (answer.status === 404) return { result: { status: 'not_found' } };
  if (CAPTURE_WAIT.has(issue)) return { result: { status: 'pending' } };
  if (CAPTURE_FINAL.has(issue)) return { result: { status: 'closed' } };
  throw faultOf('capture', answer);
}

/** The capture id of an attempt whose trade number the core lacks: read from its order. */
async function captureIdOf(cred: PaypalCredentials, reference: string | null): Promise<string> {
  const order = await getOrder(cred, orderIdOf(reference));
  const id = order && firstCapture(order)?.id;
  if (!id) throw new ChannelRequestError('capture_unknown', 'PayPal refund: the order has no capture');
  return id;
}

function lowerCaseHeaders(headers: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

async function verifyByPostback(cred: PaypalCredentials, headers: Record<string, string | undefined>, body: Buffer): Promise<void> {
  const t = transmissionOf(headers);
  const text = body.toString('utf8');
  const answer = await callApi(cred, 'verify webhook signature', 'POST', '/v1/notifications/verify-webhook-signature', {
    // The event goes as the raw bytes spliced in, never re-serialised.
    rawBody: postbackBody(t, cred.webhookId, text),
  });
  if (!answer.ok) throw new ChannelUnavailable(describe('verify webhook signature', answer));
  if (answer.data.verification_status !== 'SUCCESS') throw new SignatureError('PayPal verify-webhook-signature answered FAILURE');
}

const need = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !v || v.length > 127) throw new MalformedMessageError(`PayPal webhook resource lacks ${what}`);
  return v;
};

/**
 * CHECKOUT.ORDER.APPROVED: the payer approved; capture now. The notification carries the
 * order's amount and currency as PayPal signed them (the core compares both with the payment)
 * and the capture's status and id; a capture that does not match the signed order is not believed.
 */
async function approvedNotification(cred: PaypalCredentials, eventId: string, order: PaypalOrder): Promise<ChannelNotification> {
  const orderId = need(order.id, 'id');
  if (!ORDER_ID.test(orderId)) throw new MalformedMessageError('PayPal webhook order id is malformed');
  const unit = order.purchase_units?.[0];
  const orderNo = need(unit?.invoice_id, 'purchase_units[0].invoice_id');
  const signed = moneyOf(unit?.amount, 'order');
  const base = { kind: 'payment' as const, orderNo, amount: signed.amount, currency: signed.currency, merchantId: unit?.payee?.merchant_id, notifyId: eventId };
  // An order the payee does not match, or in a currency we would not have sent: refuse before any capture.
  if (cred.merchantId && base.merchantId && base.merchantId !== cred.merchantId) return { ...base, channelTradeNo: orderId, status: 'pending' };
  const { result, order: captured } = await captureOrder(cred, orderId);
  const capture = captured && firstCapture(captured);
  if (capture?.amount) {
    const got = moneyOf(capture.amount, 'capture');
    if (got.amount !== signed.amount || got.currency !== signed.currency) throw new MalformedMessageError('PayPal capture does not match the approved order');
  }
  return { ...base, channelTradeNo: result.channelTradeNo ?? orderId, status: result.status === 'not_found' ? 'pending' : result.status, paidAt: result.paidAt };
}

/** CHECKOUT.PAYMENT-APPROVAL.REVERSED: the resource is the order; the attempt is closed. */
function reversedApprovalNotification(eventId: string, order: PaypalOrder): ChannelNotification {
  const orderId = need(order.id, 'id');
  if (!ORDER_ID.test(orderId)) throw new MalformedMessageError('PayPal webhook order id is malformed');
  const unit = order.purchase_units?.[0];
  const money = moneyOf(unit?.amount, 'order');
  return {
    kind: 'payment',
    orderNo: need(unit?.invoice_id, 'purchase_units[0].invoice_id'),
    channelTradeNo: orderId,
    status: 'closed',
    amount: money.amount,
    currency: money.currency,
    merchantId: unit?.payee?.merchant_id,
    notifyId: eventId,
  };
}

/** PAYMENT.CAPTURE.*: the resource is the capture, its invoice_id our order number. */
function captureNotification(eventId: string, capture: PaypalCapture): ChannelNotification {
  const money = moneyOf(capture.amount, 'capture');
  const result = captureResultOf(capture);
  return {
    kind: 'payment',
    orderNo: need(capture.invoice_id, 'invoice_id'),
    channelTradeNo: need(capture.id, 'id'),
    status: result.status === 'not_found' ? 'pending' : result.status,
    amount: money.amount,
    currency: money.currency,
    merchantId: capture.payee?.merchant_id,
    paidAt: result.status === 'succeeded' ? unixOf(capture.create_time) : undefined,
    notifyId: eventId,
  };
}

/**
 * PAYMENT.CAPTURE.REFUNDED: the resource is the refund (checked by resource_type), whose custom_id
 * is our refund number. Its invoice_id is not promised to be the order's, so the order number is
 * read from the capture it is `up` from.
 */
async function refundNotification(cred: PaypalCredentials, eventId: string, resourceType: string | undefined, refund: PaypalRefund): Promise<ChannelNotification> {
  if (resourceType !== undefined && resourceType !== 'refund') throw new MalformedMessageError(`PayPal PAYMENT.CAPTURE.REFUNDED carries a ${String(resourceType).slice(0, 20)}, not a refund`);
  const refundNo = need(refund.custom_id, 'custom_id (our refund number)');
  const money = moneyOf(refund.amount, 'refund');
  const captureId = linkedId(refund.links, 'up');
  if (!captureId) throw new MalformedMessageError('PayPal refund resource has no link up to its capture');
  const answer = await callApi(cred, 'get capture', 'GET', `/v2/payments/captures/${captureId}`);
  if (!answer.ok) throw new ChannelUnavailable(describe('get capture', answer));
  const capture = answer.data as PaypalCapture;
  const result = refundResultOf(refund);
  return {
    kind: 'refund',
    orderNo: need(capture.invoice_id, 'invoice_id of the capture'),
    refundNo,
    channelRefundNo: need(refund.id, 'id'),
    status: result.status,
    amount: money.amount,
    currency: money.currency,
    notifyId: eventId,
  };
}
