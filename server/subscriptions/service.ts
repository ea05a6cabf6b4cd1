/**
 * Subscriptions (DESIGN §2.5): a plan charged each period through an active agreement (Alipay
 * 周期扣款), on the agreement's own schedule, since Alipay deducts only on its scheduled dates.
 * Creation, cancel and the state changes a charge's outcome makes; the charging itself is in
 * charge.ts, its scheduling in worker.ts, the test clock in test-clock.ts.
 */
import { z } from 'zod';
import type { Knex } from 'knex';
import type { AuthContext, Deps } from '../deps.ts';
import { newId } from '../crypto.ts';
import { invalid, notFound } from '../errors.ts';
import { paginate } from '../http/pagination.ts';
import { insertEvent, type EventType } from '../events/repo.ts';
import { sqlOf, transaction, type Sql } from '../sql.ts';
import { MAX_AMOUNT, customerIdSchema, metadataSchema } from '../payments/validation.ts';
import { paymentFromRow, type PaymentRow } from '../payments/repo.ts';
import { agreementFromRow, findAgreement, type AgreementRow } from '../agreements/repo.ts';
import {
  SUBSCRIPTION_INTERVALS, cancelPendingPeriods, findPeriod, findSubscription, findSubscriptionById, subscriptionFromRow, toSubscriptionObject, updateSubscription,
  type CancellationReason, type PeriodRow, type SubscriptionInterval, type SubscriptionRow,
} from './repo.ts';
import { beijingDate, beijingMidnightMs, firstScheduleIndexOnOrAfter, isScheduledDate, nextTryAtMs, scheduledDate, type PeriodRule } from './schedule.ts';
import { nextPapayTryAtMs, noticeAtMs } from './papay-schedule.ts';

/** The most periods of each interval that fit in a year (BeeCloud's plans: at most a year). */
const MAX_COUNT: Record<SubscriptionInterval, number> = { day: 366, week: 52, month: 12, year: 1 };
const MAX_TRIAL_S = 2 * 366 * 86_400;

const unixSeconds = (what: string) => z.number({ error: `must be ${what} in unix seconds` }).int(`must be ${what} in unix seconds`).min(0, `must be ${what} in unix seconds`);

export const createSubscriptionSchema = z
  .object({
    agreement: z.string().regex(/^agr_[A-Za-z0-9]{1,60}$/, 'must be an agreement id (agr_…)'),
    amount: z
      .number({ error: (i) => (i.input === undefined ? 'is required' : 'must be a positive integer of the minor unit') })
      .int('must be a positive integer of the minor unit')
      .min(1, 'must be a positive integer of the minor unit')
      .max(MAX_AMOUNT, `must be at most ${MAX_AMOUNT}`),
    subject: z.string().trim().min(1, 'must not be empty').max(127, 'must be at most 127 characters'),
    interval: z.enum(SUBSCRIPTION_INTERVALS, { error: 'must be day, week, month or year' }),
    interval_count: z.number({ error: 'must be a whole number of intervals' }).int('must be a whole number of intervals').min(1, 'must be at least 1').default(1),
    trial_end: unixSeconds('a time').optional().describe('until then the subscription is trialing; the first charge is on the first scheduled date on or after it'),
    billing_cycle_anchor: unixSeconds('a time').optional().describe("a day the agreement deducts on (one of its scheduled dates): periods start from it"),
    metadata: metadataSchema.default({}),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.interval_count > MAX_COUNT[v.interval]) ctx.addIssue({ code: 'custom', path: ['interval_count'], message: `must be at most ${MAX_COUNT[v.interval]} with interval ${v.interval} (a year)` });
  });
export type CreateSubscriptionInput = z.infer<typeof createSubscriptionSchema>;

export const cancelSubscriptionSchema = z
  .object({ at_period_end: z.boolean({ error: 'must be true or false' }).default(false).describe('true: it runs until current_period_end, then ends; false: it ends now') })
  .strict();

const ruleOf = (a: AgreementRow): PeriodRule => ({ period_type: a.period_type, period: a.period, execute_time: a.execute_time });

