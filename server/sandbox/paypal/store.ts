/**
 * The PayPal simulator's own storage (what PayPal holds): merchants (REST app credentials, the
 * webhook listener, the webhook signing key and its certificate), access tokens, orders,
 * captures, refunds and PayPal-Request-Id answers, in the paypal_sandbox_* tables (migration
 * 012). State changes are conditional updates; the row count decides races.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { Knex } from 'knex';
import { seal, unseal } from '../../crypto.ts';
import { parseJson } from '../../db.ts';
import { parsedMerchant } from '../parsed-merchants.ts';

export interface StoredMerchantSecrets {
  client_id: string;
  client_secret: string;
  webhook_id: string;
  webhook_url: string;
  /** The app at the gateway the listener belongs to. */
  app_id: string;
  signing_private_key: string;
  certificate: string;
  cert_id: string;
}

export interface SandboxMerchant {
  merchantId: string;
  clientId: string;
  clientSecret: string;
  webhookId: string;
  webhookUrl: string;
  appId: string;
  signingKey: KeyObject;
  certificate: string;
  certId: string;
}

const aad = (merchantId: string) => `paypal_sandbox_merchants:${merchantId}`;
const now = () => Math.floor(Date.now() / 1000);

export async function insertMerchant(db: Knex, masterKey: Buffer, merchantId: string, s: StoredMerchantSecrets): Promise<boolean> {
  const rows = await db('paypal_sandbox_merchants')
    .insert({ merchant_id: merchantId, client_id: s.client_id, data_sealed: seal(masterKey, JSON.stringify(s), aad(merchantId)), created: now() })
    .onConflict().ignore()
    .returning('merchant_id');
  return rows.length > 0;
}

function openMerchant(masterKey: Buffer, merchantId: string, sealed: string): SandboxMerchant {
  const s = JSON.parse(unseal(masterKey, sealed, aad(merchantId))) as StoredMerchantSecrets;
  return {
    merchantId, clientId: s.client_id, clientSecret: s.client_secret, webhookId: s.webhook_id, webhookUrl: s.webhook_url, appId: s.app_id,
    signingKey: crypto.createPrivateKey(s.signing_private_key), certificate: s.certificate, certId: s.cert_id,
  };
}

export async function findMerchant(db: Knex, masterKey: Buffer, merchantId: string): Promise<SandboxMerchant | undefined> {
  if (!/^[A-Z0-9]{8,20}$/.test(merchantId)) return undefined;
  const row = await db('paypal_sandbox_merchants').where({ merchant_id: merchantId }).first('data_sealed');
  return row ? parsedMerchant(masterKey, row.data_sealed, () => openMerchant(masterKey, merchantId, row.data_sealed)) : undefined;
}

export async function findMerchantByClientId(db: Knex, masterKey: Buffer, clientId: string): Promise<SandboxMerchant | undefined> {
  if (!/^[A-Za-z0-9_-]{8,128}$/.test(clientId)) return undefined;
  const row = await db('paypal_sandbox_merchants').where({ client_id: clientId }).first('merchant_id', 'data_sealed');
  return row ? parsedMerchant(masterKey, row.data_sealed, () => openMerchant(masterKey, row.merchant_id, row.data_sealed)) : undefined;
}

/** The merchant whose certificate id this is (PAYPAL-CERT-URL). */
export async function findMerchantByCertId(db: Knex, masterKey: Buffer, certId: string): Promise<SandboxMerchant | undefined> {
  const m = /^CERT-([A-Z0-9]{8,20})-[a-f0-9]{16}$/.exec(certId);
  const merchant = m ? await findMerchant(db, masterKey, m[1]!) : undefined;
  return merchant?.certId === certId ? merchant : undefined;
}

// --- tokens --------------------------------------------------------------------------------------

const tokenHash = (token: string) => crypto.createHash('sha256').update(token).digest('hex');

export async function storeToken(db: Knex, merchantId: string, token: string, expiresAt: number): Promise<void> {
  await db('paypal_sandbox_tokens').where('expires_at', '<', now()).delete();
  await db('paypal_sandbox_tokens').insert({ token_hash: tokenHash(token), merchant_id: merchantId, expires_at: expiresAt });
}

/** The merchant a bearer token was issued to, while it lives. */
export async function merchantOfToken(db: Knex, token: string): Promise<string | undefined> {
  const row = await db('paypal_sandbox_tokens').where({ token_hash: tokenHash(token) }).where('expires_at', '>', now()).first('merchant_id');
  return row?.merchant_id;
}

/** Revokes every token of a merchant (a sandbox control: the next call gets 401). */
export async function revokeTokens(db: Knex, merchantId: string): Promise<number> {
  return db('paypal_sandbox_tokens').where({ merchant_id: merchantId }).delete();
}

