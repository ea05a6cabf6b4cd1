import type { Knex } from 'knex';
import { z } from 'zod';
import { newId, nowSeconds, randomId } from '../crypto.ts';
import { invalid, notFound } from '../errors.ts';
import { insertEvent } from '../events/repo.ts';
import type { AuthContext, Deps } from '../deps.ts';
import { channelFor, isImplemented } from '../channels/registry.ts';
import { CHANNEL_CODES, providerOf, type ChannelCode, type ChannelPaymentStatus, type CreateResult } from '../channels/types.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { paginate } from '../http/pagination.ts';
import { batcherFor } from '../batch.ts';
import { queueAutomaticRefund } from '../refunds/service.ts';
import { CURRENCIES, type CreatePaymentInput } from './validation.ts';
import { transaction, type Sql } from '../sql.ts';
import {
  attemptFromRow, closeSiblingAttempts, findPayment, findPaymentById, markAttemptSucceeded, markPaymentSucceeded, paymentFromRow,
  type AttemptRow, type PaymentRow,
} from './repo.ts';

const unixSeconds = z.number().int().describe('unix seconds');

/** What the payer's page or app does next to pay: the six shapes of DESIGN §2.1 (Stripe's next_action). */
export const nextActionSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('redirect_to_url'), redirect_to_url: z.strictObject({ url: z.string() }) })
      .describe('Send the browser to `url`: Alipay PC/WAP, WeChat H5, PayPal, cards.'),
    z.strictObject({ type: z.literal('post_form'), post_form: z.strictObject({ url: z.string(), fields: z.record(z.string(), z.string()) }) })
      .describe('Auto-post a form of `fields` to `url`: UnionPay.'),
    z.strictObject({
      type: z.literal('display_qr_code'),
      display_qr_code: z.strictObject({
        data: z.string().describe('the text the QR code encodes'),
        image_url: z.string().describe('an SVG of `data`, served by the gateway'),
        expires_at: unixSeconds,
      }),
    }).describe('Show a QR code for the payer to scan: Alipay QR, WeChat Native.'),
    z.strictObject({
      type: z.literal('wechat_jsapi'),
      wechat_jsapi: z.strictObject({ appId: z.string(), timeStamp: z.string(), nonceStr: z.string(), package: z.string(), signType: z.string(), paySign: z.string() }),
    }).describe("The parameters of WeixinJSBridge's getBrandWCPayRequest, inside WeChat."),
    z.strictObject({
      type: z.literal('wechat_app'),
      wechat_app: z.strictObject({
        appid: z.string(), partnerid: z.string(), prepayid: z.string(), package: z.string(), noncestr: z.string(), timestamp: z.string(), sign: z.string(),
      }),
    }).describe("The fields of the WeChat app SDK's PayReq."),
    z.strictObject({ type: z.literal('alipay_app'), alipay_app: z.strictObject({ order_string: z.string() }) })
      .describe("The signed order string the Alipay app SDK's payOrder / payV2 takes."),
  ])
  .meta({ id: 'NextAction' });

/** Why the last channel order of a payment was declined; null when it was not. */
export const attemptErrorSchema = z
  .strictObject({ channel: z.enum(CHANNEL_CODES), code: z.string(), message: z.string() })
  .meta({ id: 'AttemptError' });

/** The payment object as the API answers it; a test parses real answers with it. */
export const paymentObjectSchema = z
  .object({
    id: z.string().describe('pay_…'),
    object: z.literal('payment'),
    livemode: z.boolean(),
    app_id: z.string(),
    out_trade_no: z.string(),
    amount: z.number().int().describe("in the currency's minor unit (fen for CNY)"),
    currency: z.string(),
    subject: z.string(),
    description: z.string().nullable(),
    channel: z.enum(CHANNEL_CODES).nullable(),
    status: z.enum(['pending', 'succeeded', 'closed']),
    amount_refunded: z.number().int(),
    channel_trade_no: z.string().nullable(),
    paid_at: unixSeconds.nullable(),
    expires_at: unixSeconds,
    return_url: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    checkout_url: z.string().describe('the hosted cashier for this payment'),
    created: unixSeconds,
    next_action: nextActionSchema.nullable().describe('what the payer does next on the placed channel order; null when nothing is left to do'),
    last_attempt_error: attemptErrorSchema.nullable(),
  })
  .strict()
  .meta({ id: 'Payment' });