/** The agreement's rule in interval words: MONTH P is month × P (or year × 1 for 12), DAY N is day × N (or week × N/7). */
function matchesRule(rule: PeriodRule, interval: SubscriptionInterval, count: number): boolean {
  if (rule.period_type === 'MONTH') return (interval === 'month' && count === rule.period) || (interval === 'year' && count === 1 && rule.period === 12);
  return (interval === 'day' && count === rule.period) || (interval === 'week' && count * 7 === rule.period);
}

const ruleWords = (rule: PeriodRule) => (rule.period_type === 'MONTH' ? `every ${rule.period} month(s)` : `every ${rule.period} day(s)`);

/** The period rows' calendar: period i of a subscription starts on scheduled date first + i and ends on the next one. */
export function periodBounds(a: AgreementRow, firstIndex: number, i: number) {
  const rule = ruleOf(a);
  const date = scheduledDate(rule, firstIndex + i);
  return { scheduled_date: date, period_start: beijingMidnightMs(date) / 1000, period_end: beijingMidnightMs(scheduledDate(rule, firstIndex + i + 1)) / 1000 };
}

/** A new pending period row, due at its first try. */
export function newPeriodRow(s: Pick<SubscriptionRow, 'id' | 'app_id' | 'livemode' | 'test_clock_ms' | 'first_schedule_index'>, a: AgreementRow, index: number, nowMs: number) {
  const b = periodBounds(a, s.first_schedule_index, index);
  return {
    subscription_id: s.id,
    period_index: index,
    app_id: s.app_id,
    livemode: s.livemode,
    ...b,
    status: 'pending',
    payment_id: null,
    order_no: null,
    tries: 0,
    // WeChat: the period starts with its pre-deduction notice (papay-schedule.ts).
    next_try_at_ms: a.channel === 'wechatpay' ? noticeAtMs(b.scheduled_date, nowMs) : nextTryAtMs(b.scheduled_date, 0, nowMs) ?? nowMs,
    submit_count: 0,
    clocked: s.test_clock_ms !== null,
    created: Math.floor(nowMs / 1000),
    updated_ms: Date.now(),
  };
}

/** The subscription's "now": its test clock's frozen time, else real time. */
export const clockOf = (s: Pick<SubscriptionRow, 'test_clock_ms'>): number => s.test_clock_ms ?? Date.now();

export async function subscriptionOf(deps: Deps, auth: AuthContext, id: string): Promise<SubscriptionRow> {
  const s = await findSubscription(deps.db, auth, id);
  if (!s) throw notFound('subscription', id);
  return s;
}

async function emit(tx: Sql, s: SubscriptionRow, type: EventType): Promise<void> {
  await insertEvent(tx, { appId: s.app_id, livemode: s.livemode, type, object: toSubscriptionObject(s) });
}

/**
 * POST /v1/subscriptions. Checked before anything is stored: an active agreement of this app,
 * an amount within its single-deduction limit, the agreement's own schedule, a trial and an
 * anchor that fall on days Alipay deducts on. Each refusal names its parameter.
 */
