/**
 * The Stripe simulator's own storage (what Stripe holds): accounts with their keys and webhook
 * endpoint (sandbox_merchants), Checkout Sessions with their PaymentIntent (sandbox_orders: the
 * session id as out_trade_no, the PaymentIntent id as trade_no), refunds (sandbox_refunds) and
 * the idempotency layer (sandbox_stripe_idempotency). State changes are conditional updates.
 */
import type { Knex } from 'knex';
import { seal, timingSafeEqualStr, unseal } from '../../crypto.ts';
import { parseJson } from '../../db.ts';
import { parsedMerchant } from '../parsed-merchants.ts';

const PROVIDER = 'stripe';

/** A simulated Stripe account: its secret key and the webhook endpoint registered for the gateway app. */
export interface StripeAccount {
  id: string;
  secretKey: string;
  webhookSecret: string;
  /** The endpoint's URL (the app's /notify/stripe/<app>). */
  webhookUrl: string;
}

export type SessionStatus = 'open' | 'complete' | 'expired';

/** A session and its PaymentIntent as the simulator keeps them. Times are unix seconds; amounts in Stripe units. */
export interface SessionData {
  created: number;
  expiresAt: number;
  currency: string;
  amountTotal: number;
  lineItems: Array<{ name: string; description?: string; unitAmount: number; quantity: number }>;
  clientReferenceId?: string;
  metadata: Record<string, string>;
  piMetadata: Record<string, string>;
  piDescription?: string;
  successUrl: string;
  cancelUrl?: string;
  paymentStatus: 'paid' | 'unpaid';
  allowedPaymentMethodTypes: string[];
  /** The PaymentIntent exists for the API once the buyer submitted the page. */
  piStarted: boolean;
  piStatus: 'requires_payment_method' | 'requires_action' | 'succeeded' | 'canceled';
  lastPaymentError?: { code: string; decline_code?: string; message: string };
  chargeId?: string;
  chargeCreated?: number;
  wallet?: string;
}

export interface StripeSession {
  accountId: string;
  id: string;
  paymentIntentId: string;
  status: SessionStatus;
  amountRefunded: number;
  data: SessionData;
}

export interface StripeRefund {
  id: string;
  sessionId: string;
  amount: number;
  status: 'succeeded' | 'pending' | 'failed';
  created: number;
  metadata: Record<string, string>;
}

const accountAad = (id: string) => `sandbox_merchants:${PROVIDER}:${id}`;

/** The account id a simulator secret key names: sk_test_<16 characters of the account id><secret>. */
export const accountIdOfKey = (key: string): string | undefined => (/^sk_test_([A-Za-z0-9]{16})[A-Za-z0-9]{24,}$/.exec(key)?.[1] ? `acct_${key.slice(8, 24)}` : undefined);

export async function insertAccount(db: Knex, masterKey: Buffer, a: StripeAccount): Promise<boolean> {
  const rows = await db('sandbox_merchants')
    .insert({ provider: PROVIDER, merchant_id: a.id, data_sealed: seal(masterKey, JSON.stringify(a), accountAad(a.id)), created: Math.floor(Date.now() / 1000) })
    .onConflict(['provider', 'merchant_id'])
    .ignore()
    .returning('merchant_id');
  return rows.length > 0;
}

export async function findAccount(db: Knex, masterKey: Buffer, id: string): Promise<StripeAccount | undefined> {
  const row = await db('sandbox_merchants').where({ provider: PROVIDER, merchant_id: id }).first('data_sealed');
  if (!row) return undefined;
  return parsedMerchant(masterKey, row.data_sealed, () => JSON.parse(unseal(masterKey, row.data_sealed, accountAad(id))) as StripeAccount);
}

/** The account whose secret key this is (compared in constant time), or undefined. */
export async function accountByKey(db: Knex, masterKey: Buffer, key: string): Promise<StripeAccount | undefined> {
  const id = accountIdOfKey(key);
  const account = id ? await findAccount(db, masterKey, id) : undefined;
  return account && timingSafeEqualStr(account.secretKey, key) ? account : undefined;
}

function sessionOf(row: any): StripeSession {
  return {
    accountId: row.merchant_id,
    id: row.out_trade_no,
    paymentIntentId: row.trade_no,
    status: row.status,
    amountRefunded: Number(row.amount_refunded),
    data: parseJson<SessionData>(row.data, {} as SessionData),
  };
}

export async function insertSession(db: Knex, s: StripeSession): Promise<void> {
  await db('sandbox_orders').insert({
    provider: PROVIDER, merchant_id: s.accountId, out_trade_no: s.id, trade_no: s.paymentIntentId, status: s.status,
    amount: s.data.amountTotal, amount_refunded: 0, data: JSON.stringify(s.data), created: s.data.created, updated_ms: Date.now(),
  });
}

export async function findSession(db: Knex, accountId: string, id: string): Promise<StripeSession | undefined> {
  const row = await db('sandbox_orders').where({ provider: PROVIDER, merchant_id: accountId, out_trade_no: id }).first();
  return row ? sessionOf(row) : undefined;
}

