import { z } from 'zod';
import type { Knex } from 'knex';
import { bool, isPostgres, parseJson } from '../db.ts';
import type { Sql } from '../sql.ts';

export const SUBSCRIPTION_STATUSES = ['trialing', 'active', 'past_due', 'canceled'] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];
export const SUBSCRIPTION_INTERVALS = ['day', 'week', 'month', 'year'] as const;
export type SubscriptionInterval = (typeof SUBSCRIPTION_INTERVALS)[number];
/** Why a subscription ended: the merchant's cancel, cancel_at_period_end, unpaid periods, or its agreement ended. */
export const CANCELLATION_REASONS = ['requested', 'period_end', 'payment_failed', 'agreement_terminated'] as const;
export type CancellationReason = (typeof CANCELLATION_REASONS)[number];

export interface SubscriptionRow {
  id: string;
  app_id: string;
  livemode: boolean;
  customer_id: string;
  agreement_id: string;
  amount: number;
  currency: string;
  subject: string;
  interval: SubscriptionInterval;
  interval_count: number;
  trial_end: number | null;
  billing_cycle_anchor: number | null;
  first_schedule_index: number;
  current_period_start: number;
  current_period_end: number;
  status: SubscriptionStatus;
  cancel_at_period_end: boolean;
  canceled_at: number | null;
  cancellation_reason: CancellationReason | null;
  latest_payment_id: string | null;
  failed_periods: number;
  test_clock_ms: number | null;
  metadata: Record<string, string>;
  created: number;
}

export type PeriodStatus = 'pending' | 'succeeded' | 'failed' | 'canceled';

