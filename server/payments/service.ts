import type { Knex } from 'knex';
import { z } from 'zod';
import { newId, nowSeconds, randomId } from '../crypto.ts';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, SignatureError, invalid, notFound } from '../errors.ts';
import { toApiError } from '../http/errors.ts';
import { insertEvent } from '../events/repo.ts';
import type { AuthContext, Deps } from '../deps.ts';
import { channelFor, implementedCodes, isImplemented } from '../channels/registry.ts';
import { CHANNEL_CODES, providerOf, type Provider, type ChannelCode, type ChannelPaymentStatus, type CreateResult } from '../channels/types.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { paginate } from '../http/pagination.ts';
import { batcherFor } from '../batch.ts';
import { queueAutomaticRefund } from '../refunds/service.ts';
import { checkChannelInputs, type ConfirmPaymentInput, type CreatePaymentInput } from './validation.ts';
import { checkInstallments, installmentsSchema, takesInstallments } from './installments.ts';
import { actionExpiry, attemptErrorSchema, nextActionOf, nextActionSchema, qrImagePath, type AttemptError, type NextAction } from './next-action.ts';
import { sqlOf, transaction, type Sql } from '../sql.ts';
import { accountTermsFor, closeCouponEntry, createBalancePayment, creditTopUp, insertPaymentWithCoupon, payPendingWithBalance } from '../customers/payments.ts';
import { deliveriesNeedClaim } from '../webhooks/handoff.ts';
import { subscriptionPaymentSucceeded, subscriptionTryFailed } from '../subscriptions/service.ts';
import { recordedCall } from '../channel-messages/service.ts';
import {
  assignNextActionAttempt, attemptContext, attemptFromRow, closeSiblingAttempts, findPayment, findPaymentById, markAttemptSucceeded, markPaymentSucceeded,
  paymentFromRow, recordLastAttemptError, storeNextAction, type AttemptRow, type PaymentRow,
} from './repo.ts';

const unixSeconds = z.number().int().describe('unix seconds');

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
    customer: z.string().nullable().describe('cus_…: the customer it is for (a top-up credits them, channel balance debits them)'),
    coupon: z.string().nullable().describe('cpn_…: the coupon applied'),
    amount_original: z.number().int().describe('the amount before the coupon'),
    amount_discount: z.number().int().describe("the coupon's discount; amount = amount_original - amount_discount"),
    purpose: z.enum(['payment', 'balance_top_up']).describe("balance_top_up: its success credits the customer's balance"),
    allow_coupon_code: z.boolean().describe('the payer may type a coupon code on the cashier until a channel order is placed'),
    installments: installmentsSchema.nullable().describe('Alipay Huabei installments (花呗分期) every channel order of this payment asks for; null when paid at once'),
    subscription: z.string().nullable().describe('sub_…: the subscription whose period it charges (channel alipay_agreement)'),
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
    next_action: nextActionFor(p, publicUrl),
    last_attempt_error: p.last_attempt_error,
    customer: p.customer_id,
    coupon: p.coupon_id,
    amount_original: p.amount_original,
    amount_discount: p.amount_discount,
    purpose: p.purpose,
    allow_coupon_code: p.allow_coupon_code,
    installments: p.installments,
    subscription: p.subscription_id,
  };
}
export type PaymentObject = ReturnType<typeof toPaymentObject>;

/**
 * The payment's next_action: the step of the attempt placed through the API, while the payment is
 * pending and the step can still be used (a QR code lives 2 h); null when nothing is left to do.
 */
export function nextActionFor(p: PaymentRow, publicUrl: string): NextAction | null {
  const stored = p.next_action;
  if (p.status !== 'pending' || !stored || !p.next_action_attempt_id || stored.expires_at <= nowSeconds()) return null;
  return nextActionOf(stored.action, { imageUrl: publicUrl + qrImagePath(p.checkout_token, p.next_action_attempt_id), expiresAt: stored.expires_at });
}

/** The checks a channel order passes before anything is stored or sent; `currencyParam` names the parameter of a currency mismatch. */
function checkChannel(channel: ChannelCode, currency: string, currencyParam: 'currency' | 'channel'): void {
  if (!isImplemented(channel)) throw invalid('channel_unavailable', `Channel ${channel} is not available yet on this gateway.`, 'channel');
  if (!channelFor(providerOf(channel))!.currencies.includes(currency)) {
    throw invalid('currency_not_supported', `Channel ${channel} does not accept ${currency}.`, currencyParam);
  }
}

