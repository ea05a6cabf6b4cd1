/**
 * Stripe adapter (codes card and apple_pay): hosted Checkout Sessions through the official
 * `stripe` package, with the SDK and the API version pinned. Both codes open the same hosted
 * page (it has no Apple-Pay-only mode); the wallet the buyer used is read from the charge.
 * Truth comes from the signed webhook (Stripe-Signature) or from retrieving the session; the
 * success URL is display only. Notes: protocols/cards.md.
 */
import type Stripe from 'stripe';
import { z } from 'zod';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../errors.ts';
import type { Ack, Channel, ChannelNotification, CreateResult, InboundMessage, PaymentQueryResult, RefundResult } from '../types.ts';
import { isLoopbackHost, verifyEvent } from './sign.ts';
import {
  STRIPE_CURRENCIES, fromStripeAmount, isoCurrency, paymentIntentStatusOf, readEvent, refundStatusOf, required, requiredAmount, sessionStatusOf,
  toStripeAmount, walletOf, WEBHOOK_EVENTS, type ChargeShape, type PaymentIntentShape, type RefundShape, type SessionShape,
} from './transform.ts';

/** The API version this build speaks: the one stripe@23.1.0 pins (its API_VERSION). Shapes change across versions. */
export const STRIPE_API_VERSION = '2026-10-28.endive';

/** Parsed Stripe credentials. */
export interface StripeCredentials {
  secretKey: string;
  webhookSecret: string;
  host?: string;
  port?: number;
  protocol: 'https' | 'http';
  /** A path the API sits under on `host` (the simulator: /sandbox/stripe); Stripe's own API has none. */
  basePath?: string;
}

const REQUEST_TIMEOUT_MS = 15_000;
/** Stripe's default webhook tolerance: a signature older than this is refused (replays). */
export const WEBHOOK_TOLERANCE_S = 300;

const configSchema = z.object({
  secret_key: z.string().regex(/^(sk|rk)_(test|live)_[A-Za-z0-9]{8,}$/, 'must be a Stripe secret key (sk_test_…, sk_live_…, or a restricted rk_… key)'),
  webhook_secret: z.string().regex(/^whsec_[A-Za-z0-9+/=]{8,}$/, "must be the webhook endpoint's signing secret (whsec_…)"),
  host: z.string().regex(/^[A-Za-z0-9.-]{1,253}$|^\[[0-9a-fA-F:]+\]$/, 'must be a host name (no scheme, no path)').optional(),
  port: z.number().int().min(1).max(65535, 'must be a TCP port').optional(),
  protocol: z.enum(['https', 'http'], { error: 'must be https or http' }).optional(),
  base_path: z.string().regex(/^(\/[A-Za-z0-9._-]+)+$/, 'must be a path such as /sandbox/stripe').optional(),
});

