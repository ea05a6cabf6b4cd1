/**
 * The WeChat Pay simulator's own storage (what WeChat Pay holds on its side): merchants with
 * their keys, orders and refunds, in the sandbox_* tables under provider 'wechatpay'. State
 * changes are conditional updates; the row count decides races.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { Knex } from 'knex';
import { seal, unseal } from '../../crypto.ts';
import { parseJson } from '../../db.ts';
import { parsedMerchant } from '../parsed-merchants.ts';

const PROVIDER = 'wechatpay';
/** Further sandbox_merchants rows map each appid (公众号 and mobile app) to its merchant (the JSAPI, OAuth and app stand-ins know only the appid). */
const appidRowId = (appid: string) => `appid:${appid}`;

/** A merchant registered at the simulator: its API public key and the "WeChat Pay" keys it is answered with. */
export interface SandboxMerchant {
  mchid: string;
  appid: string;
  /** The Open Platform mobile-app AppID bound to the merchant (APP orders); merchants registered before it have none. */
  appAppid?: string;
  /** Serial of the merchant API certificate that requests must name. */
  serialNo: string;
  merchantPublicKey: KeyObject;
  apiV3Key: Buffer;
  platformPrivateKey: KeyObject;
  /** What Wechatpay-Serial carries: a PUB_KEY_ID_… (public key mode) or a platform certificate serial. */
  platformSerial: string;
  appSecret: string;
}

export interface StoredMerchantSecrets {
  appid: string;
  app_appid?: string;
  serial_no: string;
  merchant_public_key: string;
  apiv3_key: string;
  platform_private_key: string;
  platform_serial: string;
  app_secret: string;
}

export type TradeState = 'NOTPAY' | 'SUCCESS' | 'REFUND' | 'CLOSED' | 'PAYERROR';
export type TradeType = 'NATIVE' | 'MWEB' | 'JSAPI' | 'APP';

/** What an order keeps beside its columns. Times are unix seconds. */
export interface OrderData {
  appid: string;
  tradeType: TradeType;
  description: string;
  notifyUrl: string;
  attach?: string;
  timeExpire?: number;
  /** Digest of the order's terms: a repeated create with the same terms gets the same answer. */
  terms: string;
  prepayId: string;
  openid?: string;
  payerClientIp?: string;
  createdAt: number;
  transactionId?: string;
  successTime?: number;
  payerOpenid?: string;
  closedAt?: number;
  /** One notify id per payment; retries and duplicates repeat it. */
  notifyId?: string;
}

export interface SandboxOrder {
  mchid: string;
  outTradeNo: string;
  /** The unguessable handle in code_url, h5_url and prepay_id (stored in the trade_no column). */
  token: string;
  state: TradeState;
  amount: number;
  amountRefunded: number;
  data: OrderData;
}

export type RefundState = 'PROCESSING' | 'SUCCESS';

export interface SandboxRefund {
  outRefundNo: string;
  refundId: string;
  outTradeNo: string;
  amount: number;
  status: RefundState;
  createdAt: number;
  successTime?: number;
  reason?: string;
  notifyUrl?: string;
  notifyId: string;
}

const merchantAad = (id: string) => `sandbox_merchants:${PROVIDER}:${id}`;

/** Stores a new merchant and its appid index; false when the mchid or appid is taken (the caller draws again). */
export async function insertMerchant(db: Knex, masterKey: Buffer, mchid: string, secrets: StoredMerchantSecrets): Promise<boolean> {
  const created = Math.floor(Date.now() / 1000);
  const insert = async (id: string, data: unknown) =>
    (await db('sandbox_merchants')
      .insert({ provider: PROVIDER, merchant_id: id, data_sealed: seal(masterKey, JSON.stringify(data), merchantAad(id)), created })
      .onConflict(['provider', 'merchant_id'])
      .ignore()
      .returning('merchant_id')).length > 0;
  if (!(await insert(mchid, secrets))) return false;
  const appids = [secrets.appid, ...(secrets.app_appid ? [secrets.app_appid] : [])];
  const indexed: string[] = [];
  for (const appid of appids) {
    if (!(await insert(appidRowId(appid), { mchid }))) {
      await db('sandbox_merchants').where({ provider: PROVIDER }).whereIn('merchant_id', [mchid, ...indexed.map(appidRowId)]).delete();
      return false;
    }
    indexed.push(appid);
  }
  return true;
}

