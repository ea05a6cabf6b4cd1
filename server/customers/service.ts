import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { newId, nowSeconds } from '../crypto.ts';
import { ApiError, invalid, notFound } from '../errors.ts';
import { paginate } from '../http/pagination.ts';
import { sqlOf, transaction } from '../sql.ts';
import { isUniqueViolation } from '../payments/repo.ts';
import { MAX_AMOUNT, currencySchema, metadataSchema } from '../payments/validation.ts';
import {
  balanceTransactionFromRow, creditBalance, customerFromRow, findCustomer, toBalanceTransactionObject, toCustomerObject,
  type CustomerRow,
} from './repo.ts';

const outUserId = z.string().regex(/^[A-Za-z0-9_\-|*.:@]{1,64}$/, 'must be 1–64 characters of letters, digits and _-|*.:@ (no spaces)');
const nameSchema = z.string().trim().min(1, 'must not be empty').max(256, 'must be at most 256 characters');
const emailSchema = z.string().max(254, 'must be at most 254 characters').regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'must be an email address');
const phoneSchema = z.string().regex(/^\+?[0-9][0-9 \-]{2,30}$/, 'must be a phone number: digits, spaces and -, optionally starting with +');

export const createCustomerSchema = z
  .object({
    out_user_id: outUserId.optional(),
    name: nameSchema.optional(),
    email: emailSchema.optional(),
    phone: phoneSchema.optional(),
    currency: currencySchema.default('CNY').describe("the balance's currency; payments with channel balance must be in it"),
    metadata: metadataSchema.default({}),
  })
  .strict();

/** Update: a field sent as null is cleared; `metadata` replaces the whole map. The currency is fixed at creation. */
export const updateCustomerSchema = z
  .object({
    out_user_id: outUserId.nullable().optional(),
    name: nameSchema.nullable().optional(),
    email: emailSchema.nullable().optional(),
    phone: phoneSchema.nullable().optional(),
    metadata: metadataSchema.optional(),
  })
  .strict();

export const createBalanceTransactionSchema = z
  .object({
    amount: z
      .number({ error: (i) => (i.input === undefined ? 'is required' : 'must be a positive integer of the minor unit (a credit)') })
      .int('must be a positive integer of the minor unit (a credit)')
      .min(1, 'must be a positive integer of the minor unit (a credit); the balance is spent by a payment with channel balance')
      .max(MAX_AMOUNT, `must be at most ${MAX_AMOUNT}`),
    description: z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters').optional(),
  })
  .strict();

/** 402: the customer's balance does not cover the debit; nothing was changed. */
export const balanceInsufficient = (param: string, message = "The customer's balance is too low for this amount.") =>
  new ApiError(402, 'invalid_request_error', 'balance_insufficient', message, param);

const outUserIdTaken = (v: string) => invalid('out_user_id_taken', `A customer with out_user_id '${v}' already exists for this app.`, 'out_user_id');

export async function createCustomer(deps: Deps, auth: AuthContext, input: z.infer<typeof createCustomerSchema>) {
  const now = nowSeconds();
  const row = {
    id: newId('cus'),
    app_id: auth.appId,
    livemode: auth.livemode,
    out_user_id: input.out_user_id ?? null,
    name: input.name ?? null,
    email: input.email ?? null,
    phone: input.phone ?? null,
    metadata: JSON.stringify(input.metadata),
    balance: 0,
    currency: input.currency,
    created: now,
    updated_ms: Date.now(),
    deleted_at: null,
  };
  try {
    await sqlOf(deps.db).insert('customers', row);
  } catch (err) {
    if (isUniqueViolation(err)) throw outUserIdTaken(input.out_user_id!);
    throw err;
  }
  return toCustomerObject(customerFromRow(row));
}

/** A live customer of the caller's app and mode, or the 404 naming `param`. */
export async function customerOf(deps: Deps, auth: AuthContext, id: string, param = 'id'): Promise<CustomerRow> {
  const c = await findCustomer(sqlOf(deps.db), auth, id);
  if (!c) throw notFound('customer', id, param);
  return c;
}

export async function retrieveCustomer(deps: Deps, auth: AuthContext, id: string) {
  return toCustomerObject(await customerOf(deps, auth, id));
}

export async function updateCustomer(deps: Deps, auth: AuthContext, id: string, input: z.infer<typeof updateCustomerSchema>) {
  await customerOf(deps, auth, id);
  const changes: Record<string, unknown> = { updated_ms: Date.now() };
  for (const k of ['out_user_id', 'name', 'email', 'phone'] as const) if (input[k] !== undefined) changes[k] = input[k];
  if (input.metadata) changes.metadata = JSON.stringify(input.metadata);
  try {
    await deps.db('customers').where({ id, app_id: auth.appId, livemode: auth.livemode }).whereNull('deleted_at').update(changes);
  } catch (err) {
    if (isUniqueViolation(err)) throw outUserIdTaken(String(input.out_user_id));
    throw err;
  }
  return retrieveCustomer(deps, auth, id);
}

/**
 * Deletes a customer whose balance is zero: a soft delete (the row and its ledger stay for the
 * books; the customer is gone from the API and the list, and its out_user_id is free again). The
 * balance is checked in the same conditional update, so a credit landing meanwhile wins.
 */
export async function deleteCustomer(deps: Deps, auth: AuthContext, id: string) {
  const c = await customerOf(deps, auth, id);
  const n = await deps.db('customers')
    .where({ id, app_id: auth.appId, livemode: auth.livemode, balance: 0 })
    .whereNull('deleted_at')
    .update({ deleted_at: nowSeconds(), out_user_id: null, updated_ms: Date.now() });
  if (n !== 1) {
    throw invalid('customer_balance_not_zero', `This customer's balance is ${c.balance}: only a customer with a zero balance can be deleted. Refund or adjust it first.`, 'id');
  }
  return { id, object: 'customer' as const, deleted: true as const };
}

export interface CustomerListFilters {
  limit: number;
  starting_after?: string;
  ending_before?: string;
  out_user_id?: string;
  email?: string;
}

export function listCustomers(deps: Deps, auth: AuthContext, f: CustomerListFilters) {
  const scoped = () => {
    const q = deps.db('customers').where({ app_id: auth.appId, livemode: auth.livemode }).whereNull('deleted_at');
    if (f.out_user_id) q.where('out_user_id', f.out_user_id);
    if (f.email) q.where('email', f.email);
    return q;
  };
  return paginate(scoped, { ...f, url: '/v1/customers' }, (r) => toCustomerObject(customerFromRow(r)));
}

/**
 * A manual adjustment: a credit, one ledger entry. Money leaves a balance only through what
 * accounts for it: a balance payment (and later a transfer), never by an unexplained debit.
 */
export async function adjustBalance(deps: Deps, auth: AuthContext, id: string, input: z.infer<typeof createBalanceTransactionSchema>) {
  await customerOf(deps, auth, id);
  const entry = { customerId: id, type: 'adjustment' as const, amount: input.amount, source: null, description: input.description ?? null };
  const btx = await transaction(deps.db, (tx) => creditBalance(tx, entry));
  return toBalanceTransactionObject(btx);
}

export async function listBalanceTransactions(deps: Deps, auth: AuthContext, id: string, f: { limit: number; starting_after?: string; ending_before?: string }) {
  await customerOf(deps, auth, id);
  return paginate(() => deps.db('balance_transactions').where({ customer_id: id }), { ...f, url: `/v1/customers/${id}/balance_transactions` },
    (r) => toBalanceTransactionObject(balanceTransactionFromRow(r)));
}