export async function createSubscription(deps: Deps, auth: AuthContext, input: CreateSubscriptionInput) {
  const a = await findAgreement(deps.db, auth, input.agreement);
  if (!a) throw notFound('agreement', input.agreement, 'agreement');
  if (a.status === 'terminated') throw invalid('agreement_terminated', 'This agreement was terminated: nothing can be charged through it.', 'agreement');
  if (a.status !== 'active') throw invalid('agreement_not_active', 'This agreement is not signed yet: the customer signs it first (next_action).', 'agreement');
  const wechat = a.channel === 'wechatpay';
  if (input.amount > a.single_amount_max) {
    throw invalid('amount_over_agreement_limit', `amount ${input.amount} is over the agreement's single_amount_max ${a.single_amount_max}: ${wechat ? 'no deduction may exceed the limit the customer signed' : 'Alipay refuses such a deduction'}.`, 'amount');
  }
  const rule = ruleOf(a);
  if (!matchesRule(rule, input.interval, input.interval_count)) {
    throw invalid('interval_not_in_agreement', `The agreement deducts ${ruleWords(rule)} from ${rule.execute_time}, and Alipay deducts on no other days: interval and interval_count must say the same.`, 'interval');
  }
  const nowMs = Date.now();
  const now = Math.floor(nowMs / 1000);
  let start = beijingDate(nowMs);
  if (input.trial_end !== undefined) {
    if (input.trial_end <= now) throw invalid('parameter_invalid', 'trial_end must be in the future.', 'trial_end');
    if (input.trial_end > now + MAX_TRIAL_S) throw invalid('parameter_invalid', 'trial_end must be within two years.', 'trial_end');
    const d = beijingDate(input.trial_end * 1000);
    if (d > start) start = d;
  }
  if (input.billing_cycle_anchor !== undefined) {
    const d = beijingDate(input.billing_cycle_anchor * 1000);
    if (rule.period_type === 'MONTH' && Number(d.slice(8, 10)) > 28) {
      throw invalid('parameter_invalid', 'billing_cycle_anchor falls on day 29–31: Alipay deducts monthly only on days 1–28.', 'billing_cycle_anchor');
    }
    if (!isScheduledDate(rule, d)) throw invalid('parameter_invalid', `billing_cycle_anchor must fall on one of the agreement's scheduled dates (${rule.execute_time}, then ${ruleWords(rule)}).`, 'billing_cycle_anchor');
    if (d < beijingDate(nowMs)) throw invalid('parameter_invalid', 'billing_cycle_anchor must not be in the past.', 'billing_cycle_anchor');
    if (d > start) start = d;
  }
  const live = await deps.db('subscriptions').where({ agreement_id: a.id }).whereNot('status', 'canceled').first('id');
  if (live) throw invalid('agreement_in_use', `Subscription ${live.id} already charges this agreement: Alipay takes one deduction per period.`, 'agreement');
  // Alipay's plan for the mandate: the scheduled date after the last one paid (execute_time at
  // first). A missed date stays due, and no later one can be charged until it is paid or moved
  // (executionplan.modify, recurring.md §1.3–1.4): the first period must be that date.
  // WeChat keeps no plan of dates: each deduction follows its own notice, so any scheduled date may come first.
  const due = wechat ? firstScheduleIndexOnOrAfter(rule, start) : await nextDeductIndex(deps, a.id);
  let firstIndex = Math.max(firstScheduleIndexOnOrAfter(rule, start), due);
  if (firstIndex !== due) {
    const dueDate = scheduledDate(rule, due);
    const late = firstScheduleIndexOnOrAfter(rule, beijingDate(nowMs)) > due;
    const param = late ? 'agreement' : input.trial_end !== undefined && firstScheduleIndexOnOrAfter(rule, beijingDate(input.trial_end * 1000)) > due ? 'trial_end' : 'billing_cycle_anchor';
    throw invalid(
      'parameter_invalid',
      late
        ? `Alipay's next deduction on this agreement was due ${dueDate} and has passed: it takes no later one until the plan is moved.`
        : `Alipay's next deduction on this agreement is due ${dueDate}: the first period must start then (${param} must not fall after it).`,
      param,
    );
  }
  firstIndex = due;
  const first = periodBounds(a, firstIndex, 0);
  // Before the first charged period: the trial, or a lead-in up to the first scheduled date (Stripe's future billing_cycle_anchor).
  const leadIn = first.period_start > now;
  const row = {
    id: newId('sub'),
    app_id: auth.appId,
    livemode: auth.livemode,
    customer_id: a.customer_id,
    agreement_id: a.id,
    amount: input.amount,
    currency: a.currency,
    subject: input.subject,
    interval: input.interval,
    interval_count: input.interval_count,
    trial_end: input.trial_end ?? null,
    billing_cycle_anchor: input.billing_cycle_anchor ?? null,
    first_schedule_index: firstIndex,
    current_period_start: leadIn ? now : first.period_start,
    current_period_end: leadIn ? first.period_start : first.period_end,
    status: input.trial_end !== undefined ? 'trialing' : 'active',
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_reason: null,
    latest_payment_id: null,
    failed_periods: 0,
    test_clock_ms: null,
    metadata: JSON.stringify(input.metadata),
    created: now,
    updated_ms: nowMs,
  };
  const s = subscriptionFromRow(row);
  await transaction(deps.db, async (tx) => {
    await tx.insert('subscriptions', row);
    await tx.insert('subscription_periods', newPeriodRow(s, a, 0, nowMs));
    await emit(tx, s, 'subscription.created');
  });
  await deps.bus.publish('webhooks', s.id);
  return toSubscriptionObject(s);
}

