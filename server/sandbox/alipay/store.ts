/**
 * The Alipay simulator's own storage (what Alipay holds on its side): registered apps with their
 * keys, trades and refunds, in the sandbox_* tables. State changes are conditional updates.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { Knex } from 'knex';
import { seal, unseal } from '../../crypto.ts';
import { parseJson } from '../../db.ts';
import { parsedMerchant } from '../parsed-merchants.ts';
import type { TradeInstallments } from './installments.ts';

const PROVIDER = 'alipay';

/** The SNs of an app registered in certificate mode (公钥证书), as cert.ts computes them. */
export interface MerchantCertSns {
  appCertSn: string;
  alipayRootCertSn: string;
  /** The Alipay public certificate's SN: every answer to a cert-mode request names it as alipay_cert_sn. */
  alipayCertSn: string;
}

/** An app registered at the simulator: the app's public key and "Alipay"'s keypair for it. */
export interface SandboxMerchant {
  appId: string;
  sellerId: string;
  appPublicKey: KeyObject;
  alipayPrivateKey: KeyObject;
  alipayPublicKey: KeyObject;
  /** Certificate mode; absent for apps registered before the simulator issued certificates (public-key mode only). */
  certSns?: MerchantCertSns;
  /** The app's 应用网关, where messages such as alipay.fund.trans.order.changed are pushed; absent → no messages. */
  appGatewayUrl?: string;
}

export interface StoredMerchantSecrets {
  app_public_key: string;
  alipay_private_key: string;
  alipay_public_key: string;
  seller_id: string;
  app_cert_sn?: string;
  alipay_root_cert_sn?: string;
  alipay_cert_sn?: string;
  app_gateway_url?: string;
}

export type TradeStatus = 'WAIT_BUYER_PAY' | 'TRADE_SUCCESS' | 'TRADE_FINISHED' | 'TRADE_CLOSED';

/** What a trade keeps beside its columns. Times are unix seconds. */
export interface OrderData {
  method: string;
  subject: string;
  body?: string;
  productCode?: string;
  notifyUrl?: string;
  returnUrl?: string;
  quitUrl?: string;
  expiresAt?: number;
  gmtCreate: number;
  /** A precreated trade exists for Alipay's queries only once the payer scanned it. */
  scanned: boolean;
  gmtPayment?: number;
  gmtClose?: number;
  buyerId?: string;
  buyerLogonId?: string;
  /** One notify_id per trade status change; retries and duplicates repeat it. */
  notifyId?: string;
  /** Huabei installments the pay request asked for (extend_params.hb_fq_*; installments.ts). */
  installments?: TradeInstallments;
}

export interface SandboxOrder {
  appId: string;
  outTradeNo: string;
  tradeNo: string;
  status: TradeStatus;
  amount: number;
  amountRefunded: number;
  data: OrderData;
}

export interface SandboxRefund {
  outRequestNo: string;
  refundNo: string;
  amount: number;
  gmtRefund: number;
  reason?: string;
}

const merchantAad = (appId: string) => `sandbox_merchants:${PROVIDER}:${appId}`;

/** Stores a new app; false when the app id is taken (the caller draws another). */
export async function insertMerchant(db: Knex, masterKey: Buffer, appId: string, secrets: StoredMerchantSecrets): Promise<boolean> {
  const rows = await db('sandbox_merchants')
    .insert({ provider: PROVIDER, merchant_id: appId, data_sealed: seal(masterKey, JSON.stringify(secrets), merchantAad(appId)), created: Math.floor(Date.now() / 1000) })
    .onConflict(['provider', 'merchant_id'])
    .ignore()
    .returning('merchant_id');
  return rows.length > 0;
}

export async function findMerchant(db: Knex, masterKey: Buffer, appId: string): Promise<SandboxMerchant | undefined> {
  const row = await db('sandbox_merchants').where({ provider: PROVIDER, merchant_id: appId }).first('data_sealed');
  if (!row) return undefined;
  return parsedMerchant(masterKey, row.data_sealed, () => openMerchant(masterKey, appId, row.data_sealed));
}

function openMerchant(masterKey: Buffer, appId: string, sealed: string): SandboxMerchant {
  const s = JSON.parse(unseal(masterKey, sealed, merchantAad(appId))) as StoredMerchantSecrets;
  return {
    appId,
    sellerId: s.seller_id,
    appPublicKey: crypto.createPublicKey(s.app_public_key),
    alipayPrivateKey: crypto.createPrivateKey(s.alipay_private_key),
    alipayPublicKey: crypto.createPublicKey(s.alipay_public_key),
    ...(s.app_cert_sn && s.alipay_root_cert_sn && s.alipay_cert_sn
      ? { certSns: { appCertSn: s.app_cert_sn, alipayRootCertSn: s.alipay_root_cert_sn, alipayCertSn: s.alipay_cert_sn } }
      : {}),
    ...(s.app_gateway_url ? { appGatewayUrl: s.app_gateway_url } : {}),
  };
}

function orderOf(row: any): SandboxOrder {
  return {
    appId: row.merchant_id,
    outTradeNo: row.out_trade_no,
    tradeNo: row.trade_no,
    status: row.status,
    amount: Number(row.amount),
    amountRefunded: Number(row.amount_refunded),
    data: parseJson<OrderData>(row.data, {} as OrderData),
  };
}