/**
 * A payment without a channel is paid on the cashier: some channel must take its currency. That
 * is a channel of this build; in live mode, once the app has live channel configs, one of those
 * (an app with none yet can pay with nothing, whatever the currency: the cashier says so).
 */
async function checkCurrencyOffered(deps: Deps, auth: AuthContext, currency: string): Promise<void> {
  const takers = new Set(implementedCodes().map(providerOf).filter((p) => channelFor(p)!.currencies.includes(currency)));
  if (takers.size === 0) throw invalid('currency_not_supported', `No channel of this gateway accepts ${currency}.`, 'currency');
  if (!auth.livemode) return;
  const configured: string[] = (await deps.db('channel_configs').where({ app_id: auth.appId, livemode: true }).select('provider')).map((r) => r.provider);
  if (configured.length > 0 && !configured.some((p) => takers.has(p as Provider))) {
    throw invalid('currency_not_supported', `None of this app's live channels (${configured.join(', ')}) accepts ${currency}.`, 'currency');
  }
}

/**
 * Creates a payment. With `channel` the channel order is placed at once, after the row is stored
 * (DESIGN §2.1): the answer carries next_action, or last_attempt_error when the channel declined
 * or could not be reached. What the channel needs (client_ip, openid, a config) is checked first.
 */
export async function createPayment(deps: Deps, auth: AuthContext, input: CreatePaymentInput): Promise<PaymentObject> {
  const terms = await accountTermsFor(deps, auth, input);
  // Installments are Huabei's: an Alipay code (or the cashier, which then offers only those), CNY, ¥100 or more.
  if (input.installments) checkInstallments(input.installments, { channel: input.channel, currency: input.currency, amount: terms.amountOriginal - terms.discount });
  let cred: unknown;
  if (input.channel === 'balance') {
    if (input.openid !== undefined) throw invalid('parameter_invalid', 'openid is only used with channel wechat_jsapi.', 'openid');
  } else if (input.channel) {
    checkChannel(input.channel, input.currency, 'currency');
    checkChannelInputs(input.channel, { clientIp: input.client_ip, openid: input.openid });
    // A channel this app cannot use (live mode without a config) is refused before the row exists.
    cred = await getCredentials(deps, auth.appId, providerOf(input.channel), auth.livemode);
  } else if (input.openid !== undefined) {
    throw invalid('parameter_invalid', 'openid is only used with channel wechat_jsapi.', 'openid');
  } else {
    await checkCurrencyOffered(deps, auth, input.currency);
  }
  const attemptId = input.channel ? newId('att') : null;
  const created = nowSeconds();
  const row = {
    id: newId('pay'),
    app_id: auth.appId,
    livemode: auth.livemode,
    out_trade_no: input.out_trade_no,
    amount: terms.amountOriginal - terms.discount,
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
    next_action: null,
    // The attempt about to be placed is the payment's next_action attempt from the start.
    next_action_attempt_id: attemptId,
    last_attempt_error: null,
    customer_id: terms.customer?.id ?? null,
    coupon_id: terms.coupon?.id ?? null,
    amount_original: terms.amountOriginal,
    amount_discount: terms.discount,
    purpose: input.purpose,
    allow_coupon_code: input.allow_coupon_code,
    // A payment created with its channel has its order placed at once: no code can be typed then.
    coupon_entry_open: input.allow_coupon_code && !input.channel && !terms.coupon,
    installments: input.installments ? JSON.stringify({ count: input.installments.count, fee_payer: input.installments.fee_payer }) : null,
  };
  const publicUrl = deps.config.publicUrl;
  if (input.channel === 'balance') return createBalancePayment(deps, row, terms.coupon, (p) => toPaymentObject(p, publicUrl));
  if (terms.coupon) {
    // The coupon's use is counted with the insert, in one transaction (DESIGN §2.3).
    await insertPaymentWithCoupon(deps, row, terms.coupon);
  } else if (!(await batcherFor(deps.db, 'payments').insert(row))) {
    // Batched with concurrent creates (group commit); a unique-key conflict comes back as false.
    throw invalid('out_trade_no_taken', `A payment with out_trade_no '${input.out_trade_no}' already exists for this app.`, 'out_trade_no');
  }
  const payment = paymentFromRow(row);
  if (!input.channel) return toPaymentObject(payment, deps.config.publicUrl);
  return placeDirect(deps, payment, input.channel, { clientIp: input.client_ip, openid: input.openid }, { cred, attemptId: attemptId! });
}