/** The index of the agreement's scheduled date Alipay deducts next: the one after the last paid. */
async function nextDeductIndex(deps: Deps, agreementId: string): Promise<number> {
  const r = await deps.db('subscription_periods as p')
    .join('subscriptions as s', 's.id', 'p.subscription_id')
    .where({ 's.agreement_id': agreementId, 'p.status': 'succeeded' })
    .max({ last: deps.db.raw('s.first_schedule_index + p.period_index') })
    .first();
  return r?.last === null || r?.last === undefined ? 0 : Number(r.last) + 1;
}

export async function retrieveSubscription(deps: Deps, auth: AuthContext, id: string) {
  return toSubscriptionObject(await subscriptionOf(deps, auth, id));
}

export function listSubscriptions(deps: Deps, auth: AuthContext, f: { limit: number; starting_after?: string; ending_before?: string; customer?: string; agreement?: string; status?: string }) {
  const scoped = () => {
    const q = deps.db('subscriptions').where({ app_id: auth.appId, livemode: auth.livemode });
    if (f.customer) q.where('customer_id', f.customer);
    if (f.agreement) q.where('agreement_id', f.agreement);
    if (f.status) q.where('status', f.status);
    return q;
  };
  return paginate(scoped, { ...f, url: '/v1/subscriptions' }, (r) => toSubscriptionObject(subscriptionFromRow(r)));
}

/** Ends a subscription in the caller's transaction: no period is charged any more; false when it had ended already. */
export async function endSubscription(tx: Sql, s: Pick<SubscriptionRow, 'id'>, reason: CancellationReason, atSeconds: number): Promise<boolean> {
  const ended = await updateSubscription(tx, s.id, ['trialing', 'active', 'past_due'], { status: 'canceled', canceled_at: atSeconds, cancellation_reason: reason });
  if (!ended) return false;
  await cancelPendingPeriods(tx, s.id);
  await emit(tx, ended, 'subscription.canceled');
  return true;
}

/**
 * POST /v1/subscriptions/:id/cancel: now (subscription.canceled), or at the end of the current
 * period (cancel_at_period_end; the next period is not charged). A charge already sent may
 * still succeed: its payment is the merchant's to refund.
 */
export async function cancelSubscription(deps: Deps, auth: AuthContext, id: string, input: z.infer<typeof cancelSubscriptionSchema>) {
  const s = await subscriptionOf(deps, auth, id);
  if (s.status === 'canceled') return toSubscriptionObject(s);
  if (input.at_period_end) {
    const r = await updateSubscription(sqlOf(deps.db), s.id, ['trialing', 'active', 'past_due'], { cancel_at_period_end: true });
    return toSubscriptionObject(r ?? (await subscriptionOf(deps, auth, id)));
  }
  await transaction(deps.db, (tx) => endSubscription(tx, s, 'requested', Math.floor(clockOf(s) / 1000)));
  await deps.bus.publish('webhooks', s.id);
  return retrieveSubscription(deps, auth, id);
}

/** The agreement ended (agreements/service.ts moveAgreement): its subscriptions end in the same transaction. */
export async function endSubscriptionsOfAgreement(trx: Knex.Transaction, agreementId: string): Promise<void> {
  const tx = sqlOf(trx);
  const live = await tx.all(`select id, test_clock_ms from subscriptions where agreement_id = ? and status <> 'canceled'`, [agreementId]);
  for (const r of live) await endSubscription(tx, { id: r.id }, 'agreement_terminated', Math.floor((r.test_clock_ms === null ? Date.now() : Number(r.test_clock_ms)) / 1000));
}

// ---- a charge's outcome, in the payment's own transaction (payments/service.ts) -------------

async function agreementOfSubscription(tx: Sql, s: SubscriptionRow): Promise<AgreementRow> {
  return agreementFromRow(await tx.first('select * from agreements where id = ?', [s.agreement_id]));
}

/**
 * A period's payment succeeded (applyAttemptOutcome): the period is paid, the subscription
 * active on it (subscription.renewed) and the next period scheduled. A charge that lands after
 * the subscription ended is recorded on its period and nothing more.
 */
