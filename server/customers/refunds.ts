import type { z } from 'zod';
import type { Deps } from '../deps.ts';
import { newId, nowSeconds } from '../crypto.ts';
import { invalid } from '../errors.ts';
import { insertEvent } from '../events/repo.ts';
import { transaction, type Sql } from '../sql.ts';
import { isUniqueViolation, type PaymentRow } from '../payments/repo.ts';
import { refundFromRow, toRefundObject } from '../refunds/repo.ts';
import type { createRefundSchema } from '../refunds/service.ts';
import { creditBalance, debitBalance } from './repo.ts';
import { balanceInsufficient } from './service.ts';

/**
 * Refunds that move a balance (DESIGN §2.3): a balance payment's refund goes back to the balance
 * at once, with no channel; a top-up's refund takes its credit back before the channel is asked.
 */

/** Refund of a payment made with channel balance: reserved, credited and succeeded in one transaction. */
export async function refundToBalance(deps: Deps, payment: PaymentRow, amount: number, input: z.infer<typeof createRefundSchema>) {
  const id = newId('re');
  const refund = {
    id,
    payment_id: payment.id,
    attempt_id: null,
    app_id: payment.app_id,
    livemode: payment.livemode,
    channel: 'balance',
    currency: payment.currency,
    amount,
    status: 'succeeded',
    reason: input.reason ?? null,
    out_refund_no: input.out_refund_no ?? id,
    channel_refund_no: null,
    failure_message: null,
    created: nowSeconds(),
    updated_ms: Date.now(),
    next_query_at_ms: null,
    automatic: false,
  };
  try {
    await transaction(deps.db, async (tx) => {
      const reserved = await tx.run(
        `update payments set amount_refunded = amount_refunded + ?, updated_ms = ? where id = ? and status = 'succeeded' and amount_refunded + ? <= amount`,
        [amount, Date.now(), payment.id, amount],
      );
      if (reserved !== 1) throw invalid('amount_too_large', 'Refund amount is greater than what is left to refund.', 'amount');
      await tx.insert('refunds', refund);
      await creditBalance(tx, { customerId: payment.customer_id!, type: 'refund', amount, source: id, description: input.reason ?? `Refund of ${payment.out_trade_no}` });
      await insertEvent(tx, { appId: payment.app_id, livemode: payment.livemode, type: 'refund.succeeded', object: toRefundObject(refundFromRow(refund)) });
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid('out_refund_no_taken', `A refund with out_refund_no '${refund.out_refund_no}' already exists.`, 'out_refund_no');
    throw err;
  }
  await deps.bus.publish('webhooks', id);
  return toRefundObject(refundFromRow(refund));
}

/** In the refund's transaction, before the channel is asked: a top-up's refund debits what it credited. */
export async function debitTopUpRefund(tx: Sql, payment: PaymentRow, refundId: string, amount: number): Promise<void> {
  if (payment.purpose !== 'balance_top_up' || !payment.customer_id) return;
  const debited = await debitBalance(tx, { customerId: payment.customer_id, type: 'refund', amount, source: refundId, description: `Refund of top-up ${payment.out_trade_no}` });
  if (!debited) {
    throw balanceInsufficient('amount', 'The customer has spent part of this top-up: its refund would take the balance below zero. Refund at most the balance.');
  }
}

/** The channel refused a top-up's refund: what it debited goes back to the balance, in the same transaction as the failure. */
export async function creditFailedTopUpRefund(tx: Sql, paymentId: string, refundId: string, amount: number): Promise<void> {
  const p = await tx.first('select purpose, customer_id from payments where id = ?', [paymentId]);
  if (p?.purpose !== 'balance_top_up' || !p.customer_id) return;
  await creditBalance(tx, { customerId: p.customer_id, type: 'refund', amount, source: refundId, description: 'The channel refused the refund: credited back' });
}
