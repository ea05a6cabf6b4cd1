/**
 * Charging one period (DESIGN §2.5): each try is one payment with one attempt (channel
 * alipay_agreement), written with a fixed order number in the transaction that takes the try,
 * then sent as an Alipay deduction. An unknown answer leaves the attempt pending: it is queried
 * before it is ever sent again, and then under the same number (Alipay dedupes by out_trade_no),
 * so a period is charged at most once whatever crashes or retries happen.
 */
import type { Deps } from '../deps.ts';
import { newId, randomId } from '../crypto.ts';
import { ChannelUnavailable } from '../errors.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { channelFor } from '../channels/registry.ts';
import type { AlipayCredentials } from '../channels/alipay/index.ts';
import { deductWithAgreement } from '../channels/alipay/agreements.ts';
import { transaction, sqlOf } from '../sql.ts';
import { applyAttemptOutcome } from '../payments/service.ts';
import { attemptFromRow, findAttemptByOrderNo, type AttemptRow } from '../payments/repo.ts';
import { agreementFromRow, type AgreementRow } from '../agreements/repo.ts';
import { findSubscriptionById, updatePeriod, type PeriodRow, type SubscriptionRow } from './repo.ts';
import { endSubscription, periodLost } from './service.ts';
import { deductionWindow } from './schedule.ts';

/** How long a claimed period is left to its claimant before another process may look at it. */
export const PERIOD_LEASE_MS = 120_000;
/** An answer still pending (or unknown) is looked at again this much later. */
const LOOK_AGAIN_MS = 60_000;
const FIRST_QUERY_MS = 10_000;

const notifyUrlOf = (deps: Deps, appId: string) => `${deps.config.publicUrl.replace(/\/$/, '')}/notify/alipay/${appId}`;

export type DriveResult = 'charged' | 'failed' | 'pending' | 'waiting' | 'ended';

/**
 * Moves a claimed period on (its next_try_at_ms is the claimant's lease). `nowMs` is the
 * subscription's time: real time, or its test clock's.
 */
export async function drivePeriod(deps: Deps, p: PeriodRow, nowMs: number): Promise<DriveResult> {
  const db = sqlOf(deps.db);
  const s = await findSubscriptionById(db, p.subscription_id);
  if (!s) return 'ended';
  const a = agreementFromRow(await db.first('select * from agreements where id = ?', [s.agreement_id]));
  if (s.status === 'canceled' || a.status !== 'active') {
    await transaction(deps.db, async (tx) => {
      if (s.status !== 'canceled') await endSubscription(tx, s, 'agreement_terminated', Math.floor(nowMs / 1000));
      else await updatePeriod(tx, p, { status: 'canceled', next_try_at_ms: null });
    });
    await deps.bus.publish('webhooks', s.id);
    return 'ended';
  }
  const cred = (await getCredentials(deps, s.app_id, 'alipay', s.livemode)) as AlipayCredentials;

  // A try in flight: ask Alipay before anything is sent again.
  const inFlight = p.order_no ? await findAttemptByOrderNo(db, 'alipay', p.order_no) : undefined;
  if (inFlight && inFlight.status === 'pending') return resolveInFlight(deps, cred, s, a, p, inFlight, nowMs);
  if (inFlight && inFlight.status === 'succeeded') return 'charged';

  if (s.cancel_at_period_end) {
    // The period before this one is the last: it ends the subscription when it ends, uncharged.
    if (nowMs < p.period_start * 1000) {
      await updatePeriod(db, p, { next_try_at_ms: p.period_start * 1000 });
      return 'waiting';
    }
    await transaction(deps.db, (tx) => endSubscription(tx, s, 'period_end', p.period_start));
    await deps.bus.publish('webhooks', s.id);
    return 'ended';
  }
  const window = deductionWindow(p.scheduled_date);
  if (nowMs >= window.closesMs || p.tries >= 3) {
    // Alipay takes no deduction for this period any more.
    await transaction(deps.db, (tx) => periodLost(tx, s, p, nowMs));
    await deps.bus.publish('webhooks', s.id);
    return 'failed';
  }
  if (nowMs < window.opensMs) {
    await updatePeriod(db, p, { next_try_at_ms: window.opensMs });
    return 'waiting';
  }
  const attempt = await startTry(deps, s, p, nowMs);
  if (!attempt) return 'waiting';
  return send(deps, cred, s, a, { ...p, tries: p.tries + 1, order_no: attempt.channel_order_no }, attempt, nowMs);
}

