import { z } from 'zod';
import { bool, parseJson } from '../db.ts';
import type { Sql } from '../sql.ts';

export interface CouponRow {
  id: string;
  app_id: string;
  livemode: boolean;
  code: string;
  amount_off: number | null;
  percent_off: number | null;
  currency: string | null;
  min_amount: number | null;
  max_discount: number | null;
  max_redemptions: number | null;
  per_customer_limit: number | null;
  valid_from: number | null;
  expires_at: number | null;
  times_redeemed: number;
  active: boolean;
  metadata: Record<string, string>;
  created: number;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function couponFromRow(r: any): CouponRow {
  return {
    id: r.id,
    app_id: r.app_id,
    livemode: bool(r.livemode),
    code: r.code,
    amount_off: num(r.amount_off),
    percent_off: num(r.percent_off),
    currency: r.currency ?? null,
    min_amount: num(r.min_amount),
    max_discount: num(r.max_discount),
    max_redemptions: num(r.max_redemptions),
    per_customer_limit: num(r.per_customer_limit),
    valid_from: num(r.valid_from),
    expires_at: num(r.expires_at),
    times_redeemed: Number(r.times_redeemed),
    active: bool(r.active),
    metadata: parseJson(r.metadata, {}),
    created: Number(r.created),
  };
}

const unixSeconds = z.number().int().describe('unix seconds');

export const couponObjectSchema = z
  .object({
    id: z.string().describe('cpn_…'),
    object: z.literal('coupon'),
    livemode: z.boolean(),
    code: z.string().describe('what the payer types; unique per app and mode, compared without case'),
    amount_off: z.number().int().nullable().describe('a fixed discount in the minor unit of `currency`'),
    percent_off: z.number().int().nullable().describe('1–100; the discount is rounded half up to the minor unit'),
    currency: z.string().nullable().describe('the only currency the coupon applies to; null: any (percent_off without amount limits)'),
    min_amount: z.number().int().nullable().describe('the least amount (before the discount) it applies to'),
    max_discount: z.number().int().nullable().describe('the most a percent_off discount takes'),
    max_redemptions: z.number().int().nullable(),
    per_customer_limit: z.number().int().nullable().describe('uses per customer; payments with this coupon must name a customer'),
    valid_from: unixSeconds.nullable(),
    expires_at: unixSeconds.nullable(),
    times_redeemed: z.number().int().describe('payments that hold a use: pending or paid ones (a payment closed unpaid gives its use back)'),
    active: z.boolean(),
    metadata: z.record(z.string(), z.string()),
    created: unixSeconds,
  })
  .strict()
  .meta({ id: 'Coupon' });

export function toCouponObject(c: CouponRow) {
  return {
    id: c.id,
    object: 'coupon' as const,
    livemode: c.livemode,
    code: c.code,
    amount_off: c.amount_off,
    percent_off: c.percent_off,
    currency: c.currency,
    min_amount: c.min_amount,
    max_discount: c.max_discount,
    max_redemptions: c.max_redemptions,
    per_customer_limit: c.per_customer_limit,
    valid_from: c.valid_from,
    expires_at: c.expires_at,
    times_redeemed: c.times_redeemed,
    active: c.active,
    metadata: c.metadata,
    created: c.created,
  };
}

/** A coupon of this app and mode by id (cpn_…) or by code, whatever its case. */
export async function findCouponByIdOrCode(tx: Sql, scope: { appId: string; livemode: boolean }, value: string): Promise<CouponRow | undefined> {
  const r = value.startsWith('cpn_')
    ? await tx.first('select * from coupons where id = ? and app_id = ? and livemode = ?', [value, scope.appId, scope.livemode])
    : await tx.first('select * from coupons where app_id = ? and livemode = ? and code_key = ?', [scope.appId, scope.livemode, value.toLowerCase()]);
  return r ? couponFromRow(r) : undefined;
}

/** The statements that count a use, exported for the query-plan test. */
export const REDEEM_SQL = {
  // The row count decides a race for the last use; validity is checked again under the row lock.
  coupon: `update coupons set times_redeemed = times_redeemed + 1, updated_ms = ?
    where id = ? and active = ? and (max_redemptions is null or times_redeemed < max_redemptions)
      and (valid_from is null or valid_from <= ?) and (expires_at is null or expires_at > ?)`,
  customerRow: 'insert into coupon_customer_uses (coupon_id, customer_id, times_redeemed) values (?, ?, 0) on conflict do nothing',
  customer: 'update coupon_customer_uses set times_redeemed = times_redeemed + 1 where coupon_id = ? and customer_id = ? and times_redeemed < ?',
};

export type RedeemOutcome = 'ok' | 'exhausted' | 'customer_limit';

/** Counts one use of the coupon by this payment, in the payment's transaction. */
export async function redeemCoupon(tx: Sql, c: CouponRow, p: { paymentId: string; customerId: string | null; now: number }): Promise<RedeemOutcome> {
  if ((await tx.run(REDEEM_SQL.coupon, [Date.now(), c.id, true, p.now, p.now])) !== 1) return 'exhausted';
  if (c.per_customer_limit !== null) {
    await tx.run(REDEEM_SQL.customerRow, [c.id, p.customerId]);
    if ((await tx.run(REDEEM_SQL.customer, [c.id, p.customerId, c.per_customer_limit])) !== 1) return 'customer_limit';
  }
  await tx.insert('coupon_redemptions', { payment_id: p.paymentId, coupon_id: c.id, customer_id: p.customerId, status: 'active', created: p.now });
  return 'ok';
}

/** A payment closed unpaid gives its use back, in the close's transaction; false when it held none. */
export async function releaseRedemption(tx: Sql, paymentId: string): Promise<boolean> {
  const r = await tx.first(`update coupon_redemptions set status = 'released' where payment_id = ? and status = 'active' returning coupon_id, customer_id`, [paymentId]);
  if (!r) return false;
  await tx.run('update coupons set times_redeemed = times_redeemed - 1, updated_ms = ? where id = ? and times_redeemed > 0', [Date.now(), r.coupon_id]);
  if (r.customer_id) {
    await tx.run('update coupon_customer_uses set times_redeemed = times_redeemed - 1 where coupon_id = ? and customer_id = ? and times_redeemed > 0', [r.coupon_id, r.customer_id]);
  }
  return true;
}
