import type { Deps } from '../deps.ts';
import { channelFor } from '../channels/registry.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { ChannelRequestError } from '../errors.ts';
import type { CloseResult } from '../channels/types.ts';
import { sqlOf } from '../sql.ts';
import { releaseRedemption } from '../coupons/repo.ts';
import { recordedCall } from '../channel-messages/service.ts';
import { attemptContext, attemptFromRow, findPaymentById, type AttemptRow, type PaymentRow } from './repo.ts';

/** How often an order that cannot be closed at its channel is asked about until it can no longer be paid. */
const CLOSING_QUERY_MS = 60_000;
import { announce, applyAttemptOutcome, emitPaymentEvent } from './service.ts';

/**
 * Closes an attempt's order at its channel, asking first: a customer who paid just before the
 * close makes the payment succeed instead (DESIGN: query before close). Returns whether the
 * attempt turned out paid.
 */
export async function closeAttemptAtChannel(deps: Deps, attempt: AttemptRow): Promise<'paid' | 'closed'> {
  const adapter = channelFor(attempt.provider)!;
  const cred = await getCredentials(deps, attempt.app_id, attempt.provider, attempt.livemode);
  const payment = (await findPaymentById(deps.db, attempt.payment_id))!;
  const ctx = attemptContext(attempt, payment);
  const subject = { appId: attempt.app_id, livemode: attempt.livemode, provider: attempt.provider, paymentId: payment.id, attemptId: attempt.id, orderNo: attempt.channel_order_no };
  const paidNow = async () => {
    const q = await recordedCall(deps, 'query', subject, { orderNo: attempt.channel_order_no, before: 'close' }, () => adapter.queryPayment(cred, attempt.channel_order_no, ctx));
    if (q.status !== 'succeeded') return false;
    await applyAttemptOutcome(deps, attempt, { status: 'succeeded', channelTradeNo: q.channelTradeNo, paidAt: q.paidAt, wallet: q.wallet });
    return true;
  };
  if (await paidNow()) return 'paid';
  let result: void | CloseResult;
  try {
    result = await recordedCall(deps, 'close', subject, { orderNo: attempt.channel_order_no }, () => adapter.closePayment(cred, attempt.channel_order_no, ctx));
  } catch (err) {
    // The channel refuses to close a paid order: it was paid between our query and the close.
    if (err instanceof ChannelRequestError && (await paidNow())) return 'paid';
    throw err;
  }
  const nowMs = Date.now();
  if (result && result.payableUntil * 1000 > nowMs) {
    // A channel without a close (UnionPay): the order can still be paid until payableUntil, so it
    // is 'closing' (never offered again) and asked about until then; a late payment is found
    // and refunded automatically once the payment is closed.
    await deps.db('payment_attempts')
      .where({ id: attempt.id })
      .whereIn('status', ['pending', 'closing'])
      .update({ status: 'closing', next_query_at_ms: Math.min(nowMs + CLOSING_QUERY_MS, result.payableUntil * 1000 + 1000), updated_ms: nowMs });
    return 'closed';
  }
  await deps.db('payment_attempts')
    .where({ id: attempt.id })
    .whereIn('status', ['pending', 'closing', 'failed'])
    .update({ status: attempt.status === 'failed' ? 'failed' : 'closed', closed_at_channel_at: Math.floor(Date.now() / 1000), next_query_at_ms: null, updated_ms: Date.now() });
  return 'closed';
}

/**
 * Closes a pending payment (merchant's request or expiry): every open attempt is closed at its
 * channel, then the payment, with its payment.closed event, by a conditional update.
 */
export async function closePayment(deps: Deps, payment: PaymentRow): Promise<PaymentRow> {
  const open = (await deps.db('payment_attempts').where({ payment_id: payment.id }).whereIn('status', ['pending', 'closing', 'failed']).whereNull('closed_at_channel_at')).map(attemptFromRow);
  for (const attempt of open) {
    if ((await closeAttemptAtChannel(deps, attempt)) === 'paid') return (await findPaymentById(deps.db, payment.id))!;
  }
  let closed = false;
  await deps.db.transaction(async (trx) => {
    const n = await trx('payments').where({ id: payment.id, status: 'pending' }).update({ status: 'closed', next_action: null, next_action_attempt_id: null, updated_ms: Date.now() });
    if (n !== 1) return;
    closed = true;
    // A payment closed unpaid gives its coupon use back, in the close's own transaction (DESIGN §2.3).
    await releaseRedemption(sqlOf(trx), payment.id);
    await emitPaymentEvent(deps, trx, payment.id, 'payment.closed');
  });
  if (closed) await announce(deps, payment.id);
  return (await findPaymentById(deps.db, payment.id))!;
}