/** A session by id alone: the hosted page's URL names no account. */
export async function findSessionById(db: Knex, id: string): Promise<StripeSession | undefined> {
  const row = await db('sandbox_orders').where({ provider: PROVIDER, out_trade_no: id }).first();
  return row ? sessionOf(row) : undefined;
}

export async function findSessionByPaymentIntent(db: Knex, accountId: string, pi: string): Promise<StripeSession | undefined> {
  const row = await db('sandbox_orders').where({ provider: PROVIDER, merchant_id: accountId, trade_no: pi }).first();
  return row ? sessionOf(row) : undefined;
}

/** Moves a session from its current status with new data; false when someone else moved it first. */
export async function updateSession(db: Knex, s: StripeSession, to: SessionStatus, data: SessionData): Promise<boolean> {
  const n = await db('sandbox_orders')
    .where({ provider: PROVIDER, merchant_id: s.accountId, out_trade_no: s.id, status: s.status })
    .update({ status: to, data: JSON.stringify(data), updated_ms: Date.now() });
  return n === 1;
}

function refundOf(row: any): StripeRefund {
  const d = parseJson<{ created: number; metadata: Record<string, string> }>(row.data, { created: 0, metadata: {} });
  return { id: row.refund_no, sessionId: row.out_trade_no, amount: Number(row.amount), status: row.status, created: d.created, metadata: d.metadata };
}

export async function findRefund(db: Knex, accountId: string, id: string): Promise<StripeRefund | undefined> {
  const row = await db('sandbox_refunds').where({ provider: PROVIDER, merchant_id: accountId, out_refund_no: id }).first();
  return row ? refundOf(row) : undefined;
}

export async function listRefunds(db: Knex, accountId: string, sessionId: string): Promise<StripeRefund[]> {
  const rows = await db('sandbox_refunds').where({ provider: PROVIDER, merchant_id: accountId, out_trade_no: sessionId }).orderBy('created', 'desc').orderBy('out_refund_no', 'desc');
  return rows.map(refundOf);
}

export type RefundOutcome = { kind: 'refunded'; session: StripeSession; refund: StripeRefund } | { kind: 'already_refunded' } | { kind: 'too_large'; left: number };

/** Records a refund in one transaction: the cumulative total never exceeds the charge. */
export async function recordRefund(db: Knex, s: StripeSession, amount: number | undefined, refund: Omit<StripeRefund, 'amount'>): Promise<RefundOutcome> {
  return db.transaction(async (trx) => {
    await trx('sandbox_orders').where({ provider: PROVIDER, merchant_id: s.accountId, out_trade_no: s.id }).forUpdate().first('out_trade_no');
    const current = (await findSession(trx, s.accountId, s.id))!;
    const left = current.data.amountTotal - current.amountRefunded;
    if (left <= 0) return { kind: 'already_refunded' as const };
    const value = amount ?? left;
    if (value > left) return { kind: 'too_large' as const, left };
    await trx('sandbox_refunds').insert({
      provider: PROVIDER, merchant_id: s.accountId, out_trade_no: s.id, out_refund_no: refund.id, refund_no: refund.id, status: refund.status,
      amount: value, data: JSON.stringify({ created: refund.created, metadata: refund.metadata }), created: refund.created,
    });
    await trx('sandbox_orders').where({ provider: PROVIDER, merchant_id: s.accountId, out_trade_no: s.id }).update({ amount_refunded: current.amountRefunded + value, updated_ms: Date.now() });
    return { kind: 'refunded' as const, session: { ...current, amountRefunded: current.amountRefunded + value }, refund: { ...refund, amount: value } };
  });
}

// ---- idempotency (docs.stripe.com/idempotency) --------------------------------------------------

export type IdempotencyClaim = { kind: 'new' } | { kind: 'replay'; status: number; body: string } | { kind: 'mismatch' } | { kind: 'in_progress' };

/** Claims a key for a request (by its hash): new, a replay of the first answer, a reuse with other parameters, or one still running. */
export async function claimIdempotencyKey(db: Knex, account: string, key: string, hash: string): Promise<IdempotencyClaim> {
  const inserted = await db('sandbox_stripe_idempotency')
    .insert({ account, idempotency_key: key, request_hash: hash, status: 0, body: '', created: Math.floor(Date.now() / 1000) })
    .onConflict(['account', 'idempotency_key'])
    .ignore()
    .returning('idempotency_key');
  if (inserted.length > 0) return { kind: 'new' };
  const row = await db('sandbox_stripe_idempotency').where({ account, idempotency_key: key }).first();
  if (!row) return { kind: 'in_progress' };
  if (row.request_hash !== hash) return { kind: 'mismatch' };
  if (Number(row.status) === 0) return { kind: 'in_progress' };
  return { kind: 'replay', status: Number(row.status), body: row.body };
}

export async function saveIdempotentAnswer(db: Knex, account: string, key: string, status: number, body: string): Promise<void> {
  await db('sandbox_stripe_idempotency').where({ account, idempotency_key: key }).update({ status, body });
}

/** A request refused before it ran is not kept: the same key may be used again (Stripe does the same). */
export async function releaseIdempotencyKey(db: Knex, account: string, key: string): Promise<void> {
  await db('sandbox_stripe_idempotency').where({ account, idempotency_key: key, status: 0 }).delete();
}