export const stripe: Channel<StripeCredentials> = {
  // --- metadata --------------------------------------------------------------------------------
  provider: 'stripe',
  displayName: 'Stripe',
  codes: ['card', 'apple_pay'],
  currencies: STRIPE_CURRENCIES,

  // --- credentials -----------------------------------------------------------------------------
  parseCredentials(raw: unknown): StripeCredentials {
    const parsed = configSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ChannelConfigError(`Stripe config: ${issue.path.join('.') || 'config'} ${issue.message}`);
    }
    const c = parsed.data;
    const protocol = c.protocol ?? 'https';
    // Plain HTTP is for an in-process simulator only: Stripe does not support it, and a key sent
    // in clear over a network is a key given away.
    if (protocol === 'http' && !(c.secret_key.startsWith('sk_test_') && c.host && isLoopbackHost(c.host))) {
      throw new ChannelConfigError('Stripe config: protocol http is allowed only with a test key (sk_test_…) and a loopback host');
    }
    if (c.base_path && !c.host) throw new ChannelConfigError('Stripe config: base_path needs host (Stripe\'s own API has no path prefix)');
    return { secretKey: c.secret_key, webhookSecret: c.webhook_secret, host: c.host, port: c.port, protocol, basePath: c.base_path };
  },
  credentialKeys: Object.keys(configSchema.shape),
  // Stripe's events name no account (they come to one endpoint per account): nothing to compare.
  appIdOf: () => 'stripe',
  merchantIdOf: () => undefined,

  // --- operations ------------------------------------------------------------------------------
  async createPayment(cred, order): Promise<CreateResult> {
    // Installments are Alipay Huabei's (DESIGN §2.5); the API refuses them for other channels already.
    if (order.installments) throw new ChannelRequestError('installments_unsupported', 'Stripe does not take Huabei installments');
    if (order.channel !== 'card' && order.channel !== 'apple_pay') throw new ChannelRequestError('channel_unsupported', `Stripe does not serve channel ${order.channel}`);
    const unitAmount = stripeAmount(order.amount, order.currency);
    const back = `${order.returnUrl}?out_trade_no=${encodeURIComponent(order.orderNo)}`;
    const now = Math.floor(Date.now() / 1000);
    // Stripe takes 30 min to 24 h; the gateway closes the session itself when the payment expires sooner.
    const expiresAt = Math.min(Math.max(order.expiresAt, now + 31 * 60), now + 24 * 3600 - 60);
    const session = await call('checkout.sessions.create', async (s) =>
      s.checkout.sessions.create({
        mode: 'payment',
        line_items: [{
          quantity: 1,
          price_data: {
            currency: order.currency.toLowerCase(),
            unit_amount: unitAmount,
            product_data: { name: order.subject.slice(0, 250), ...(order.description ? { description: order.description.slice(0, 500) } : {}) },
          },
        }],
        // Wallets (Apple Pay, Google Pay) are part of the card method on hosted Checkout.
        allowed_payment_method_types: ['card'],
        client_reference_id: order.orderNo,
        // The code the payer chose (card or apple_pay): the hosted page is the same, the console shows what was used.
        metadata: { order_no: order.orderNo, checkstand_channel: order.channel },
        // Session metadata stays on the session: the PaymentIntent (and its charge, refunds) get their own copy.
        payment_intent_data: { metadata: { order_no: order.orderNo }, description: order.subject.slice(0, 250) },
        // Stripe substitutes {CHECKOUT_SESSION_ID}; the return page reads the session, never trusts the URL.
        success_url: `${back}&session_id={CHECKOUT_SESSION_ID}`,
        cancel_url: back,
        expires_at: expiresAt,
      }, { idempotencyKey: `create:${order.orderNo}` }), cred);
    if (!session.url) throw new ChannelUnavailable('Stripe checkout.sessions.create answered without url');
    return { ok: true, action: { type: 'redirect', url: session.url }, reference: session.id };
  },

  async queryPayment(cred, orderNo, ctx): Promise<PaymentQueryResult> {
    const sessionId = ctx?.reference;
    if (!sessionId) return { status: 'not_found' };
    const session = (await call('checkout.sessions.retrieve', (s) =>
      s.checkout.sessions.retrieve(sessionId, { expand: ['payment_intent', 'payment_intent.latest_charge'] }), cred)) as unknown as SessionShape;
    if (session.client_reference_id !== orderNo) throw new ChannelRequestError('session_mismatch', 'Stripe session belongs to another order');
    const pi = typeof session.payment_intent === 'object' ? session.payment_intent : null;
    let status = sessionStatusOf(session);
    // A canceled PaymentIntent cannot be paid on any more.
    if (status === 'pending' && pi && paymentIntentStatusOf(pi.status) === 'closed') status = 'closed';
    if (status !== 'succeeded') return { status };
    const charge = pi && typeof pi.latest_charge === 'object' ? pi.latest_charge : null;
    const currency = (session.currency ?? '').toUpperCase();
    return {
      status,
      channelTradeNo: pi?.id ?? (typeof session.payment_intent === 'string' ? session.payment_intent : undefined),
      amount: session.amount_total === null ? undefined : readAmount(() => fromStripeAmount(session.amount_total!, currency)),
      paidAt: charge?.created,
      wallet: walletOf(charge),
    };
  },

  async closePayment(cred, _orderNo, ctx): Promise<void> {
    const sessionId = ctx?.reference;
    if (!sessionId) return; // never placed at Stripe
    try {
      await call('checkout.sessions.expire', (s) => s.checkout.sessions.expire(sessionId, {}, { idempotencyKey: `expire:${sessionId}` }), cred);
    } catch (err) {
      if (!(err instanceof ChannelRequestError)) throw err;
      // Only an open session expires; the session says which other state it is in.
      const now = (await call('checkout.sessions.retrieve', (s) => s.checkout.sessions.retrieve(sessionId), cred)) as unknown as SessionShape;
      if (now.status === 'expired') return;
      // Complete: paid meanwhile (the core asks again and finds it paid), or an async payment under way.
      throw new ChannelRequestError('session_complete', `Stripe session ${sessionId} is complete and cannot be expired`);
    }
  },

  async refund(cred, req): Promise<RefundResult> {
    const paymentIntent = req.attempt?.channelTradeNo;
    if (!paymentIntent) throw new ChannelRequestError('payment_intent_missing', 'Stripe refund: the attempt has no payment_intent');
    const amount = stripeAmount(req.amount, req.currency);
    let refund: RefundShape;
    try {
      refund = (await call('refunds.create', (s) => s.refunds.create({
        payment_intent: paymentIntent,
        amount,
        metadata: { refund_no: req.refundNo, order_no: req.orderNo, ...(req.reason ? { reason: req.reason.slice(0, 500) } : {}) },
      }, { idempotencyKey: `refund:${req.refundNo}` }), cred)) as unknown as RefundShape;
    } catch (err) {
      // Stripe refused this refund (fully refunded already, amount above what is left): a final answer.
      if (err instanceof ChannelRequestError) return { status: 'failed', failureMessage: err.message };
      throw err;
    }
    // A resubmission replays the first answer (idempotency): a refund that was pending then is read again.
    if (refundStatusOf(refund.status) === 'pending') refund = await retrieveRefund(cred, refund.id);
    return refundResultOf(refund);
  },

  async queryRefund(cred, _orderNo, refundNo, ctx): Promise<RefundResult> {
    if (ctx?.channelRefundNo) return refundResultOf(await retrieveRefund(cred, ctx.channelRefundNo));
    const paymentIntent = ctx?.attempt.channelTradeNo;
    if (!paymentIntent) return { status: 'failed', failureMessage: 'Stripe refund: the attempt has no payment_intent' };
    const list = await call('refunds.list', (s) => s.refunds.list({ payment_intent: paymentIntent, limit: 100 }), cred);
    const found = (list.data as unknown as RefundShape[]).find((r) => r.metadata?.refund_no === refundNo);
    // Not at Stripe: the refund was never created there.
    return found ? refundResultOf(found) : { status: 'failed', failureMessage: 'no such refund at Stripe' };
  },

  async parseNotification(cred, msg: InboundMessage): Promise<ChannelNotification> {
    const mediaType = msg.contentType.split(';')[0]!.trim().toLowerCase();
    if (mediaType !== 'application/json') throw new MalformedMessageError(`Stripe webhooks are JSON, got ${mediaType.slice(0, 60) || 'no content type'}`);
    const event = readEvent(await verifyEvent(msg.body, msg.headers['stripe-signature'], cred.webhookSecret, WEBHOOK_TOLERANCE_S));
    const notifyId = event.id;
    if (event.type.startsWith('checkout.session.')) {
      const s = event.object as SessionShape;
      const orderNo = required(s.client_reference_id, 'client_reference_id');
      if (s.metadata?.order_no !== undefined && s.metadata.order_no !== orderNo) throw new MalformedMessageError('Stripe session metadata names another order');
      const currency = isoCurrency(s.currency);
      const amount = readMessageAmount(() => fromStripeAmount(requiredAmount(s.amount_total, 'amount_total'), currency));
      const status = event.type === 'checkout.session.completed' ? sessionStatusOf(s)
        : event.type === 'checkout.session.async_payment_succeeded' ? 'succeeded'
        : 'closed'; // async_payment_failed (final) and expired
      const channelTradeNo = typeof s.payment_intent === 'string' ? s.payment_intent : s.payment_intent?.id ?? '';
      if (status === 'succeeded' && !channelTradeNo) throw new MalformedMessageError('Stripe event lacks payment_intent');
      const n: ChannelNotification = { kind: 'payment', orderNo, channelTradeNo, status, amount, currency, notifyId };
      if (status === 'succeeded') {
        const charge = await paidCharge(cred, channelTradeNo);
        if (charge) Object.assign(n, { wallet: walletOf(charge), paidAt: charge.created });
      }
      return n;
    }
    const refund = event.type === 'charge.refunded' ? await newestRefundOf(cred, event.object as ChargeShape) : (event.object as RefundShape);
    return {
      kind: 'refund',
      orderNo: required(refund.metadata?.order_no, 'metadata.order_no'),
      refundNo: required(refund.metadata?.refund_no, 'metadata.refund_no'),
      channelRefundNo: refund.id,
      status: refundStatusOf(refund.status),
      amount: readMessageAmount(() => fromStripeAmount(requiredAmount(refund.amount, 'amount'), isoCurrency(refund.currency))),
      currency: isoCurrency(refund.currency),
      notifyId,
    };
  },

  webhookEvents: WEBHOOK_EVENTS,

  acknowledge(accepted: boolean): Ack {
    // Stripe retries anything but a 2xx.
    return accepted
      ? { status: 200, contentType: 'application/json', body: '{"received":true}' }
      : { status: 400, contentType: 'application/json', body: '{"received":false}' };
  },
};

