import { z } from 'zod';
import { bool, parseJson } from '../db.ts';
import { newId, nowSeconds } from '../crypto.ts';
import type { Sql } from '../sql.ts';

/** The ledger's entry types (DESIGN §2.3); `transfer` is reserved for money out (§2.4). */
export const BALANCE_TRANSACTION_TYPES = ['top_up', 'payment', 'refund', 'adjustment', 'transfer'] as const;
export type BalanceTransactionType = (typeof BALANCE_TRANSACTION_TYPES)[number];

export interface CustomerRow {
  id: string;
  app_id: string;
  livemode: boolean;
  out_user_id: string | null;
  name: string | null;
  email: string | null;
  phone: string | null;
  metadata: Record<string, string>;
  balance: number;
  currency: string;
  created: number;
  deleted_at: number | null;
}

export interface BalanceTransactionRow {
  id: string;
  customer_id: string;
  app_id: string;
  livemode: boolean;
  type: BalanceTransactionType;
  amount: number;
  balance_after: number;
  source: string | null;
  description: string | null;
  created: number;
}

export function customerFromRow(r: any): CustomerRow {
  return {
    ...r,
    livemode: bool(r.livemode),
    metadata: parseJson(r.metadata, {}),
    balance: Number(r.balance),
    created: Number(r.created),
    deleted_at: r.deleted_at === null || r.deleted_at === undefined ? null : Number(r.deleted_at),
  };
}

export function balanceTransactionFromRow(r: any): BalanceTransactionRow {
  return { ...r, livemode: bool(r.livemode), amount: Number(r.amount), balance_after: Number(r.balance_after), created: Number(r.created) };
}

const unixSeconds = z.number().int().describe('unix seconds');

/** The customer object as the API answers it; a test parses real answers with it. */
export const customerObjectSchema = z
  .object({
    id: z.string().describe('cus_…'),
    object: z.literal('customer'),
    livemode: z.boolean(),
    out_user_id: z.string().nullable().describe("the merchant's own id for this customer, unique per app and mode"),
    name: z.string().nullable(),
    email: z.string().nullable(),
    phone: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    balance: z.number().int().describe('stored value in the minor unit of `currency`; never negative'),
    currency: z.string(),
    created: unixSeconds,
  })
  .strict()
  .meta({ id: 'Customer' });

export const deletedCustomerSchema = z
  .object({ id: z.string(), object: z.literal('customer'), deleted: z.literal(true) })
  .strict()
  .meta({ id: 'DeletedCustomer' });

export const balanceTransactionObjectSchema = z
  .object({
    id: z.string().describe('btx_…'),
    object: z.literal('balance_transaction'),
    livemode: z.boolean(),
    customer: z.string().describe('cus_…'),
    type: z.enum(BALANCE_TRANSACTION_TYPES),
    amount: z.number().int().describe('signed: a credit is positive, a debit negative'),
    balance_after: z.number().int(),
    source: z.string().nullable().describe('the payment (pay_…) or refund (re_…) that caused it; null for an adjustment'),
    description: z.string().nullable(),
    created: unixSeconds,
  })
  .strict()
  .meta({ id: 'BalanceTransaction' });

export function toCustomerObject(c: CustomerRow) {
  return {
    id: c.id,
    object: 'customer' as const,
    livemode: c.livemode,
    out_user_id: c.out_user_id ?? null,
    name: c.name ?? null,
    email: c.email ?? null,
    phone: c.phone ?? null,
    metadata: c.metadata,
    balance: c.balance,
    currency: c.currency,
    created: c.created,
  };
}

export function toBalanceTransactionObject(b: BalanceTransactionRow) {
  return {
    id: b.id,
    object: 'balance_transaction' as const,
    livemode: b.livemode,
    customer: b.customer_id,
    type: b.type,
    amount: b.amount,
    balance_after: b.balance_after,
    source: b.source ?? null,
    description: b.description ?? null,
    created: b.created,
  };
}

/** A live (not deleted) customer of this app and mode. */
export async function findCustomer(tx: Sql, scope: { appId: string; livemode: boolean }, id: string): Promise<CustomerRow | undefined> {
  const r = await tx.first('select * from customers where id = ? and app_id = ? and livemode = ? and deleted_at is null', [id, scope.appId, scope.livemode]);
  return r ? customerFromRow(r) : undefined;
}

// ---- the ledger: every balance change is one entry, in the transaction that causes it ---------

/** The statements that move a balance, exported for the query-plan test. */
export const LEDGER_SQL = {
  credit: 'update customers set balance = balance + ?, updated_ms = ? where id = ? returning balance, app_id, livemode',
  // The row count decides a race: two debits of the last 100 cannot both pass.
  debit: 'update customers set balance = balance - ?, updated_ms = ? where id = ? and balance >= ? returning balance, app_id, livemode',
  // A new balance payment's debit also checks what the customer lookup would (app, mode, not
  // deleted, currency), so the payment costs no read first; debitForPayment explains a refusal.
  paymentDebit: `update customers set balance = balance - ?, updated_ms = ?
    where id = ? and app_id = ? and livemode = ? and currency = ? and deleted_at is null and balance >= ? returning balance, app_id, livemode`,
};

export interface LedgerEntry {
  customerId: string;
  type: BalanceTransactionType;
  /** Minor units, > 0: the direction is the function's. */
  amount: number;
  source: string | null;
  description?: string | null;
}

async function record(tx: Sql, e: LedgerEntry, signed: number, row: any): Promise<BalanceTransactionRow> {
  const entry = {
    id: newId('btx'),
    customer_id: e.customerId,
    app_id: row.app_id,
    livemode: bool(row.livemode),
    type: e.type,
    amount: signed,
    balance_after: Number(row.balance),
    source: e.source,
    description: e.description ?? null,
    created: nowSeconds(),
  };
  await tx.insert('balance_transactions', entry);
  return entry;
}

/** Adds to a balance, with its entry. */
export async function creditBalance(tx: Sql, e: LedgerEntry): Promise<BalanceTransactionRow> {
  const row = await tx.first(LEDGER_SQL.credit, [e.amount, Date.now(), e.customerId]);
  if (!row) throw new Error(`no customer ${e.customerId} to credit`);
  return record(tx, e, e.amount, row);
}

/**
 * A new balance payment's debit, with its entry: the customer must be the app's, of this mode, not
 * deleted and in the payment's currency. A refusal says why (no such customer for this app, another
 * currency, too little), and nothing is written.
 */
export async function debitForPayment(
  tx: Sql, scope: { appId: string; livemode: boolean }, currency: string, e: LedgerEntry,
): Promise<{ entry: BalanceTransactionRow } | { refused: 'unknown' } | { refused: 'currency' | 'insufficient'; customer: CustomerRow }> {
  const row = await tx.first(LEDGER_SQL.paymentDebit, [e.amount, Date.now(), e.customerId, scope.appId, scope.livemode, currency, e.amount]);
  if (row) return { entry: await record(tx, e, -e.amount, row) };
  const customer = await findCustomer(tx, scope, e.customerId);
  if (!customer) return { refused: 'unknown' };
  return { refused: customer.currency !== currency ? 'currency' : 'insufficient', customer };
}

/** Takes from a balance, with its entry; undefined (and nothing written) when the balance is too low. */
export async function debitBalance(tx: Sql, e: LedgerEntry): Promise<BalanceTransactionRow | undefined> {
  const row = await tx.first(LEDGER_SQL.debit, [e.amount, Date.now(), e.customerId, e.amount]);
  if (!row) return undefined;
  return record(tx, e, -e.amount, row);
}