/** The public payment object of DESIGN §2. */
export function toPaymentObject(p: PaymentRow, publicUrl: string) {
  return {
    id: p.id,
    object: 'payment' as const,
    livemode: p.livemode,
    app_id: p.app_id,
    out_trade_no: p.out_trade_no,
    amount: p.amount,
    currency: p.currency,
    subject: p.subject,
    description: p.description ?? null,
    channel: p.channel ?? null,
    status: p.status,
    amount_refunded: p.amount_refunded,
    channel_trade_no: p.channel_trade_no ?? null,
    paid_at: p.paid_at ?? null,
    expires_at: p.expires_at,
    return_url: p.return_url ?? null,
    metadata: p.metadata,
    checkout_url: `${publicUrl}/pay/${p.checkout_token}`,
    created: p.created,
    // Filled in by the direct API (DESIGN §2.1); until a create or confirm places an order, nothing to do.
    next_action: null as z.output<typeof nextActionSchema> | null,
    last_attempt_error: null as z.output<typeof attemptErrorSchema> | null,
  };
}
export type PaymentObject = ReturnType<typeof toPaymentObject>;

export async function createPayment(deps: Deps, auth: AuthContext, input: CreatePaymentInput): Promise<PaymentObject> {
  if (input.channel && !isImplemented(input.channel)) {
    throw invalid('channel_unavailable', `Channel ${input.channel} is not available yet on this gateway.`, 'channel');
  }
  if (input.channel && !channelFor(providerOf(input.channel))!.currencies.includes(input.currency)) {
    throw invalid('currency_not_supported', `Channel ${input.channel} does not accept ${input.currency}.`, 'currency');
  }
  const created = nowSeconds();
  const row = {
    id: newId('pay'),
    app_id: auth.appId,
    livemode: auth.livemode,
    out_trade_no: input.out_trade_no,
    amount: input.amount,
    currency: input.currency,
    subject: input.subject,
    description: input.description ?? null,
    channel: input.channel ?? null,
    status: 'pending',
    amount_refunded: 0,
    expires_at: created + input.expires_in,
    return_url: input.return_url ?? null,
    metadata: JSON.stringify(input.metadata),
    // 32 base62 characters ≈ 190 bits: the checkout URL is the only credential the customer holds.
    checkout_token: randomId(32),
    client_ip: input.client_ip ?? null,
    created,
    updated_ms: Date.now(),
  };
  // Batched with concurrent creates (group commit); a unique-key conflict comes back as false.
  if (!(await batcherFor(deps.db, 'payments').insert(row))) {
    throw invalid('out_trade_no_taken', `A payment with out_trade_no '${input.out_trade_no}' already exists for this app.`, 'out_trade_no');
  }
  return toPaymentObject(paymentFromRow(row), deps.config.publicUrl);
}

export async function retrievePayment(deps: Deps, auth: AuthContext, id: string): Promise<PaymentObject> {
  const p = await findPayment(deps.db, auth, id);
  if (!p) throw notFound('payment', id);
  return toPaymentObject(p, deps.config.publicUrl);
}

export interface ListFilters {
  limit: number;
  starting_after?: string;
  ending_before?: string;
  status?: string;
  channel?: string;
  out_trade_no?: string;
  created_gte?: number;
  created_lte?: number;
}

export function listPayments(deps: Deps, auth: AuthContext, f: ListFilters) {
  const scoped = () => {
    const q = deps.db('payments').where({ app_id: auth.appId, livemode: auth.livemode });
    if (f.status) q.where('status', f.status);
    if (f.channel) q.where('channel', f.channel);
    if (f.out_trade_no) q.where('out_trade_no', f.out_trade_no);
    if (f.created_gte !== undefined) q.where('created', '>=', f.created_gte);
    if (f.created_lte !== undefined) q.where('created', '<=', f.created_lte);
    return q;
  };
  return paginate(scoped, { ...f, url: '/v1/payments' }, (r) => toPaymentObject(paymentFromRow(r), deps.config.publicUrl));
}