// --- private helpers ---------------------------------------------------------------------------

function stripeAmount(amount: number, currency: string): number {
  if (!STRIPE_CURRENCIES.includes(currency)) throw new ChannelRequestError('currency_unsupported', `Stripe (as configured here) does not take ${currency}`);
  try {
    return toStripeAmount(amount, currency);
  } catch (err) {
    throw new ChannelRequestError('amount_invalid', (err as Error).message);
  }
}

function readAmount(read: () => number): number {
  try {
    return read();
  } catch {
    throw new ChannelUnavailable('Stripe answered an unreadable amount');
  }
}

function readMessageAmount(read: () => number): number {
  try {
    return read();
  } catch (err) {
    if (err instanceof MalformedMessageError) throw err;
    throw new MalformedMessageError('Stripe event amount is unreadable');
  }
}

function refundResultOf(r: RefundShape): RefundResult {
  const status = refundStatusOf(r.status);
  return { status, channelRefundNo: r.id, ...(status === 'failed' ? { failureMessage: `Stripe refund ${r.status}${r.failure_reason ? `: ${r.failure_reason}` : ''}` } : {}) };
}

async function retrieveRefund(cred: StripeCredentials, id: string): Promise<RefundShape> {
  return (await call('refunds.retrieve', (s) => s.refunds.retrieve(id), cred)) as unknown as RefundShape;
}