export async function findOrder(db: Knex, appId: string, by: { outTradeNo?: string; tradeNo?: string }): Promise<SandboxOrder | undefined> {
  const where: Record<string, string> = { provider: PROVIDER, merchant_id: appId };
  if (by.outTradeNo) where.out_trade_no = by.outTradeNo;
  else if (by.tradeNo) where.trade_no = by.tradeNo;
  else return undefined;
  const row = await db('sandbox_orders').where(where).first();
  return row ? orderOf(row) : undefined;
}

/** Inserts a trade; false when the out_trade_no already exists (the caller re-reads it). */
export async function insertOrder(db: Knex, order: SandboxOrder): Promise<boolean> {
  const rows = await db('sandbox_orders')
    .insert({
      provider: PROVIDER, merchant_id: order.appId, out_trade_no: order.outTradeNo, trade_no: order.tradeNo,
      status: order.status, amount: order.amount, amount_refunded: 0, data: JSON.stringify(order.data),
      created: Math.floor(Date.now() / 1000), updated_ms: Date.now(),
    })
    .onConflict(['provider', 'merchant_id', 'out_trade_no'])
    .ignore()
    .returning('out_trade_no');
  return rows.length > 0;
}

/**
 * Moves a trade from one status to another with its new data; false when someone else moved
 * it first (the row count decides races).
 */
export async function transitionOrder(db: Knex, order: SandboxOrder, to: TradeStatus, data: OrderData): Promise<boolean> {
  const n = await db('sandbox_orders')
    .where({ provider: PROVIDER, merchant_id: order.appId, out_trade_no: order.outTradeNo, status: order.status })
    .update({ status: to, data: JSON.stringify(data), updated_ms: Date.now() });
  return n === 1;
}

/** Updates a trade's data without a status change (e.g. marks it scanned). */
export async function updateOrderData(db: Knex, order: SandboxOrder, data: OrderData): Promise<void> {
  await db('sandbox_orders')
    .where({ provider: PROVIDER, merchant_id: order.appId, out_trade_no: order.outTradeNo })
    .update({ data: JSON.stringify(data), updated_ms: Date.now() });
}

function refundOf(row: any): SandboxRefund {
  const data = parseJson<{ gmtRefund: number; reason?: string }>(row.data, { gmtRefund: 0 });
  return { outRequestNo: row.out_refund_no, refundNo: row.refund_no, amount: Number(row.amount), gmtRefund: data.gmtRefund, reason: data.reason };
}

export async function findRefund(db: Knex, order: SandboxOrder, outRequestNo: string): Promise<SandboxRefund | undefined> {
  const row = await db('sandbox_refunds')
    .where({ provider: PROVIDER, merchant_id: order.appId, out_trade_no: order.outTradeNo, out_refund_no: outRequestNo })
    .first();
  return row ? refundOf(row) : undefined;
}

export type RefundOutcome =
  | { kind: 'refunded'; order: SandboxOrder; refund: SandboxRefund }
  | { kind: 'repeated'; order: SandboxOrder; refund: SandboxRefund }
  | { kind: 'mismatch'; refund: SandboxRefund }
  | { kind: 'exceeds'; order: SandboxOrder };

/**
 * Records a refund against a paid trade in one transaction: a repeated out_request_no returns
 * the first refund; the cumulative total never exceeds the trade; a full refund closes the
 * trade (Alipay: TRADE_CLOSED also means "fully refunded").
 */
export async function recordRefund(db: Knex, order: SandboxOrder, refund: SandboxRefund): Promise<RefundOutcome> {
  // Refunds of one trade are serialised, as at Alipay: the row lock (PostgreSQL) makes concurrent ones wait their turn.
  return db.transaction(async (trx) => {
    await trx('sandbox_orders').where({ provider: PROVIDER, merchant_id: order.appId, out_trade_no: order.outTradeNo }).forUpdate().first('out_trade_no');
    const current = await findOrder(trx, order.appId, { outTradeNo: order.outTradeNo });
    if (!current) throw new Error('trade vanished');
    const earlier = await findRefund(trx, current, refund.outRequestNo);
    if (earlier) return earlier.amount === refund.amount ? { kind: 'repeated', order: current, refund: earlier } : { kind: 'mismatch', refund: earlier };
    if (current.amountRefunded + refund.amount > current.amount) return { kind: 'exceeds', order: current };
    await trx('sandbox_refunds').insert({
      provider: PROVIDER, merchant_id: current.appId, out_trade_no: current.outTradeNo, out_refund_no: refund.outRequestNo,
      refund_no: refund.refundNo, status: 'REFUND_SUCCESS', amount: refund.amount,
      data: JSON.stringify({ gmtRefund: refund.gmtRefund, reason: refund.reason }), created: refund.gmtRefund,
    });
    const refunded = current.amountRefunded + refund.amount;
    const status: TradeStatus = refunded === current.amount ? 'TRADE_CLOSED' : current.status;
    const data = status === 'TRADE_CLOSED' ? { ...current.data, gmtClose: refund.gmtRefund } : current.data;
    const n = await trx('sandbox_orders')
      .where({ provider: PROVIDER, merchant_id: current.appId, out_trade_no: current.outTradeNo, amount_refunded: current.amountRefunded })
      .update({ amount_refunded: refunded, status, data: JSON.stringify(data), updated_ms: Date.now() });
    if (n !== 1) throw new Error('concurrent refund on the same trade; retry');
    return { kind: 'refunded', order: { ...current, status, amountRefunded: refunded, data }, refund };
  });
}