// --- orders --------------------------------------------------------------------------------------

export type OrderStatus = 'CREATED' | 'PAYER_ACTION_REQUIRED' | 'APPROVED' | 'COMPLETED' | 'VOIDED';
/** What the payer's funding does at capture: chosen on the payer page. */
export type Funding = 'complete' | 'decline' | 'pending';

export interface OrderData {
  currency: string;
  /** PayPal's value string as created. */
  value: string;
  referenceId: string;
  invoiceId?: string;
  customId?: string;
  description?: string;
  returnUrl?: string;
  cancelUrl?: string;
  /** experience_context (payer-action link) or the legacy application_context (approve link). */
  experience: boolean;
  createdAt: number;
  updatedAt: number;
  approvedAt?: number;
  payerId?: string;
  funding?: Funding;
  /** The notify mode the payer page chose: governs this order's webhooks. */
  notifyMode?: string;
  captureId?: string;
  /** One event id per event type of this order; retries and duplicates repeat it. */
  eventIds?: Record<string, string>;
}

export interface SandboxOrder {
  id: string;
  merchantId: string;
  status: OrderStatus;
  data: OrderData;
}

const orderOf = (row: any): SandboxOrder => ({ id: row.id, merchantId: row.merchant_id, status: row.status, data: parseJson<OrderData>(row.data, {} as OrderData) });

/** Inserts an order; false when its invoice_id is taken at this merchant. */
export async function insertOrder(db: Knex, order: SandboxOrder): Promise<boolean> {
  const rows = await db('paypal_sandbox_orders')
    .insert({ id: order.id, merchant_id: order.merchantId, invoice_id: order.data.invoiceId ?? null, status: order.status, data: JSON.stringify(order.data), created: order.data.createdAt, updated_ms: Date.now() })
    .onConflict(['merchant_id', 'invoice_id']).ignore()
    .returning('id');
  return rows.length > 0;
}

export async function findOrder(db: Knex, id: string): Promise<SandboxOrder | undefined> {
  if (!/^[A-Z0-9]{17}$/.test(id)) return undefined;
  const row = await db('paypal_sandbox_orders').where({ id }).first();
  return row ? orderOf(row) : undefined;
}

export async function findOrderByInvoice(db: Knex, merchantId: string, invoiceId: string): Promise<SandboxOrder | undefined> {
  const row = await db('paypal_sandbox_orders').where({ merchant_id: merchantId, invoice_id: invoiceId }).first();
  return row ? orderOf(row) : undefined;
}

/** Moves an order from its current status; false when someone else moved it first. */
export async function transitionOrder(db: Knex, order: SandboxOrder, to: OrderStatus, data: OrderData): Promise<boolean> {
  const n = await db('paypal_sandbox_orders').where({ id: order.id, status: order.status }).update({ status: to, data: JSON.stringify({ ...data, updatedAt: now() }), updated_ms: Date.now() });
  return n === 1;
}

// --- captures and refunds --------------------------------------------------------------------

export type CaptureStatus = 'COMPLETED' | 'DECLINED' | 'PENDING' | 'PARTIALLY_REFUNDED' | 'REFUNDED';

export interface CaptureData {
  currency: string;
  value: string;
  invoiceId?: string;
  customId?: string;
  createdAt: number;
  updatedAt: number;
  reason?: string;
}

export interface SandboxCapture {
  id: string;
  merchantId: string;
  orderId: string;
  status: CaptureStatus;
  /** In PayPal's units of the currency (cents, or whole yen). */
  amount: number;
  amountRefunded: number;
  data: CaptureData;
}

const captureOf = (row: any): SandboxCapture => ({
  id: row.id, merchantId: row.merchant_id, orderId: row.order_id, status: row.status, amount: Number(row.amount), amountRefunded: Number(row.amount_refunded),
  data: parseJson<CaptureData>(row.data, {} as CaptureData),
});

/** Captures an approved order in one transaction: the order becomes COMPLETED and gets its capture; false when another capture won. */
export async function recordCapture(db: Knex, order: SandboxOrder, capture: SandboxCapture): Promise<boolean> {
  return db.transaction(async (trx) => {
    const data = { ...order.data, captureId: capture.id, updatedAt: now() };
    const n = await trx('paypal_sandbox_orders').where({ id: order.id, status: 'APPROVED' }).update({ status: 'COMPLETED', data: JSON.stringify(data), updated_ms: Date.now() });
    if (n !== 1) return false;
    await trx('paypal_sandbox_captures').insert({
      id: capture.id, merchant_id: capture.merchantId, order_id: order.id, status: capture.status, amount: capture.amount, amount_refunded: 0,
      data: JSON.stringify(capture.data), created: capture.data.createdAt,
    });
    return true;
  });
}