export async function findMerchant(db: Knex, masterKey: Buffer, mchid: string): Promise<SandboxMerchant | undefined> {
  if (!/^\d{1,32}$/.test(mchid)) return undefined;
  const row = await db('sandbox_merchants').where({ provider: PROVIDER, merchant_id: mchid }).first('data_sealed');
  if (!row) return undefined;
  return parsedMerchant(masterKey, row.data_sealed, () => openMerchant(masterKey, mchid, row.data_sealed));
}

function openMerchant(masterKey: Buffer, mchid: string, sealed: string): SandboxMerchant {
  const s = JSON.parse(unseal(masterKey, sealed, merchantAad(mchid))) as StoredMerchantSecrets;
  return {
    mchid,
    appid: s.appid,
    appAppid: s.app_appid,
    serialNo: s.serial_no,
    merchantPublicKey: crypto.createPublicKey(s.merchant_public_key),
    apiV3Key: Buffer.from(s.apiv3_key, 'ascii'),
    platformPrivateKey: crypto.createPrivateKey(s.platform_private_key),
    platformSerial: s.platform_serial,
    appSecret: s.app_secret,
  };
}

export async function findMerchantByAppid(db: Knex, masterKey: Buffer, appid: string): Promise<SandboxMerchant | undefined> {
  if (!/^wx[0-9a-fA-F]{16}$/.test(appid)) return undefined;
  const row = await db('sandbox_merchants').where({ provider: PROVIDER, merchant_id: appidRowId(appid) }).first('data_sealed');
  if (!row) return undefined;
  const { mchid } = JSON.parse(unseal(masterKey, row.data_sealed, merchantAad(appidRowId(appid)))) as { mchid: string };
  return findMerchant(db, masterKey, mchid);
}

function orderOf(row: any): SandboxOrder {
  return {
    mchid: row.merchant_id,
    outTradeNo: row.out_trade_no,
    token: row.trade_no,
    state: row.status,
    amount: Number(row.amount),
    amountRefunded: Number(row.amount_refunded),
    data: parseJson<OrderData>(row.data, {} as OrderData),
  };
}

export async function findOrder(db: Knex, mchid: string, outTradeNo: string): Promise<SandboxOrder | undefined> {
  const row = await db('sandbox_orders').where({ provider: PROVIDER, merchant_id: mchid, out_trade_no: outTradeNo }).first();
  return row ? orderOf(row) : undefined;
}

export async function findOrderByToken(db: Knex, token: string): Promise<SandboxOrder | undefined> {
  if (!/^[A-Za-z0-9]{20}$/.test(token)) return undefined;
  const row = await db('sandbox_orders').where({ provider: PROVIDER, trade_no: token }).first();
  return row ? orderOf(row) : undefined;
}

/** Inserts an order; false when the out_trade_no already exists (the caller re-reads it). */
export async function insertOrder(db: Knex, order: SandboxOrder): Promise<boolean> {
  const rows = await db('sandbox_orders')
    .insert({
      provider: PROVIDER, merchant_id: order.mchid, out_trade_no: order.outTradeNo, trade_no: order.token,
      status: order.state, amount: order.amount, amount_refunded: 0, data: JSON.stringify(order.data),
      created: order.data.createdAt, updated_ms: Date.now(),
    })
    .onConflict(['provider', 'merchant_id', 'out_trade_no'])
    .ignore()
    .returning('out_trade_no');
  return rows.length > 0;
}

/** Moves an order from its current state to another with new data; false when someone else moved it first. */
export async function transitionOrder(db: Knex, order: SandboxOrder, to: TradeState, data: OrderData): Promise<boolean> {
  const n = await db('sandbox_orders')
    .where({ provider: PROVIDER, merchant_id: order.mchid, out_trade_no: order.outTradeNo, status: order.state })
    .update({ status: to, data: JSON.stringify(data), updated_ms: Date.now() });
  return n === 1;
}

