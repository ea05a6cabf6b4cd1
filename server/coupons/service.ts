import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { newId, nowSeconds } from '../crypto.ts';
import { invalid, notFound } from '../errors.ts';
import { paginate } from '../http/pagination.ts';
import { sqlOf } from '../sql.ts';
import { isUniqueViolation } from '../payments/repo.ts';
import { MAX_AMOUNT, currencySchema, metadataSchema } from '../payments/validation.ts';
import { couponFromRow, findCouponByIdOrCode, toCouponObject, type CouponRow } from './repo.ts';

/** What a payer types: no spaces, at most 64 characters; never `cpn_…`, which names a coupon by id. */
export const couponCodeSchema = z
  .string()
  .regex(/^[A-Za-z0-9_\-.]{1,64}$/, 'must be 1–64 characters of letters, digits and _-. (no spaces)')
  .refine((v) => !v.toLowerCase().startsWith('cpn_'), 'must not start with cpn_ (coupon ids do)');

const minor = (what: string) => z.number().int(`must be an integer of the minor unit`).min(1, `must be at least 1`).max(MAX_AMOUNT, `must be at most ${MAX_AMOUNT}`).describe(what);
const count = z.number().int('must be an integer').min(1, 'must be at least 1').max(1_000_000_000, 'must be at most 1000000000');
const timestamp = z.number().int('must be a unix timestamp in seconds').min(0, 'must be a unix timestamp in seconds').max(99_999_999_999, 'must be a unix timestamp in seconds');

export const createCouponSchema = z
  .object({
    code: couponCodeSchema,
    amount_off: minor('a fixed discount; give it or percent_off').optional(),
    percent_off: z.number().int('must be an integer from 1 to 100').min(1, 'must be from 1 to 100').max(100, 'must be from 1 to 100').optional(),
    currency: currencySchema.optional().describe('required with amount_off, min_amount or max_discount'),
    min_amount: minor('the least amount, before the discount, the coupon applies to').optional(),
    max_discount: minor('the most a percent_off discount takes').optional(),
    max_redemptions: count.optional(),
    per_customer_limit: count.optional(),
    valid_from: timestamp.optional(),
    expires_at: timestamp.optional(),
    active: z.boolean().default(true),
    metadata: metadataSchema.default({}),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.amount_off === undefined) === (v.percent_off === undefined)) {
      ctx.addIssue({ code: 'custom', path: [v.amount_off === undefined ? 'amount_off' : 'percent_off'], message: 'give exactly one of amount_off and percent_off' });
    }
    const needsCurrency = ['amount_off', 'min_amount', 'max_discount'].find((k) => v[k as keyof typeof v] !== undefined);
    if (needsCurrency && !v.currency) ctx.addIssue({ code: 'custom', path: ['currency'], message: `is required with ${needsCurrency}` });
    if (v.max_discount !== undefined && v.amount_off !== undefined) ctx.addIssue({ code: 'custom', path: ['max_discount'], message: 'only applies to percent_off' });
    if (v.valid_from !== undefined && v.expires_at !== undefined && v.expires_at <= v.valid_from) {
      ctx.addIssue({ code: 'custom', path: ['expires_at'], message: 'must be after valid_from' });
    }
  });

/** What can change on a coupon; its discount and code are fixed (a new coupon is another code). */
export const updateCouponSchema = z
  .object({
    active: z.boolean().optional(),
    max_redemptions: count.nullable().optional(),
    per_customer_limit: count.nullable().optional(),
    expires_at: timestamp.nullable().optional(),
    metadata: metadataSchema.optional(),
  })
  .strict();

export async function createCoupon(deps: Deps, auth: AuthContext, input: z.infer<typeof createCouponSchema>) {
  const row = {
    id: newId('cpn'),
    app_id: auth.appId,
    livemode: auth.livemode,
    code: input.code,
    code_key: input.code.toLowerCase(),
    amount_off: input.amount_off ?? null,
    percent_off: input.percent_off ?? null,
    currency: input.currency ?? null,
    min_amount: input.min_amount ?? null,
    max_discount: input.max_discount ?? null,
    max_redemptions: input.max_redemptions ?? null,
    per_customer_limit: input.per_customer_limit ?? null,
    valid_from: input.valid_from ?? null,
    expires_at: input.expires_at ?? null,
    times_redeemed: 0,
    active: input.active,
    metadata: JSON.stringify(input.metadata),
    created: nowSeconds(),
    updated_ms: Date.now(),
  };
  try {
    await sqlOf(deps.db).insert('coupons', row);
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid('coupon_code_taken', `A coupon with code '${input.code}' already exists for this app (codes are compared without case).`, 'code');
    throw err;
  }
  return toCouponObject(couponFromRow(row));
}