export async function findCapture(db: Knex, id: string): Promise<SandboxCapture | undefined> {
  if (!/^[A-Z0-9]{17}$/.test(id)) return undefined;
  const row = await db('paypal_sandbox_captures').where({ id }).first();
  return row ? captureOf(row) : undefined;
}

export async function findCaptureOfOrder(db: Knex, orderId: string): Promise<SandboxCapture | undefined> {
  const row = await db('paypal_sandbox_captures').where({ order_id: orderId }).first();
  return row ? captureOf(row) : undefined;
}

/** A pending capture completes (or is declined): a sandbox control. */
export async function settleCapture(db: Knex, capture: SandboxCapture, to: 'COMPLETED' | 'DECLINED'): Promise<boolean> {
  const n = await db('paypal_sandbox_captures').where({ id: capture.id, status: 'PENDING' })
    .update({ status: to, data: JSON.stringify({ ...capture.data, updatedAt: now(), reason: undefined }) });
  return n === 1;
}

export interface RefundData {
  currency: string;
  value: string;
  customId?: string;
  invoiceId?: string;
  note?: string;
  createdAt: number;
}

export interface SandboxRefund {
  id: string;
  merchantId: string;
  captureId: string;
  status: 'COMPLETED' | 'PENDING' | 'FAILED' | 'CANCELLED';
  amount: number;
  data: RefundData;
}

const refundOf = (row: any): SandboxRefund => ({ id: row.id, merchantId: row.merchant_id, captureId: row.capture_id, status: row.status, amount: Number(row.amount), data: parseJson<RefundData>(row.data, {} as RefundData) });

export async function findRefund(db: Knex, id: string): Promise<SandboxRefund | undefined> {
  if (!/^[A-Z0-9]{17}$/.test(id)) return undefined;
  const row = await db('paypal_sandbox_refunds').where({ id }).first();
  return row ? refundOf(row) : undefined;
}

export type RefundOutcome = { kind: 'created'; capture: SandboxCapture } | { kind: 'fully_refunded' } | { kind: 'exceeds'; left: number };

/** Records a refund against a capture in one transaction; the cumulative total never exceeds the capture. */
export async function recordRefund(db: Knex, capture: SandboxCapture, refund: SandboxRefund): Promise<RefundOutcome> {
  return db.transaction(async (trx) => {
    await trx('paypal_sandbox_captures').where({ id: capture.id }).forUpdate().first('id');
    const current = captureOf(await trx('paypal_sandbox_captures').where({ id: capture.id }).first());
    const left = current.amount - current.amountRefunded;
    if (left <= 0) return { kind: 'fully_refunded' as const };
    if (refund.amount > left) return { kind: 'exceeds' as const, left };
    const refunded = current.amountRefunded + refund.amount;
    const status: CaptureStatus = refunded === current.amount ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
    const n = await trx('paypal_sandbox_captures').where({ id: current.id, amount_refunded: current.amountRefunded })
      .update({ amount_refunded: refunded, status, data: JSON.stringify({ ...current.data, updatedAt: now() }) });
    if (n !== 1) throw new Error('concurrent refund on the same capture; retry');
    await trx('paypal_sandbox_refunds').insert({
      id: refund.id, merchant_id: refund.merchantId, capture_id: current.id, status: refund.status, amount: refund.amount, data: JSON.stringify(refund.data), created: refund.data.createdAt,
    });
    return { kind: 'created' as const, capture: { ...current, amountRefunded: refunded, status } };
  });
}

// --- PayPal-Request-Id ---------------------------------------------------------------------------

export interface StoredAnswer {
  digest: string;
  status: number;
  body: string;
}

/** Orders keep a request id 6 h, refunds 45 days (protocols/paypal.md). */
export async function findAnswer(db: Knex, merchantId: string, requestId: string, maxAgeS: number): Promise<StoredAnswer | undefined> {
  const row = await db('paypal_sandbox_requests').where({ merchant_id: merchantId, request_id: requestId }).where('created', '>', now() - maxAgeS).first();
  return row ? { digest: row.digest, status: Number(row.status), body: row.body } : undefined;
}

export async function storeAnswer(db: Knex, merchantId: string, requestId: string, a: StoredAnswer): Promise<void> {
  await db('paypal_sandbox_requests').where({ merchant_id: merchantId, request_id: requestId }).delete();
  await db('paypal_sandbox_requests').insert({ merchant_id: merchantId, request_id: requestId, digest: a.digest, status: a.status, body: a.body, created: now() }).onConflict().ignore();
}