export interface PeriodRow {
  subscription_id: string;
  period_index: number;
  app_id: string;
  livemode: boolean;
  period_start: number;
  period_end: number;
  scheduled_date: string;
  status: PeriodStatus;
  payment_id: string | null;
  order_no: string | null;
  tries: number;
  next_try_at_ms: number | null;
  submit_count: number;
  clocked: boolean;
  /** WeChat: when the period's pre-deduction notice was sent (the subscription's clock, ms); null before, and on Alipay. */
  notice_at_ms: number | null;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function subscriptionFromRow(r: any): SubscriptionRow {
  return {
    ...r,
    livemode: bool(r.livemode),
    amount: Number(r.amount),
    interval_count: Number(r.interval_count),
    trial_end: num(r.trial_end),
    billing_cycle_anchor: num(r.billing_cycle_anchor),
    first_schedule_index: Number(r.first_schedule_index),
    current_period_start: Number(r.current_period_start),
    current_period_end: Number(r.current_period_end),
    cancel_at_period_end: bool(r.cancel_at_period_end),
    canceled_at: num(r.canceled_at),
    cancellation_reason: r.cancellation_reason ?? null,
    latest_payment_id: r.latest_payment_id ?? null,
    failed_periods: Number(r.failed_periods),
    test_clock_ms: num(r.test_clock_ms),
    metadata: parseJson(r.metadata, {}),
    created: Number(r.created),
  };
}

export function periodFromRow(r: any): PeriodRow {
  return {
    ...r,
    livemode: bool(r.livemode),
    period_index: Number(r.period_index),
    period_start: Number(r.period_start),
    period_end: Number(r.period_end),
    tries: Number(r.tries),
    next_try_at_ms: num(r.next_try_at_ms),
    submit_count: Number(r.submit_count),
    clocked: bool(r.clocked),
    notice_at_ms: num(r.notice_at_ms),
  };
}

const unixSeconds = z.number().int().describe('unix seconds');

export const subscriptionObjectSchema = z
  .object({
    id: z.string().describe('sub_…'),
    object: z.literal('subscription'),
    livemode: z.boolean(),
    customer: z.string().describe("cus_…, the agreement's customer"),
    agreement: z.string().describe('agr_…, the mandate it is charged through'),
    amount: z.number().int().describe('charged each period, minor units'),
    currency: z.string(),
    subject: z.string(),
    interval: z.enum(SUBSCRIPTION_INTERVALS),
    interval_count: z.number().int(),
    trial_end: unixSeconds.nullable(),
    billing_cycle_anchor: unixSeconds.nullable().describe('the scheduled date periods were asked to start from, if given'),
    current_period_start: unixSeconds.describe('Beijing midnight of the period (or the trial / lead-in before the first charged period)'),
    current_period_end: unixSeconds,
    status: z.enum(SUBSCRIPTION_STATUSES),
    cancel_at_period_end: z.boolean(),
    canceled_at: unixSeconds.nullable(),
    cancellation_reason: z.enum(CANCELLATION_REASONS).nullable(),
    latest_payment: z.string().nullable().describe('pay_…, the payment of the latest charge try'),
    test_clock: unixSeconds.nullable().describe('test mode: the frozen time of its test clock, once advanced; null follows real time'),
    metadata: z.record(z.string(), z.string()),
    created: unixSeconds,
  })
  .strict()
  .meta({ id: 'Subscription' });

export function toSubscriptionObject(s: SubscriptionRow) {
  return {
    id: s.id,
    object: 'subscription' as const,
    livemode: s.livemode,
    customer: s.customer_id,
    agreement: s.agreement_id,
    amount: s.amount,
    currency: s.currency,
    subject: s.subject,
    interval: s.interval,
    interval_count: s.interval_count,
    trial_end: s.trial_end,
    billing_cycle_anchor: s.billing_cycle_anchor,
    current_period_start: s.current_period_start,
    current_period_end: s.current_period_end,
    status: s.status,
    cancel_at_period_end: s.cancel_at_period_end,
    canceled_at: s.canceled_at,
    cancellation_reason: s.cancellation_reason,
    latest_payment: s.latest_payment_id,
    test_clock: s.test_clock_ms === null ? null : Math.floor(s.test_clock_ms / 1000),
    metadata: s.metadata,
    created: s.created,
  };
}
export type SubscriptionObject = ReturnType<typeof toSubscriptionObject>;

export async function findSubscription(db: Knex, scope: { appId: string; livemode: boolean }, id: string): Promise<SubscriptionRow | undefined> {
  const r = await db('subscriptions').where({ id, app_id: scope.appId, livemode: scope.livemode }).first();
  return r ? subscriptionFromRow(r) : undefined;
}

export async function findSubscriptionById(tx: Sql, id: string): Promise<SubscriptionRow | undefined> {
  const r = await tx.first('select * from subscriptions where id = ?', [id]);
  return r ? subscriptionFromRow(r) : undefined;
}

export async function findPeriod(tx: Sql, subscriptionId: string, index: number): Promise<PeriodRow | undefined> {
  const r = await tx.first('select * from subscription_periods where subscription_id = ? and period_index = ?', [subscriptionId, index]);
  return r ? periodFromRow(r) : undefined;
}

/** Moves a subscription's fields, conditionally on its status; the row as updated, or undefined when its status had changed. */
export async function updateSubscription(tx: Sql, id: string, fromStatuses: readonly SubscriptionStatus[], changes: Record<string, unknown>): Promise<SubscriptionRow | undefined> {
  const cols = Object.keys(changes);
  const r = await tx.first(
    `update subscriptions set ${cols.map((c) => `"${c}" = ?`).join(', ')}, updated_ms = ? where id = ? and status in (${fromStatuses.map(() => '?').join(',')}) returning *`,
    [...cols.map((c) => changes[c]), Date.now(), id, ...fromStatuses],
  );
  return r ? subscriptionFromRow(r) : undefined;
}

/** Changes a period conditionally on its due time (the claimant's lease) and status; false when another writer moved it. */
export async function updatePeriod(tx: Sql, p: Pick<PeriodRow, 'subscription_id' | 'period_index' | 'next_try_at_ms' | 'tries'>, changes: Record<string, unknown>, status: PeriodStatus = 'pending'): Promise<boolean> {
  const cols = Object.keys(changes);
  const lease = p.next_try_at_ms === null ? 'next_try_at_ms is null' : 'next_try_at_ms = ?';
  // tries too: two claimants holding the same due time (test clocks) still cannot both take a try.
  return (await tx.run(
    `update subscription_periods set ${cols.map((c) => `"${c}" = ?`).join(', ')}, updated_ms = ? where subscription_id = ? and period_index = ? and status = ? and tries = ? and ${lease}`,
    [...cols.map((c) => changes[c]), Date.now(), p.subscription_id, p.period_index, status, p.tries, ...(p.next_try_at_ms === null ? [] : [p.next_try_at_ms])],
  )) === 1;
}

/** Closes every still-pending period of a subscription (it ended): nothing more is charged. */
export async function cancelPendingPeriods(tx: Sql, subscriptionId: string): Promise<void> {
  await tx.run(`update subscription_periods set status = 'canceled', next_try_at_ms = null, updated_ms = ? where subscription_id = ? and status = 'pending'`, [Date.now(), subscriptionId]);
}

const dueQuery = (q: Knex.QueryBuilder, nowMs: number, limit: number) =>
  q.where({ status: 'pending', clocked: false }).where('next_try_at_ms', '<=', nowMs).orderBy('next_try_at_ms').limit(limit);

/**
 * PostgreSQL: claims up to `limit` due periods of subscriptions on real time at once, by moving
 * their due time to `leaseMs` under FOR UPDATE SKIP LOCKED, so concurrent claimants take
 * disjoint rows.
 */
export async function claimDuePeriodsLocked(db: Knex, nowMs: number, leaseMs: number, limit: number): Promise<PeriodRow[]> {
  return db.transaction(async (trx) => {
    const rows = await dueQuery(trx('subscription_periods').select('subscription_id', 'period_index'), nowMs, limit).forUpdate().skipLocked();
    const claimed: PeriodRow[] = [];
    for (const r of rows) {
      const [u] = await trx('subscription_periods').where({ subscription_id: r.subscription_id, period_index: r.period_index }).update({ next_try_at_ms: leaseMs, updated_ms: Date.now() }, '*');
      claimed.push(periodFromRow(u));
    }
    return claimed;
  });
}

/** SQLite (one writer, no row locks): the due periods, each to be claimed by claimPeriod just before it is driven. */
export async function duePeriods(db: Knex, nowMs: number, limit: number): Promise<PeriodRow[]> {
  return (await dueQuery(db('subscription_periods'), nowMs, limit)).map(periodFromRow);
}

/** Claims one period by a conditional update of the due time it was read with; the claimed row, or undefined when another claimant was first. */
export async function claimPeriod(db: Knex, p: PeriodRow, leaseMs: number): Promise<PeriodRow | undefined> {
  const n = await db('subscription_periods')
    .where({ subscription_id: p.subscription_id, period_index: p.period_index, status: 'pending', next_try_at_ms: p.next_try_at_ms })
    .update({ next_try_at_ms: leaseMs, updated_ms: Date.now() });
  return n === 1 ? { ...p, next_try_at_ms: leaseMs } : undefined;
}