export async function subscriptionPaymentSucceeded(tx: Sql, won: PaymentRow): Promise<void> {
  const s = won.subscription_id ? await findSubscriptionById(tx, won.subscription_id) : undefined;
  if (!s || won.subscription_period === null) return;
  const moved = await tx.run(
    `update subscription_periods set status = 'succeeded', next_try_at_ms = null, updated_ms = ? where subscription_id = ? and period_index = ? and status in ('pending', 'canceled')`,
    [Date.now(), s.id, won.subscription_period],
  );
  if (moved !== 1 || s.status === 'canceled') return;
  const p = (await findPeriod(tx, s.id, won.subscription_period))!;
  const renewed = await updateSubscription(tx, s.id, ['trialing', 'active', 'past_due'], {
    status: 'active', current_period_start: p.period_start, current_period_end: p.period_end, latest_payment_id: won.id, failed_periods: 0,
  });
  if (!renewed) return;
  const a = await agreementOfSubscription(tx, s);
  await tx.insert('subscription_periods', newPeriodRow(renewed, a, p.period_index + 1, clockOf(renewed)));
  await emit(tx, renewed, 'subscription.renewed');
}

/**
 * A try of a period failed (a decline, or the trade closed): its payment is closed, the merchant
 * hears subscription.payment_failed, and the period is tried again inside Alipay's window. With
 * no try left the period is lost: past_due, or canceled after two such periods in a row.
 */
export async function subscriptionTryFailed(tx: Sql, payment: PaymentRow, closedObject: (p: PaymentRow) => Record<string, unknown>): Promise<void> {
  const s = payment.subscription_id ? await findSubscriptionById(tx, payment.subscription_id) : undefined;
  if (!s || payment.subscription_period === null) return;
  const closed = await tx.first(`update payments set status = 'closed', updated_ms = ? where id = ? and status = 'pending' returning *`, [Date.now(), payment.id]);
  if (closed) {
    await insertEvent(tx, { appId: payment.app_id, livemode: payment.livemode, type: 'payment.closed', object: closedObject(paymentFromRow(closed)) });
  }
  const p = await findPeriod(tx, s.id, payment.subscription_period);
  if (!p || p.status !== 'pending' || p.payment_id !== payment.id || s.status === 'canceled') return;
  await emit(tx, s, 'subscription.payment_failed');
  const nowMs = clockOf(s);
  const channel = (await agreementOfSubscription(tx, s)).channel;
  // WeChat: retried inside the deduction days of the period's notice.
  const next = channel === 'wechatpay' ? (p.notice_at_ms === null ? null : nextPapayTryAtMs(p.notice_at_ms, p.tries, nowMs)) : nextTryAtMs(p.scheduled_date, p.tries, nowMs);
  if (next !== null) {
    await tx.run(`update subscription_periods set next_try_at_ms = ?, submit_count = 0, updated_ms = ? where subscription_id = ? and period_index = ? and status = 'pending'`, [next, Date.now(), s.id, p.period_index]);
    return;
  }
  await periodLost(tx, s, p, nowMs);
}

/** Every try of a period failed, or its window closed untried: past_due, or canceled on the second such period in a row. */
export async function periodLost(tx: Sql, s: SubscriptionRow, p: PeriodRow, nowMs: number): Promise<void> {
  const n = await tx.run(`update subscription_periods set status = 'failed', next_try_at_ms = null, updated_ms = ? where subscription_id = ? and period_index = ? and status = 'pending'`, [Date.now(), s.id, p.period_index]);
  if (n !== 1) return;
  if (s.failed_periods + 1 >= 2) {
    await updateSubscription(tx, s.id, ['trialing', 'active', 'past_due'], { failed_periods: s.failed_periods + 1 });
    await endSubscription(tx, s, 'payment_failed', Math.floor(nowMs / 1000));
    return;
  }
  const due = await updateSubscription(tx, s.id, ['trialing', 'active', 'past_due'], {
    status: 'past_due', failed_periods: s.failed_periods + 1, current_period_start: p.period_start, current_period_end: p.period_end,
  });
  if (!due) return;
  await tx.insert('subscription_periods', newPeriodRow(due, await agreementOfSubscription(tx, s), p.period_index + 1, nowMs));
  await emit(tx, due, 'subscription.past_due');
}