async function couponOf(deps: Deps, auth: AuthContext, id: string): Promise<CouponRow> {
  const c = /^cpn_[A-Za-z0-9]{1,60}$/.test(id) ? await findCouponByIdOrCode(sqlOf(deps.db), auth, id) : undefined;
  if (!c) throw notFound('coupon', id);
  return c;
}

export async function retrieveCoupon(deps: Deps, auth: AuthContext, id: string) {
  return toCouponObject(await couponOf(deps, auth, id));
}

export async function updateCoupon(deps: Deps, auth: AuthContext, id: string, input: z.infer<typeof updateCouponSchema>) {
  const c = await couponOf(deps, auth, id);
  if (input.max_redemptions != null && input.max_redemptions < c.times_redeemed) {
    throw invalid('parameter_invalid', `Invalid max_redemptions: the coupon has been redeemed ${c.times_redeemed} times already.`, 'max_redemptions');
  }
  if (input.expires_at != null && c.valid_from !== null && input.expires_at <= c.valid_from) {
    throw invalid('parameter_invalid', 'Invalid expires_at: must be after valid_from.', 'expires_at');
  }
  const changes: Record<string, unknown> = { updated_ms: Date.now() };
  for (const k of ['active', 'max_redemptions', 'per_customer_limit', 'expires_at'] as const) if (input[k] !== undefined) changes[k] = input[k];
  if (input.metadata) changes.metadata = JSON.stringify(input.metadata);
  await deps.db('coupons').where({ id: c.id }).update(changes);
  return retrieveCoupon(deps, auth, id);
}

export function listCoupons(deps: Deps, auth: AuthContext, f: { limit: number; starting_after?: string; ending_before?: string; active?: boolean; code?: string }) {
  const scoped = () => {
    const q = deps.db('coupons').where({ app_id: auth.appId, livemode: auth.livemode });
    if (f.active !== undefined) q.where('active', f.active);
    if (f.code) q.where('code_key', f.code.toLowerCase());
    return q;
  };
  return paginate(scoped, { ...f, url: '/v1/coupons' }, (r) => toCouponObject(couponFromRow(r)));
}

const refused = (code: string, message: string) => invalid(code, message, 'coupon');

/**
 * The discount `c` gives on `amount` in `currency` now, or the 400 naming `coupon` that says why
 * it does not apply. percent_off is rounded half up to the minor unit, then held to max_discount;
 * a discount never takes the whole amount: at least one minor unit is left to pay, since no
 * channel takes a zero-amount order.
 */
export function discountFor(c: CouponRow, amount: number, currency: string, now = nowSeconds()): number {
  if (!c.active) throw refused('coupon_inactive', `Coupon ${c.code} is not active.`);
  if (c.valid_from !== null && now < c.valid_from) throw refused('coupon_not_yet_valid', `Coupon ${c.code} is not valid yet.`);
  if (c.expires_at !== null && now >= c.expires_at) throw refused('coupon_expired', `Coupon ${c.code} has expired.`);
  if (c.currency !== null && c.currency !== currency) throw refused('coupon_currency_mismatch', `Coupon ${c.code} is for ${c.currency} payments, not ${currency}.`);
  if (c.min_amount !== null && amount < c.min_amount) throw refused('coupon_min_amount', `Coupon ${c.code} applies from an amount of ${c.min_amount}.`);
  if (c.max_redemptions !== null && c.times_redeemed >= c.max_redemptions) throw refused('coupon_exhausted', `Coupon ${c.code} has been used up.`);
  let discount = c.amount_off ?? Math.floor((amount * c.percent_off! + 50) / 100);
  if (c.max_discount !== null) discount = Math.min(discount, c.max_discount);
  return Math.max(0, Math.min(discount, amount - 1));
}

export const couponExhausted = (c: CouponRow) => refused('coupon_exhausted', `Coupon ${c.code} has been used up.`);
export const couponCustomerLimit = (c: CouponRow) =>
  refused('coupon_customer_limit', `This customer has used coupon ${c.code} as often as it allows (${c.per_customer_limit}).`);