/** Seconds after which a still-pending attempt is queried at the channel (issue: active query). */
const FIRST_QUERY_MS = 10_000;

/**
 * Places a new order at the channel for a pending payment (one attempt per channel order).
 * Returns what the customer's browser does next, or the channel's decline.
 */
export async function startAttempt(
  deps: Deps,
  payment: PaymentRow,
  channel: ChannelCode,
  ctx: { clientIp?: string | null; openid?: string } = {},
): Promise<{ attempt: AttemptRow; result: CreateResult }> {
  if (payment.status !== 'pending') throw invalid('payment_unexpected_state', `This payment is ${payment.status}.`, 'id');
  if (payment.expires_at <= nowSeconds()) throw invalid('payment_expired', 'This payment has expired.', 'id');
  if (!isImplemented(channel)) throw invalid('channel_unavailable', `Channel ${channel} is not available yet on this gateway.`, 'channel');
  const provider = providerOf(channel);
  const adapter = channelFor(provider)!;
  if (!adapter.currencies.includes(payment.currency)) {
    throw invalid('currency_not_supported', `Channel ${channel} does not accept ${payment.currency}.`, 'channel');
  }
  const cred = await getCredentials(deps, payment.app_id, provider, payment.livemode);
  const attemptId = newId('att');
  // WeChat allows 32 characters [A-Za-z0-9_-|*]: a 30-character random order number fits every channel.
  const orderNo = `cs${randomId(30)}`;
  const now = nowSeconds();
  const base = deps.config.publicUrl;
  await deps.db('payment_attempts').insert({
    id: attemptId,
    payment_id: payment.id,
    app_id: payment.app_id,
    livemode: payment.livemode,
    channel,
    provider,
    channel_order_no: orderNo,
    status: 'pending',
    created: now,
    updated_ms: Date.now(),
    next_query_at_ms: Date.now() + FIRST_QUERY_MS,
  });
  const result = await adapter.createPayment(cred, {
    channel,
    orderNo,
    amount: payment.amount,
    currency: payment.currency,
    subject: payment.subject,
    description: payment.description,
    expiresAt: payment.expires_at,
    notifyUrl: `${base}/notify/${provider}/${payment.app_id}`,
    returnUrl: `${base}/pay/${payment.checkout_token}/return`,
    // A payer who quits Alipay's mobile cashier comes back through the return page too: it asks
    // Alipay, then offers the channel choice again with a line saying how the attempt went.
    quitUrl: `${base}/pay/${payment.checkout_token}/return`,
    clientIp: ctx.clientIp ?? payment.client_ip,
    openid: ctx.openid,
  });
  if (result.ok) {
    await deps.db('payment_attempts').where({ id: attemptId }).update({ action: JSON.stringify(result.action), updated_ms: Date.now() });
  } else {
    await recordAttemptFailure(deps, attemptId, result.decline.code, result.decline.message);
  }
  const attempt = attemptFromRow(await deps.db('payment_attempts').where({ id: attemptId }).first());
  return { attempt, result };
}

/** A failed attempt leaves the payment pending; the merchant hears payment.attempt_failed. */
async function recordAttemptFailure(deps: Deps, attemptId: string, code: string, message: string): Promise<void> {
  let paymentId: string | undefined;
  await deps.db.transaction(async (trx) => {
    const n = await trx('payment_attempts')
      .where({ id: attemptId, status: 'pending' })
      .update({ status: 'failed', failure_code: code, failure_message: message, next_query_at_ms: null, updated_ms: Date.now() });
    if (n !== 1) return;
    const attempt = attemptFromRow(await trx('payment_attempts').where({ id: attemptId }).first());
    const payment = paymentFromRow(await trx('payments').where({ id: attempt.payment_id }).first());
    paymentId = payment.id;
    await insertEvent(trx, {
      appId: payment.app_id,
      livemode: payment.livemode,
      type: 'payment.attempt_failed',
      object: { ...toPaymentObject(payment, deps.config.publicUrl), last_attempt: { channel: attempt.channel, failure_code: code, failure_message: message } },
    });
  });
  if (paymentId) await announce(deps, paymentId);
}