/**
 * POST /v1/payments/:id/confirm: places a new attempt now (the same channel again, or another),
 * answering the payment with its next_action. Refusals (a payment that is not pending or has
 * expired, a channel it cannot use, missing customer inputs) change nothing.
 */
export async function confirmPayment(deps: Deps, auth: AuthContext, id: string, input: ConfirmPaymentInput): Promise<PaymentObject> {
  const payment = await findPayment(deps.db, auth, id);
  if (!payment) throw notFound('payment', id);
  checkPayable(payment);
  checkInstallmentChannel(payment, input.channel);
  if (input.channel === 'balance') {
    if (input.openid !== undefined) throw invalid('parameter_invalid', 'openid is only used with channel wechat_jsapi.', 'openid');
    return toPaymentObject(await payPendingWithBalance(deps, payment, (p) => toPaymentObject(p, deps.config.publicUrl)), deps.config.publicUrl);
  }
  checkChannel(input.channel, payment.currency, 'channel');
  const clientIp = input.client_ip ?? payment.client_ip;
  checkChannelInputs(input.channel, { clientIp, openid: input.openid });
  const cred = await getCredentials(deps, payment.app_id, providerOf(input.channel), payment.livemode);
  return placeDirect(deps, payment, input.channel, { clientIp, openid: input.openid }, { cred, attemptId: newId('att') });
}

/** Channel faults (not declines): the order may or may not exist at the channel. */
const isChannelFault = (err: unknown) =>
  err instanceof ChannelUnavailable || err instanceof SignatureError || err instanceof ChannelConfigError || err instanceof ChannelRequestError;

/**
 * Places an attempt for the direct API and answers the payment. A decline is recorded by
 * startAttempt (payment.attempt_failed). A fault (network, 5xx, a signature that does not verify,
 * keys the channel refuses) does not fail the request either: the payment exists already, so the
 * merchant gets it with last_attempt_error and no next_action, and may confirm again. The attempt
 * stays pending: the order may exist at the channel, and the payment worker asks it.
 */
async function placeDirect(
  deps: Deps, payment: PaymentRow, channel: ChannelCode, ctx: { clientIp?: string | null; openid?: string },
  pre: { cred: unknown; attemptId: string },
): Promise<PaymentObject> {
  try {
    await startAttempt(deps, payment, channel, { ...ctx, direct: true }, pre);
  } catch (err) {
    if (!isChannelFault(err)) throw err;
    const apiErr = toApiError(err);
    deps.logger.warn('channel fault placing an order', { payment_id: payment.id, attempt_id: pre.attemptId, channel, code: apiErr.code, err });
    await transaction(deps.db, (tx) =>
      recordLastAttemptError(tx, { paymentId: payment.id, attemptId: pre.attemptId, error: { channel, code: apiErr.code, message: apiErr.message }, nowMs: Date.now() }));
    await deps.bus.publish(`payment:${payment.id}`, 'pending');
  }
  return toPaymentObject((await findPaymentById(deps.db, payment.id))!, deps.config.publicUrl);
}

/** A payment with installments is paid only on a channel that carries them (Alipay); the refusal names `channel`. */
function checkInstallmentChannel(payment: PaymentRow, channel: ChannelCode): void {
  if (payment.installments && !takesInstallments(channel)) {
    throw invalid('parameter_invalid', `This payment is in Huabei installments (${payment.installments.count} periods): it is paid with an Alipay channel, not ${channel}.`, 'channel');
  }
}

/** A payment takes a new attempt only while pending and unexpired; the refusal names `id`. */
function checkPayable(payment: PaymentRow): void {
  if (payment.status !== 'pending') throw invalid('payment_unexpected_state', `This payment is ${payment.status}.`, 'id');
  if (payment.expires_at <= nowSeconds()) throw invalid('payment_expired', 'This payment has expired.', 'id');
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
  subscription?: string;
  created_gte?: number;
  created_lte?: number;
}

