import type { Knex } from 'knex';
import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { newId, nowSeconds } from '../crypto.ts';
import { ChannelRequestError, ChannelUnavailable, invalid, notFound } from '../errors.ts';
import { insertEvent } from '../events/repo.ts';
import { sqlOf, type Sql } from '../sql.ts';
import { channelFor } from '../channels/registry.ts';
import type { RefundResult } from '../channels/types.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { attemptContext, attemptFromRow, findPayment, isUniqueViolation, paymentFromRow, type AttemptRow, type PaymentRow } from '../payments/repo.ts';
import { amountSchema } from '../payments/validation.ts';
import { findRefund, refundFromRow, toRefundObject, type RefundRow } from './repo.ts';
import { creditFailedTopUpRefund, debitTopUpRefund, refundToBalance } from '../customers/refunds.ts';
import { recordedCall } from '../channel-messages/service.ts';

export const createRefundSchema = z
  .object({
    amount: amountSchema.optional(),
    reason: z.string().trim().min(1).max(256, 'must be at most 256 characters').optional(),
    out_refund_no: z.string().regex(/^[A-Za-z0-9_\-|*.:@]{1,64}$/, 'must be 1–64 characters of letters, digits and _-|*.:@ (no spaces)').optional(),
  })
  .strict();

/** Backoff for refunds the channel has not confirmed yet: it is asked again on this schedule. */
const REFUND_RETRY_MS = [10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000];
export const refundRetryDelay = (n: number) => REFUND_RETRY_MS[Math.min(n, REFUND_RETRY_MS.length - 1)];
/**
 * Whoever submits a refund (the API request, a worker) holds it this long by its next_query_at_ms:
 * longer than a submission can take (two channel calls, a refund and a query, of 15 s at most
 * each), so nobody else submits it meanwhile. The retry delay starts when the submission ends.
 */
export const REFUND_SUBMIT_LEASE_MS = 60_000;

/**
 * Refunds part or all of a succeeded payment. The refunded total is reserved by a conditional
 * update in the transaction that writes the refund, so concurrent refunds can never exceed the
 * amount; then the channel is asked, with the refund id as its idempotency key.
 */