/**
 * The paid PaymentIntent's charge, for the wallet shown in the console. Best effort: the event
 * alone settles the payment, so an unreachable Stripe leaves the wallet unknown rather than the
 * event refused.
 */
async function paidCharge(cred: StripeCredentials, paymentIntent: string): Promise<ChargeShape | undefined> {
  try {
    const pi = (await call('paymentIntents.retrieve', (s) => s.paymentIntents.retrieve(paymentIntent, { expand: ['latest_charge'] }), cred)) as unknown as PaymentIntentShape;
    return typeof pi.latest_charge === 'object' && pi.latest_charge ? pi.latest_charge : undefined;
  } catch {
    return undefined;
  }
}

/**
 * charge.refunded names the charge, not the refund (its refunds list is no longer inlined): the
 * newest refund of the charge's PaymentIntent is the one it announces. Reporting an older one
 * again is harmless: the core applies each refund's final status once.
 */
async function newestRefundOf(cred: StripeCredentials, charge: ChargeShape): Promise<RefundShape> {
  const inlined = charge.refunds?.data?.[0];
  if (inlined) return inlined;
  const paymentIntent = required(charge.payment_intent, 'payment_intent');
  const list = await call('refunds.list', (s) => s.refunds.list({ payment_intent: paymentIntent, limit: 1 }), cred);
  const newest = list.data[0] as unknown as RefundShape | undefined;
  if (!newest) throw new MalformedMessageError('Stripe charge.refunded names a charge without refunds');
  return newest;
}

