import type { Knex } from 'knex';
import { bool, firstRow, parseJson } from '../db.ts';
import { sqlOf, type Sql } from '../sql.ts';
import type { AttemptContext, ChannelCode, PaymentAction, Provider } from '../channels/types.ts';
import type { AttemptError, StoredNextAction } from './next-action.ts';
import { installmentsOf, type Installments } from './installments.ts';

export type PaymentStatus = 'pending' | 'succeeded' | 'closed';

export interface PaymentRow {
  id: string;
  app_id: string;
  livemode: boolean;
  out_trade_no: string;
  amount: number;
  currency: string;
  subject: string;
  description: string | null;
  channel: ChannelCode | null;
  status: PaymentStatus;
  amount_refunded: number;
  channel_trade_no: string | null;
  paid_at: number | null;
  expires_at: number;
  return_url: string | null;
  metadata: Record<string, string>;
  checkout_token: string;
  client_ip: string | null;
  created: number;
  /** The action of the attempt placed through the API (create with channel, confirm), while it can be used. */
  next_action: StoredNextAction | null;
  next_action_attempt_id: string | null;
  last_attempt_error: AttemptError | null;
  /** DESIGN §2.3: the customer it is for, the coupon it holds, and whether it tops up the customer's balance. */
  customer_id: string | null;
  coupon_id: string | null;
  amount_original: number;
  amount_discount: number;
  purpose: PaymentPurpose;
  allow_coupon_code: boolean;
  /** The payer may still type a coupon code: no channel order has been placed yet. */
  coupon_entry_open: boolean;
  /** DESIGN §2.5: Alipay Huabei installments every attempt asks for (migration 024), or null. */
  installments: Installments | null;
  /** DESIGN §2.5: the subscription whose period (0-based) this payment charges. */
  subscription_id: string | null;
  subscription_period: number | null;
}

export type PaymentPurpose = 'payment' | 'balance_top_up';

/** 'closing': another attempt won; this one is still to be closed at its channel. */
export type AttemptStatus = 'pending' | 'succeeded' | 'failed' | 'closing' | 'closed';