export async function createRefund(deps: Deps, auth: AuthContext, paymentId: string, input: z.infer<typeof createRefundSchema>) {
  const payment = await findPayment(deps.db, auth, paymentId);
  if (!payment) throw notFound('payment', paymentId);
  if (payment.status !== 'succeeded') throw invalid('payment_not_succeeded', `Only a succeeded payment can be refunded; this one is ${payment.status}.`, 'id');
  const remaining = payment.amount - payment.amount_refunded;
  const amount = input.amount ?? remaining;
  if (remaining <= 0) throw invalid('payment_fully_refunded', 'This payment has already been fully refunded.', 'amount');
  if (amount > remaining) throw invalid('amount_too_large', `Refund amount ${amount} is greater than what is left to refund (${remaining}).`, 'amount');
  if (payment.channel === 'balance') return refundToBalance(deps, payment, amount, input);
  const attempt = await deps.db('payment_attempts').where({ payment_id: payment.id, status: 'succeeded', channel: payment.channel }).first();
  if (!attempt) throw invalid('payment_not_succeeded', 'This payment has no successful channel order to refund.', 'id');

  const id = newId('re');
  const refund = {
    id,
    payment_id: payment.id,
    attempt_id: attempt.id,
    app_id: payment.app_id,
    livemode: payment.livemode,
    // Fixed facts of the refund, kept on it for reconciliation's totals (migration 007).
    channel: attempt.channel,
    currency: payment.currency,
    amount,
    status: 'pending',
    reason: input.reason ?? null,
    out_refund_no: input.out_refund_no ?? id,
    created: nowSeconds(),
    updated_ms: Date.now(),
    // Held by this request while it submits; if it dies, the worker takes over after the lease.
    next_query_at_ms: Date.now() + REFUND_SUBMIT_LEASE_MS,
    automatic: false,
  };
  try {
    await deps.db.transaction(async (trx) => {
      const reserved = await trx('payments')
        .where({ id: payment.id, status: 'succeeded' })
        .whereRaw('amount_refunded + ? <= amount', [amount])
        .update({ amount_refunded: trx.raw('amount_refunded + ?', [amount]), updated_ms: Date.now() });
      if (reserved !== 1) throw invalid('amount_too_large', 'Refund amount is greater than what is left to refund.', 'amount');
      // A top-up's refund takes back what it credited, before the channel is asked: a balance
      // already spent refuses the refund instead of going below zero (DESIGN §2.3).
      await debitTopUpRefund(sqlOf(trx), payment, id, amount);
      await trx('refunds').insert(refund);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid('out_refund_no_taken', `A refund with out_refund_no '${refund.out_refund_no}' already exists.`, 'out_refund_no');
    throw err;
  }
  await submitRefund(deps, refundFromRow(refund), refund.next_query_at_ms);
  return toRefundObject((await findRefund(deps.db, id))!);
}

export async function retrieveRefund(deps: Deps, auth: AuthContext, id: string) {
  const r = await findRefund(deps.db, id, auth);
  if (!r) throw notFound('refund', id);
  return toRefundObject(r);
}

/**
 * Asks the channel to refund (again). Both channels treat a repeated refund number as the same
 * refund, so a retry after a timeout can never move money twice; and only the holder of the
 * refund's lease (next_query_at_ms = `lease`) submits it, so two submissions never race (a
 * channel may refuse the one that loses, and a refusal would give the amount back).
 * Without a final answer the refund is due again after the backoff.
 */
export async function submitRefund(deps: Deps, refund: RefundRow, lease: number): Promise<void> {
  if (!(await askChannel(deps, refund))) {
    await deps.db('refunds')
      .where({ id: refund.id, status: 'pending', next_query_at_ms: lease })
      .update({ next_query_at_ms: Date.now() + refundRetryDelay(refund.submit_count) });
  }
}

/** One submission; whether the refund got its final status. */
async function askChannel(deps: Deps, refund: RefundRow): Promise<boolean> {
  const attempt = attemptFromRow(await deps.db('payment_attempts').where({ id: refund.attempt_id }).first());
  const payment = paymentFromRow(await deps.db('payments').where({ id: refund.payment_id }).first());
  const adapter = channelFor(attempt.provider)!;
  await deps.db('refunds').where({ id: refund.id }).update({ submit_count: deps.db.raw('submit_count + 1') });
  let result: RefundResult;
  try {
    const cred = await getCredentials(deps, refund.app_id, attempt.provider, refund.livemode);
    const subject = { appId: refund.app_id, livemode: refund.livemode, provider: attempt.provider, paymentId: payment.id, attemptId: attempt.id, refundId: refund.id, orderNo: attempt.channel_order_no };
    const summary = { orderNo: attempt.channel_order_no, refundNo: refund.id, amount: refund.amount, totalAmount: payment.amount, currency: payment.currency, reason: refund.reason, submission: refund.submit_count + 1 };
    result = await recordedCall(deps, 'refund', subject, summary, () => adapter.refund(cred, {
      orderNo: attempt.channel_order_no,
      refundNo: refund.id,
      amount: refund.amount,
      totalAmount: payment.amount,
      currency: payment.currency,
      reason: refund.reason,
      notifyUrl: `${deps.config.publicUrl}/notify/${attempt.provider}/${refund.app_id}`,
      createdAt: refund.created,
      attempt: attemptContext(attempt, payment),
    }));
  } catch (err) {
    if (err instanceof ChannelRequestError) {
      result = { status: 'failed', failureMessage: `${err.code}: ${err.message}` };
    } else {
      // Unreachable or unverifiable: still pending; the refund worker asks again.
      deps.logger.warn('refund not confirmed by the channel yet', { refund_id: refund.id, err: err instanceof ChannelUnavailable ? err.message : err });
      return false;
    }
  }
  await applyRefundOutcome(deps, refund.id, result);
  return result.status !== 'pending';
}

/** Applies a final refund status once, with its event; a failed refund gives its amount back. */
export async function applyRefundOutcome(deps: Deps, refundId: string, result: RefundResult): Promise<boolean> {
  if (result.status === 'pending') {
    if (result.channelRefundNo) await deps.db('refunds').where({ id: refundId }).update({ channel_refund_no: result.channelRefundNo });
    return false;
  }
  let changed = false;
  await deps.db.transaction(async (trx) => {
    const n = await trx('refunds').where({ id: refundId, status: 'pending' }).update({
      status: result.status,
      channel_refund_no: result.channelRefundNo ?? null,
      failure_message: result.status === 'failed' ? result.failureMessage ?? 'The channel refused the refund.' : null,
      next_query_at_ms: null,
      updated_ms: Date.now(),
    });
    if (n !== 1) return;
    changed = true;
    const refund = refundFromRow(await trx('refunds').where({ id: refundId }).first());
    if (result.status === 'failed' && !refund.automatic) {
      await trx('payments').where({ id: refund.payment_id }).update({ amount_refunded: trx.raw('amount_refunded - ?', [refund.amount]), updated_ms: Date.now() });
      await creditFailedTopUpRefund(sqlOf(trx), refund.payment_id, refund.id, refund.amount);
    }
    await insertEvent(trx, {
      appId: refund.app_id,
      livemode: refund.livemode,
      type: result.status === 'succeeded' ? 'refund.succeeded' : 'refund.failed',
      object: toRefundObject(refund),
    });
  });
  if (changed) await deps.bus.publish('webhooks', refundId);
  return changed;
}

/**
 * The customer paid a second attempt (or after the payment was closed): that money goes back by
 * itself, and the merchant hears of it through the refund's events. Called inside the
 * transaction that recorded the second success.
 */
export async function queueAutomaticRefund(trx: Knex.Transaction | Sql, payment: PaymentRow, attempt: AttemptRow): Promise<void> {
  const id = newId('re');
  await sqlOf(trx).insert('refunds', {
    id,
    payment_id: payment.id,
    attempt_id: attempt.id,
    app_id: payment.app_id,
    livemode: payment.livemode,
    channel: attempt.channel,
    currency: payment.currency,
    amount: payment.amount,
    status: 'pending',
    reason: 'duplicate_payment',
    out_refund_no: id,
    created: nowSeconds(),
    updated_ms: Date.now(),
    next_query_at_ms: Date.now(),
    automatic: true,
  });
}