function refundOf(row: any): SandboxRefund {
  const d = parseJson<Omit<SandboxRefund, 'outRefundNo' | 'refundId' | 'outTradeNo' | 'amount' | 'status'>>(row.data, { createdAt: 0, notifyId: '' });
  return { ...d, outRefundNo: row.out_refund_no, refundId: row.refund_no, outTradeNo: row.out_trade_no, amount: Number(row.amount), status: row.status };
}

const refundData = (r: SandboxRefund) =>
  JSON.stringify({ createdAt: r.createdAt, successTime: r.successTime, reason: r.reason, notifyUrl: r.notifyUrl, notifyId: r.notifyId });

/** A refund by out_refund_no, which WeChat keeps unique per merchant. */
export async function findRefund(db: Knex, mchid: string, outRefundNo: string): Promise<SandboxRefund | undefined> {
  const row = await db('sandbox_refunds').where({ provider: PROVIDER, merchant_id: mchid, out_refund_no: outRefundNo }).first();
  return row ? refundOf(row) : undefined;
}

export type RefundOutcome =
  | { kind: 'created'; order: SandboxOrder; refund: SandboxRefund }
  | { kind: 'repeated'; order: SandboxOrder; refund: SandboxRefund }
  | { kind: 'mismatch'; refund: SandboxRefund }
  | { kind: 'exceeds'; order: SandboxOrder };

/**
 * Records a refund against a paid order in one transaction: a repeated out_refund_no returns the
 * first refund (WeChat's idempotency); the cumulative total never exceeds the order; the order's
 * trade_state becomes REFUND.
 */
export async function recordRefund(db: Knex, order: SandboxOrder, refund: SandboxRefund): Promise<RefundOutcome> {
  // Refunds of one order are serialised, as at WeChat: the row lock (PostgreSQL) makes concurrent ones wait their turn.
  return db.transaction(async (trx) => {
    await trx('sandbox_orders').where({ provider: PROVIDER, merchant_id: order.mchid, out_trade_no: order.outTradeNo }).forUpdate().first('out_trade_no');
    const current = await findOrder(trx, order.mchid, order.outTradeNo);
    if (!current) throw new Error('order vanished');
    const earlier = await findRefund(trx, current.mchid, refund.outRefundNo);
    if (earlier) {
      return earlier.outTradeNo === current.outTradeNo && earlier.amount === refund.amount
        ? { kind: 'repeated', order: current, refund: earlier }
        : { kind: 'mismatch', refund: earlier };
    }
    if (current.amountRefunded + refund.amount > current.amount) return { kind: 'exceeds', order: current };
    await trx('sandbox_refunds').insert({
      provider: PROVIDER, merchant_id: current.mchid, out_trade_no: current.outTradeNo, out_refund_no: refund.outRefundNo,
      refund_no: refund.refundId, status: refund.status, amount: refund.amount, data: refundData(refund), created: refund.createdAt,
    });
    const refunded = current.amountRefunded + refund.amount;
    const n = await trx('sandbox_orders')
      .where({ provider: PROVIDER, merchant_id: current.mchid, out_trade_no: current.outTradeNo, amount_refunded: current.amountRefunded })
      .update({ amount_refunded: refunded, status: 'REFUND', updated_ms: Date.now() });
    if (n !== 1) throw new Error('concurrent refund on the same order; retry');
    return { kind: 'created', order: { ...current, state: 'REFUND', amountRefunded: refunded }, refund };
  });
}

/** Marks a processing refund as done; false when it already was. */
export async function completeRefund(db: Knex, mchid: string, refund: SandboxRefund): Promise<boolean> {
  const n = await db('sandbox_refunds')
    .where({ provider: PROVIDER, merchant_id: mchid, out_trade_no: refund.outTradeNo, out_refund_no: refund.outRefundNo, status: 'PROCESSING' })
    .update({ status: 'SUCCESS', data: refundData(refund) });
  return n === 1;
}