export interface ChannelOutcome {
  status: ChannelPaymentStatus;
  channelTradeNo?: string;
  paidAt?: number;
  failureCode?: string;
  failureMessage?: string;
}

/**
 * Applies what a channel said about an attempt (notify, return-page query or active query).
 * Conditional updates inside one transaction decide races; the event is written with the change.
 * Returns whether anything changed (a duplicate notify changes nothing).
 */
export async function applyAttemptOutcome(deps: Deps, attempt: AttemptRow, outcome: ChannelOutcome): Promise<boolean> {
  if (outcome.status === 'closed') {
    await recordAttemptFailure(deps, attempt.id, outcome.failureCode ?? 'closed', outcome.failureMessage ?? 'The order was closed at the channel before it was paid.');
    return true;
  }
  if (outcome.status !== 'succeeded') return false;
  // The payment's status after the change, for the announcement; undefined when nothing changed.
  const status = await transaction(deps.db, async (tx) => {
    const nowMs = Date.now();
    const channelTradeNo = outcome.channelTradeNo ?? null;
    if (!(await markAttemptSucceeded(tx, attempt.id, channelTradeNo, nowMs))) return undefined;
    const won = await markPaymentSucceeded(tx, { paymentId: attempt.payment_id, channel: attempt.channel, channelTradeNo, paidAt: outcome.paidAt ?? nowSeconds(), nowMs });
    if (won) {
      await insertEvent(tx, { appId: won.app_id, livemode: won.livemode, type: 'payment.succeeded', object: toPaymentObject(won, deps.config.publicUrl) });
      await closeSiblingAttempts(tx, won.id, attempt.id, nowMs);
      return won.status;
    }
    // The customer paid a second attempt (or after closing): the money is at the channel and goes back.
    const payment = (await findPaymentById(tx, attempt.payment_id))!;
    await queueAutomaticRefund(tx, payment, attempt);
    deps.logger.warn('second successful attempt for a payment; refunding it', { payment_id: attempt.payment_id, attempt_id: attempt.id });
    return payment.status;
  });
  if (status === undefined) return false;
  await announce(deps, attempt.payment_id, status);
  return true;
}

export async function emitPaymentEvent(deps: Deps, trx: Knex.Transaction | Sql, paymentId: string, type: 'payment.succeeded' | 'payment.closed') {
  const payment = (await findPaymentById(trx, paymentId))!;
  await insertEvent(trx, { appId: payment.app_id, livemode: payment.livemode, type, object: toPaymentObject(payment, deps.config.publicUrl) });
}

/** Tells cashiers watching this payment and wakes the webhook worker. `status`: the payment's, when the caller knows it. */
export async function announce(deps: Deps, paymentId: string, status?: string): Promise<void> {
  if (status === undefined) {
    const p = await findPaymentById(deps.db, paymentId);
    if (!p) return;
    status = p.status;
  }
  await deps.bus.publish(`payment:${paymentId}`, status);
  await deps.bus.publish('webhooks', paymentId);
}

/** Queries the channel for a pending attempt and applies a final answer. */
export async function refreshAttempt(deps: Deps, attempt: AttemptRow): Promise<void> {
  const adapter = channelFor(attempt.provider);
  if (!adapter) return;
  const cred = await getCredentials(deps, attempt.app_id, attempt.provider, attempt.livemode);
  const q = await adapter.queryPayment(cred, attempt.channel_order_no);
  if (q.status === 'succeeded') {
    const payment = await findPaymentById(deps.db, attempt.payment_id);
    if (payment && q.amount !== undefined && q.amount !== payment.amount) {
      deps.logger.error('channel query amount differs from the payment', { payment_id: payment.id, attempt_id: attempt.id });
      return;
    }
    await applyAttemptOutcome(deps, attempt, { status: 'succeeded', channelTradeNo: q.channelTradeNo, paidAt: q.paidAt });
  } else if (q.status === 'closed') {
    await applyAttemptOutcome(deps, attempt, { status: 'closed' });
  }
}

export function minorUnits(currency: string): number {
  return CURRENCIES[currency] ?? 2;
}