/** Writes the try's payment and attempt, and takes the try on the period, in one transaction; undefined when the lease was lost. */
async function startTry(deps: Deps, s: SubscriptionRow, p: PeriodRow, nowMs: number): Promise<AttemptRow | undefined> {
  const paymentId = newId('pay');
  const attemptId = newId('att');
  // The same shape as the cashier's order numbers (startAttempt): fixed before the deduction is sent.
  const orderNo = `cs${randomId(30)}`;
  const created = Math.floor(nowMs / 1000);
  const tryNo = p.tries + 1;
  const payment = {
    id: paymentId,
    app_id: s.app_id,
    livemode: s.livemode,
    out_trade_no: `${s.id}_${p.period_index}_${tryNo}`,
    amount: s.amount,
    currency: s.currency,
    subject: s.subject,
    description: null,
    channel: 'alipay_agreement',
    status: 'pending',
    amount_refunded: 0,
    // Past the deduction window nothing can be paid; a day more leaves room for a late answer.
    expires_at: Math.floor(deductionWindow(p.scheduled_date).closesMs / 1000) + 86_400,
    return_url: null,
    metadata: JSON.stringify(s.metadata),
    checkout_token: randomId(32),
    client_ip: null,
    created,
    updated_ms: Date.now(),
    next_action: null,
    next_action_attempt_id: null,
    last_attempt_error: null,
    customer_id: s.customer_id,
    coupon_id: null,
    amount_original: s.amount,
    amount_discount: 0,
    purpose: 'payment',
    allow_coupon_code: false,
    coupon_entry_open: false,
    subscription_id: s.id,
    subscription_period: p.period_index,
  };
  const attempt = {
    id: attemptId,
    payment_id: paymentId,
    app_id: s.app_id,
    livemode: s.livemode,
    channel: 'alipay_agreement',
    provider: 'alipay',
    channel_order_no: orderNo,
    status: 'pending',
    created,
    updated_ms: Date.now(),
    // A clocked (test) subscription is settled by its test clock; others by the payments worker too.
    next_query_at_ms: p.clocked ? null : Date.now() + FIRST_QUERY_MS,
  };
  const took = await transaction(deps.db, async (tx) => {
    if (!(await updatePeriod(tx, p, { tries: tryNo, payment_id: paymentId, order_no: orderNo, submit_count: 1 }))) return false;
    await tx.insert('payments', payment);
    await tx.insert('payment_attempts', attempt);
    await tx.run('update subscriptions set latest_payment_id = ?, updated_ms = ? where id = ?', [paymentId, Date.now(), s.id]);
    return true;
  });
  return took ? attemptFromRow(attempt) : undefined;
}

/** Sends the try's deduction and applies a final answer through the payments machinery. */
async function send(deps: Deps, cred: AlipayCredentials, s: SubscriptionRow, a: AgreementRow, p: PeriodRow, attempt: AttemptRow, nowMs: number): Promise<DriveResult> {
  let r: Awaited<ReturnType<typeof deductWithAgreement>>;
  try {
    r = await deductWithAgreement(cred, { orderNo: attempt.channel_order_no, agreementNo: a.channel_agreement_no!, amount: s.amount, subject: s.subject, notifyUrl: notifyUrlOf(deps, s.app_id) });
  } catch (err) {
    // Sent or not, nobody knows: the order is asked about before it is sent again.
    deps.logger.warn('subscription deduction answered unknown; it will be queried', { subscription_id: s.id, period: p.period_index, order_no: attempt.channel_order_no, err });
    await lookAgain(deps, p, nowMs + LOOK_AGAIN_MS);
    if (err instanceof ChannelUnavailable) return 'pending';
    throw err;
  }
  if (r.status === 'succeeded') {
    await applyAttemptOutcome(deps, attempt, { status: 'succeeded', channelTradeNo: r.channelTradeNo, paidAt: r.paidAt });
    return 'charged';
  }
  if (r.status === 'failed') {
    await applyAttemptOutcome(deps, attempt, { status: 'closed', failureCode: r.code, failureMessage: r.message });
    return 'failed';
  }
  await lookAgain(deps, p, nowMs + LOOK_AGAIN_MS);
  return 'pending';
}

/** The next look at a try still in flight (its order number): replaces the claimant's lease. */
async function lookAgain(deps: Deps, p: PeriodRow, atMs: number): Promise<void> {
  await sqlOf(deps.db).run(
    `update subscription_periods set next_try_at_ms = ?, updated_ms = ? where subscription_id = ? and period_index = ? and status = 'pending' and order_no = ?`,
    [atMs, Date.now(), p.subscription_id, p.period_index, p.order_no],
  );
}

/**
 * A try whose answer is not known: Alipay is asked by its order number. Paid or closed settles
 * it; still pending waits; unknown to Alipay (the deduction never arrived) is sent again under
 * the same number while the window is open, else the try failed.
 */
async function resolveInFlight(deps: Deps, cred: AlipayCredentials, s: SubscriptionRow, a: AgreementRow, p: PeriodRow, attempt: AttemptRow, nowMs: number): Promise<DriveResult> {
  const q = await channelFor('alipay')!.queryPayment(cred, attempt.channel_order_no);
  if (q.status === 'succeeded') {
    if (q.amount !== undefined && q.amount !== s.amount) {
      deps.logger.error('subscription deduction amount differs at the channel', { subscription_id: s.id, order_no: attempt.channel_order_no });
      return 'pending';
    }
    await applyAttemptOutcome(deps, attempt, { status: 'succeeded', channelTradeNo: q.channelTradeNo, paidAt: q.paidAt });
    return 'charged';
  }
  if (q.status === 'closed') {
    await applyAttemptOutcome(deps, attempt, { status: 'closed', failureCode: 'TRADE_CLOSED', failureMessage: 'The deduction was closed at Alipay.' });
    return 'failed';
  }
  if (q.status === 'pending') {
    await lookAgain(deps, p, nowMs + LOOK_AGAIN_MS);
    return 'pending';
  }
  if (nowMs >= deductionWindow(p.scheduled_date).closesMs) {
    await applyAttemptOutcome(deps, attempt, { status: 'closed', failureCode: 'window_closed', failureMessage: 'The deduction never reached Alipay inside its window.' });
    return 'failed';
  }
  if (!(await updatePeriod(sqlOf(deps.db), p, { submit_count: p.submit_count + 1 }))) return 'waiting';
  return send(deps, cred, s, a, { ...p, submit_count: p.submit_count + 1 }, attempt, nowMs);
}
