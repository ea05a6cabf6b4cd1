import type { Knex } from 'knex';
import { bool, firstRow, parseJson } from '../db.ts';
import type { ChannelCode, PaymentAction, Provider } from '../channels/types.ts';

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
}

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
  };
}

export function attemptFromRow(r: any): AttemptRow {
  return { ...r, livemode: bool(r.livemode), created: Number(r.created), action: parseJson(r.action, null) };
}

export async function findPayment(db: Knex, scope: { appId: string; livemode: boolean }, id: string): Promise<PaymentRow | undefined> {
  const r = await db('payments').where({ id, app_id: scope.appId, livemode: scope.livemode }).first();
  return r ? paymentFromRow(r) : undefined;
}

export async function findPaymentById(db: Knex, id: string): Promise<PaymentRow | undefined> {
  const r = await db('payments').where({ id }).first();
  return r ? paymentFromRow(r) : undefined;
}

export async function findPaymentByToken(db: Knex, token: string): Promise<PaymentRow | undefined> {
  const r = await firstRow(db, 'select * from payments where checkout_token = ? limit 1', [token]);
  return r ? paymentFromRow(r) : undefined;
}

export async function findAttemptByOrderNo(db: Knex, provider: Provider, orderNo: string): Promise<AttemptRow | undefined> {
  const r = await db('payment_attempts').where({ provider, channel_order_no: orderNo }).first();
  return r ? attemptFromRow(r) : undefined;
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