export interface AttemptRow {
  id: string;
  payment_id: string;
  app_id: string;
  livemode: boolean;
  channel: ChannelCode;
  provider: Provider;
  channel_order_no: string;
  status: AttemptStatus;
  channel_trade_no: string | null;
  action: PaymentAction | null;
  /** What the adapter returned as `reference` when it placed the order (AttemptContext). */
  channel_ref: string | null;
  /** The wallet the payer used, where the channel tells (migration 013). */
  wallet?: string | null;
  created: number;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function paymentFromRow(r: any): PaymentRow {
  return {
    ...r,
    livemode: bool(r.livemode),
    amount: Number(r.amount),
    amount_refunded: Number(r.amount_refunded),
    paid_at: num(r.paid_at),
    expires_at: Number(r.expires_at),
    created: Number(r.created),
    metadata: parseJson(r.metadata, {}),
    next_action: r.next_action ? parseJson(r.next_action, null) : null,
    next_action_attempt_id: r.next_action_attempt_id ?? null,
    last_attempt_error: r.last_attempt_error ? parseJson(r.last_attempt_error, null) : null,
    customer_id: r.customer_id ?? null,
    coupon_id: r.coupon_id ?? null,
    amount_original: num(r.amount_original) ?? Number(r.amount),
    amount_discount: Number(r.amount_discount ?? 0),
    purpose: r.purpose ?? 'payment',
    allow_coupon_code: bool(r.allow_coupon_code),
    coupon_entry_open: bool(r.coupon_entry_open),
    installments: installmentsOf(r.installments),
    subscription_id: r.subscription_id ?? null,
    subscription_period: num(r.subscription_period),
  };
}

export function attemptFromRow(r: any): AttemptRow {
  return { ...r, livemode: bool(r.livemode), created: Number(r.created), action: parseJson(r.action, null), channel_ref: r.channel_ref ?? null };
}

/** What the adapter is handed back about an attempt of this payment. */
export function attemptContext(attempt: AttemptRow, payment: Pick<PaymentRow, 'amount' | 'currency' | 'expires_at'>): AttemptContext {
  return {
    channel: attempt.channel,
    reference: attempt.channel_ref,
    channelTradeNo: attempt.channel_trade_no,
    amount: payment.amount,
    currency: payment.currency,
    createdAt: attempt.created,
    expiresAt: payment.expires_at,
  };
}

export async function findPayment(db: Knex, scope: { appId: string; livemode: boolean }, id: string): Promise<PaymentRow | undefined> {
  const r = await db('payments').where({ id, app_id: scope.appId, livemode: scope.livemode }).first();
  return r ? paymentFromRow(r) : undefined;
}

export async function findPaymentById(db: Knex | Knex.Transaction | Sql, id: string): Promise<PaymentRow | undefined> {
  const r = await sqlOf(db).first('select * from payments where id = ?', [id]);
  return r ? paymentFromRow(r) : undefined;
}

export async function findPaymentByToken(db: Knex, token: string): Promise<PaymentRow | undefined> {
  const r = await firstRow(db, 'select * from payments where checkout_token = ? limit 1', [token]);
  return r ? paymentFromRow(r) : undefined;
}

export async function findAttemptByOrderNo(db: Knex | Sql, provider: Provider, orderNo: string): Promise<AttemptRow | undefined> {
  const r = await sqlOf(db).first('select * from payment_attempts where provider = ? and channel_order_no = ?', [provider, orderNo]);
  return r ? attemptFromRow(r) : undefined;
}

// ---- a channel's success, in the caller's transaction (payments/service.ts) ----------------

/** The statements of a success, exported for the query-plan test. */
export const SUCCESS_SQL = {
  attempt: `update payment_attempts set status = 'succeeded', channel_trade_no = ?, next_query_at_ms = null, updated_ms = ? where id = ? and status <> 'succeeded'`,
  // A paid payment has nothing left to do: its next_action goes in the same statement.
  payment: `update payments set status = 'succeeded', channel = ?, channel_trade_no = ?, paid_at = ?, updated_ms = ?, next_action = null, next_action_attempt_id = null, last_attempt_error = null where id = ? and status = 'pending' returning *`,
  siblings: `update payment_attempts set status = 'closing', next_query_at_ms = ?, updated_ms = ? where payment_id = ? and status = 'pending' and id <> ?`,
};

/** Marks an attempt succeeded; false when it already was (a duplicate notify or query). */
export async function markAttemptSucceeded(tx: Sql, attemptId: string, channelTradeNo: string | null, nowMs: number): Promise<boolean> {
  return (await tx.run(SUCCESS_SQL.attempt, [channelTradeNo, nowMs, attemptId])) === 1;
}

/**
 * The still-pending payment succeeds through this attempt: its row as updated, or undefined when
 * it was not pending any more (another attempt won, or it was closed).
 */
export async function markPaymentSucceeded(
  tx: Sql,
  p: { paymentId: string; channel: ChannelCode; channelTradeNo: string | null; paidAt: number; nowMs: number },
): Promise<PaymentRow | undefined> {
  const r = await tx.first(SUCCESS_SQL.payment, [p.channel, p.channelTradeNo, p.paidAt, p.nowMs, p.paymentId]);
  return r ? paymentFromRow(r) : undefined;
}

/** Other pending attempts of the payment become 'closing'; the payment worker closes them at their channels. */
export async function closeSiblingAttempts(tx: Sql, paymentId: string, winnerId: string, nowMs: number): Promise<void> {
  await tx.run(SUCCESS_SQL.siblings, [nowMs, nowMs, paymentId, winnerId]);
}

// ---- next_action and last_attempt_error (DESIGN §2.1) ----------------------------------------

/**
 * An attempt is being placed through the API: it becomes the payment's next_action attempt (its
 * action follows once the channel answered) and the payment's channel. False when the payment is
 * not pending any more.
 */
export async function assignNextActionAttempt(tx: Sql, p: { paymentId: string; attemptId: string; channel: ChannelCode; nowMs: number }): Promise<boolean> {
  return (await tx.run(
    `update payments set next_action = null, next_action_attempt_id = ?, channel = ?, updated_ms = ? where id = ? and status = 'pending'`,
    [p.attemptId, p.channel, p.nowMs, p.paymentId],
  )) === 1;
}

/** The channel placed the next_action attempt: its action is the payment's next_action, and the last error is over. */
export async function storeNextAction(tx: Sql, p: { paymentId: string; attemptId: string; next: StoredNextAction; nowMs: number }): Promise<void> {
  await tx.run(
    `update payments set next_action = ?, last_attempt_error = null, updated_ms = ? where id = ? and next_action_attempt_id = ? and status = 'pending'`,
    [JSON.stringify(p.next), p.nowMs, p.paymentId, p.attemptId],
  );
}

/**
 * An attempt failed (declined, failed or cancelled at the channel, or a fault while placing it):
 * the payment's last_attempt_error, and no next_action if it was that attempt's.
 */
export async function recordLastAttemptError(tx: Sql, p: { paymentId: string; attemptId: string; error: AttemptError; nowMs: number }): Promise<void> {
  // Every SET expression reads the row as it was (SQLite and PostgreSQL alike).
  await tx.run(
    `update payments set last_attempt_error = ?,
       next_action = case when next_action_attempt_id = ? then null else next_action end,
       next_action_attempt_id = case when next_action_attempt_id = ? then null else next_action_attempt_id end,
       updated_ms = ?
     where id = ? and status = 'pending'`,
    [JSON.stringify(p.error), p.attemptId, p.attemptId, p.nowMs, p.paymentId],
  );
}

export async function listAttempts(db: Knex, paymentId: string): Promise<AttemptRow[]> {
  const rows = await db('payment_attempts').where({ payment_id: paymentId }).orderBy('created', 'asc');
  return rows.map(attemptFromRow);
}

/** Brings a pending attempt's next active query forward to `dueMs` (never later than it already is). */
export async function expediteAttemptQuery(db: Knex, attemptId: string, dueMs: number): Promise<void> {
  await db('payment_attempts').where({ id: attemptId, status: 'pending' }).where('next_query_at_ms', '>', dueMs).update({ next_query_at_ms: dueMs });
}

/** Postgres 23505 or SQLite's UNIQUE / PRIMARY KEY constraint failure. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