export function listPayments(deps: Deps, auth: AuthContext, f: ListFilters) {
  const scoped = () => {
    const q = deps.db('payments').where({ app_id: auth.appId, livemode: auth.livemode });
    if (f.status) q.where('status', f.status);
    if (f.channel) q.where('channel', f.channel);
    if (f.out_trade_no) q.where('out_trade_no', f.out_trade_no);
    if (f.subscription) q.where('subscription_id', f.subscription);
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
 * Returns what the customer's browser does next, or the channel's decline; a fault is thrown.
 * `direct`: placed through the API (create with channel, confirm): the attempt becomes the
 * payment's next_action attempt and its channel the payment's. The cashier's own attempts are
 * the cashier's to show, and leave the payment's next_action alone.
 */
export async function startAttempt(
  deps: Deps,
  payment: PaymentRow,
  channel: ChannelCode,
  ctx: { clientIp?: string | null; openid?: string; direct?: boolean } = {},
  pre: { cred?: unknown; attemptId?: string } = {},
): Promise<{ attempt: AttemptRow; result: CreateResult }> {
  checkPayable(payment);
  // No coupon code can re-price it once an order exists: the entry closes on the row, and the order takes the amount read back.
  payment = await closeCouponEntry(deps, payment);
  checkInstallmentChannel(payment, channel);
  checkChannel(channel, payment.currency, 'channel');
  const clientIp = ctx.clientIp ?? payment.client_ip;
  checkChannelInputs(channel, { clientIp, openid: ctx.openid });
  const provider = providerOf(channel);
  const adapter = channelFor(provider)!;
  const cred = pre.cred ?? (await getCredentials(deps, payment.app_id, provider, payment.livemode));
  const attemptId = pre.attemptId ?? newId('att');
  // WeChat allows 32 characters [A-Za-z0-9_-|*]: a 30-character random order number fits every channel.
  const orderNo = `cs${randomId(30)}`;
  const now = nowSeconds();
  const base = deps.config.publicUrl;
  const attemptRow = {
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
  };
  // A payment created with this attempt's id already names it; a confirm moves it there now.
  const assign = ctx.direct && payment.next_action_attempt_id !== attemptId;
  if (assign) {
    await transaction(deps.db, async (tx) => {
      if (!(await assignNextActionAttempt(tx, { paymentId: payment.id, attemptId, channel, nowMs: Date.now() }))) {
        throw invalid('payment_unexpected_state', 'This payment is not pending any more.', 'id');
      }
      await tx.insert('payment_attempts', attemptRow);
    });
  } else {
    await deps.db('payment_attempts').insert(attemptRow);
  }
  const subject = { appId: payment.app_id, livemode: payment.livemode, provider, paymentId: payment.id, attemptId, orderNo };
  const summary = { channel, orderNo, amount: payment.amount, currency: payment.currency, expiresAt: payment.expires_at, installments: payment.installments };
  // Recorded for the payment's timeline: what was asked and the answer's shape (the action's signed fields are not kept).
  const result = await recordedCall(deps, 'create', subject, summary, () => adapter.createPayment(cred, {
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
    clientIp,
    openid: ctx.openid,
    ...(payment.installments ? { installments: { count: payment.installments.count, feePayer: payment.installments.fee_payer } } : {}),
  }), (r) => (r.ok ? { ok: true, action: r.action.type, reference: r.reference ?? null } : r));
  if (result.ok) {
    const action = JSON.stringify(result.action);
    const reference = result.reference ?? null;
    if (ctx.direct) {
      await transaction(deps.db, async (tx) => {
        await tx.run('update payment_attempts set action = ?, channel_ref = ?, updated_ms = ? where id = ?', [action, reference, Date.now(), attemptId]);
        await storeNextAction(tx, { paymentId: payment.id, attemptId, next: { action: result.action, expires_at: actionExpiry(result.action, payment.expires_at, now) }, nowMs: Date.now() });
      });
      // Cashier pages of this payment now open the new step: drop their cached row.
      if (assign) await deps.bus.publish(`payment:${payment.id}`, 'pending');
    } else {
      await deps.db('payment_attempts').where({ id: attemptId }).update({ action, channel_ref: reference, updated_ms: Date.now() });
    }
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
    const error: AttemptError = { channel: attempt.channel, code, message };
    await recordLastAttemptError(sqlOf(trx), { paymentId: attempt.payment_id, attemptId, error, nowMs: Date.now() });
    const payment = paymentFromRow(await trx('payments').where({ id: attempt.payment_id }).first());
    paymentId = payment.id;
    // The payment as it now stands: pending, with last_attempt_error saying why (and which channel).
    await insertEvent(trx, { appId: payment.app_id, livemode: payment.livemode, type: 'payment.attempt_failed', object: toPaymentObject(payment, deps.config.publicUrl) });
    // A subscription's charge has one attempt: its failure closes the payment, and the period is tried again (subscriptions/service.ts).
    if (payment.subscription_id) await subscriptionTryFailed(sqlOf(trx), payment, (p) => toPaymentObject(p, deps.config.publicUrl));
  });
  if (paymentId) await announce(deps, paymentId);
}

export interface ChannelOutcome {
  status: ChannelPaymentStatus;
  channelTradeNo?: string;
  paidAt?: number;
  /** The wallet the payer used (PaymentQueryResult.wallet), stored on the attempt. */
  wallet?: string;
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
  const changed = await transaction(deps.db, async (tx) => {
    const nowMs = Date.now();
    const channelTradeNo = outcome.channelTradeNo ?? null;
    if (!(await markAttemptSucceeded(tx, attempt.id, channelTradeNo, nowMs))) return undefined;
    if (outcome.wallet) await tx.run('update payment_attempts set wallet = ? where id = ?', [outcome.wallet.slice(0, 32), attempt.id]);
    const won = await markPaymentSucceeded(tx, { paymentId: attempt.payment_id, channel: attempt.channel, channelTradeNo, paidAt: outcome.paidAt ?? nowSeconds(), nowMs });
    if (won) {
      // A top-up credits the customer's balance in the success's own transaction (DESIGN §2.3).
      await creditTopUp(tx, won);
      await insertEvent(tx, { appId: won.app_id, livemode: won.livemode, type: 'payment.succeeded', object: toPaymentObject(won, deps.config.publicUrl) });
      await closeSiblingAttempts(tx, won.id, attempt.id, nowMs);
      // A subscription's period is paid in the same transaction (subscription.renewed).
      if (won.subscription_id) await subscriptionPaymentSucceeded(tx, won);
      return { status: won.status, wakeWorkers: deliveriesNeedClaim(tx) };
    }
    // The customer paid a second attempt (or after closing): the money is at the channel and goes back.
    const payment = (await findPaymentById(tx, attempt.payment_id))!;
    await queueAutomaticRefund(tx, payment, attempt);
    deps.logger.warn('second successful attempt for a payment; refunding it', { payment_id: attempt.payment_id, attempt_id: attempt.id });
    return { status: payment.status, wakeWorkers: true };
  });
  if (changed === undefined) return false;
  await announce(deps, attempt.payment_id, changed.status, { wakeWorkers: changed.wakeWorkers });
  return true;
}

export async function emitPaymentEvent(deps: Deps, trx: Knex.Transaction | Sql, paymentId: string, type: 'payment.succeeded' | 'payment.closed') {
  const payment = (await findPaymentById(trx, paymentId))!;
  await insertEvent(trx, { appId: payment.app_id, livemode: payment.livemode, type, object: toPaymentObject(payment, deps.config.publicUrl) });
}

/**
 * Tells cashiers watching this payment and wakes the webhook workers. `status`: the payment's,
 * when the caller knows it; `wakeWorkers: false` when the change's deliveries were all handed
 * to this process's worker already (webhooks/handoff.ts), so no claim would find them.
 */
export async function announce(deps: Deps, paymentId: string, status?: string, opts: { wakeWorkers?: boolean } = {}): Promise<void> {
  if (status === undefined) {
    const p = await findPaymentById(deps.db, paymentId);
    if (!p) return;
    status = p.status;
  }
  await deps.bus.publish(`payment:${paymentId}`, status);
  if (opts.wakeWorkers !== false) await deps.bus.publish('webhooks', paymentId);
}

/** Queries the channel for a pending attempt and applies a final answer. */
export async function refreshAttempt(deps: Deps, attempt: AttemptRow): Promise<void> {
  const adapter = channelFor(attempt.provider);
  if (!adapter) return;
  const cred = await getCredentials(deps, attempt.app_id, attempt.provider, attempt.livemode);
  const payment = await findPaymentById(deps.db, attempt.payment_id);
  if (!payment) return;
  const subject = { appId: attempt.app_id, livemode: attempt.livemode, provider: attempt.provider, paymentId: payment.id, attemptId: attempt.id, orderNo: attempt.channel_order_no };
  const q = await recordedCall(deps, 'query', subject, { orderNo: attempt.channel_order_no },
    () => adapter.queryPayment(cred, attempt.channel_order_no, attemptContext(attempt, payment)));
  if (q.status === 'succeeded') {
    if (q.amount !== undefined && q.amount !== payment.amount) {
      deps.logger.error('channel query amount differs from the payment', { payment_id: payment.id, attempt_id: attempt.id });
      return;
    }
    await applyAttemptOutcome(deps, attempt, { status: 'succeeded', channelTradeNo: q.channelTradeNo, paidAt: q.paidAt, wallet: q.wallet });
  } else if (q.status === 'closed') {
    await applyAttemptOutcome(deps, attempt, { status: 'closed' });
  }
}

export { minorUnits } from './currencies.ts';


