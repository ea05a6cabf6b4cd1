/**
 * What an app may send out (DESIGN §2.4 safety): a single-transfer limit, a daily limit and an
 * approval threshold, per app and mode, set by the operator (console settings, CLI). Live mode
 * has conservative defaults until the operator sets its own; test mode has none.
 */
import type { Knex } from 'knex';
import { sqlOf, type Sql } from '../sql.ts';

export interface TransferSettings {
  /** Fen; null: no limit. */
  single_limit: number | null;
  daily_limit: number | null;
  /** Above this amount a transfer waits for a second console user's approval; null: never. */
  approval_threshold: number | null;
}

/** ¥20,000 per transfer, ¥200,000 a day, approval above ¥5,000: live mode until the operator says otherwise. */
export const LIVE_DEFAULTS: TransferSettings = { single_limit: 2_000_000, daily_limit: 20_000_000, approval_threshold: 500_000 };
export const TEST_DEFAULTS: TransferSettings = { single_limit: null, daily_limit: null, approval_threshold: null };

const orNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export async function transferSettingsOf(db: Knex | Knex.Transaction, appId: string, livemode: boolean): Promise<TransferSettings & { custom: boolean }> {
  const r = await db('transfer_settings').where({ app_id: appId, livemode }).first();
  if (!r) return { ...(livemode ? LIVE_DEFAULTS : TEST_DEFAULTS), custom: false };
  return { single_limit: orNull(r.single_limit), daily_limit: orNull(r.daily_limit), approval_threshold: orNull(r.approval_threshold), custom: true };
}

export async function setTransferSettings(db: Knex, appId: string, livemode: boolean, s: TransferSettings): Promise<void> {
  await db('transfer_settings')
    .insert({ app_id: appId, livemode, ...s, updated_ms: Date.now() })
    .onConflict(['app_id', 'livemode'])
    .merge();
}

/** The Beijing calendar day (the channels' day for their own daily limits) of unix seconds. */
export function beijingDay(unixSeconds: number): string {
  return new Date((unixSeconds + 8 * 3600) * 1000).toISOString().slice(0, 10);
}

/**
 * Reserves `amount` of the day's total inside the caller's transaction: false (and nothing
 * written) when it would pass `limit`. A conditional update decides a race between two creates.
 */
export async function reserveDaily(trx: Knex.Transaction, key: { appId: string; livemode: boolean; day: string }, amount: number, limit: number | null): Promise<boolean> {
  await trx('transfer_day_totals').insert({ app_id: key.appId, livemode: key.livemode, day: key.day, amount: 0 }).onConflict(['app_id', 'livemode', 'day']).ignore();
  const q = trx('transfer_day_totals').where({ app_id: key.appId, livemode: key.livemode, day: key.day });
  if (limit !== null) q.whereRaw('amount + ? <= ?', [amount, limit]);
  return (await q.update({ amount: trx.raw('amount + ?', [amount]) })) === 1;
}

/** Gives a failed or cancelled transfer's amount back to its day. */
export async function releaseDaily(tx: Sql | Knex.Transaction, key: { appId: string; livemode: boolean; day: string }, amount: number): Promise<void> {
  await sqlOf(tx).run('update transfer_day_totals set amount = amount - ? where app_id = ? and livemode = ? and day = ?', [amount, key.appId, key.livemode, key.day]);
}

export async function dayTotal(db: Knex, appId: string, livemode: boolean, day: string): Promise<number> {
  const r = await db('transfer_day_totals').where({ app_id: appId, livemode, day }).first('amount');
  return r ? Number(r.amount) : 0;
}