// Loaded on the first Stripe call, not at start (like the Alipay SDK): no request before it needs it.
let sdkModule: Promise<typeof import('stripe')> | undefined;
const clients = new WeakMap<StripeCredentials, Stripe>();

/** The official client for these credentials (cached per parsed credential object). */
export async function clientFor(cred: StripeCredentials): Promise<Stripe> {
  const { default: StripeSdk } = await (sdkModule ??= import('stripe'));
  let client = clients.get(cred);
  if (!client) {
    const prefix = cred.basePath;
    client = new StripeSdk(cred.secretKey, {
      apiVersion: STRIPE_API_VERSION as Stripe.LatestApiVersion,
      timeout: REQUEST_TIMEOUT_MS,
      // Every POST carries our own idempotency key, so the SDK's retry of a lost answer is safe.
      maxNetworkRetries: 1,
      telemetry: false,
      ...(cred.host ? { host: cred.host } : {}),
      ...(cred.port ? { port: cred.port } : {}),
      protocol: cred.protocol,
      // The SDK's base path is fixed at /v1/: a simulator below a path (the gateway's own /v1 is
      // its API) is reached by rewriting the URL the SDK built (protocols/cards.md, option 2).
      ...(prefix ? {
        httpClient: StripeSdk.createFetchHttpClient((url: string | URL | Request, init?: RequestInit) => {
          const u = new URL(String(url));
          u.pathname = prefix + u.pathname;
          return fetch(u, init);
        }),
      } : {}),
    });
    clients.set(cred, client);
  }
  return client;
}

/** One SDK call; Stripe's errors become our typed faults (a refusal of the request is a ChannelRequestError). */
export async function call<T>(what: string, fn: (s: Stripe) => Promise<T>, cred: StripeCredentials): Promise<T> {
  const s = await clientFor(cred);
  try {
    return await fn(s);
  } catch (err) {
    throw faultOf(what, err);
  }
}

function faultOf(what: string, err: unknown): Error {
  const e = err as { type?: string; code?: string; message?: string; param?: string; statusCode?: number; requestId?: string };
  const detail = `Stripe ${what}: ${String(e?.message ?? 'failed').slice(0, 300)}${e?.param ? ` (param ${e.param})` : ''}${e?.requestId ? ` [${e.requestId}]` : ''}`;
  switch (e?.type) {
    case 'StripeConnectionError':
      return new ChannelUnavailable(`Stripe ${what}: Stripe unreachable`);
    case 'StripeAuthenticationError':
    case 'StripePermissionError':
      return new ChannelConfigError(detail);
    case 'StripeAPIError':
    case 'StripeRateLimitError':
      return new ChannelUnavailable(detail);
    case 'StripeInvalidRequestError':
    case 'StripeCardError':
    case 'StripeIdempotencyError':
      return new ChannelRequestError(e.code ?? (e.type === 'StripeIdempotencyError' ? 'idempotency_error' : 'invalid_request'), detail);
    default:
      if (err instanceof ChannelRequestError || err instanceof ChannelUnavailable || err instanceof ChannelConfigError) return err;
      return new ChannelUnavailable(`Stripe ${what}: unreadable answer`);
  }
}

