/**
 * The UnionPay simulator's storage (what UnionPay holds on its side), in its own
 * sandbox_unionpay_* tables (migration 011): its CA, the merchants' signing certificates by
 * certId, and transactions by merId + orderId + txnTime. State changes are conditional updates.
 */
import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import { seal, unseal } from '../../crypto.ts';
import { parseJson } from '../../db.ts';
import { parsedMerchant } from '../parsed-merchants.ts';
import { issueCertificate, randomSerial, type DistinguishedName } from './x509.ts';
import { beijingTime } from '../../channels/unionpay/transform.ts';
import { UNIONPAY_CN_ORG } from '../../channels/unionpay/sign.ts';

const generateKeyPair = promisify(crypto.generateKeyPair);
const CA_ID = 'default';
const CA_AAD = 'sandbox_unionpay_ca:default';

/** The simulator's chain: root and middle are what merchants configure; the leaf signs every answer and notify. */
export interface SandboxCa {
  rootCert: string;
  middleCert: string;
  middleKey: KeyObject;
  /** PEM with CRLF line endings, as UnionPay sends signPubKeyCert. */
  leafCert: string;
  leafKey: KeyObject;
}

interface StoredCa {
  root_cert: string;
  middle_cert: string;
  middle_key: string;
  leaf_cert: string;
  leaf_key: string;
}

const ORG: DistinguishedName[number] = ['O', 'Checkstand UnionPay Sandbox'];
export const ROOT_DN: DistinguishedName = [['C', 'CN'], ORG, ['CN', 'Checkstand UnionPay Sandbox Root CA']];
export const MIDDLE_DN: DistinguishedName = [['C', 'CN'], ORG, ['CN', 'Checkstand UnionPay Sandbox OCA']];
const YEAR = 365 * 86400;

const pkcs8 = (k: KeyObject) => k.export({ format: 'pem', type: 'pkcs8' }).toString();

/** Draws a new CA chain (keys on libuv's threads). */
async function drawCa(): Promise<StoredCa> {
  const [root, middle, leaf] = await Promise.all([0, 1, 2].map(() => generateKeyPair('rsa', { modulusLength: 2048 })));
  const now = Math.floor(Date.now() / 1000);
  const notBefore = now - 86400;
  const rootCert = issueCertificate({ serial: randomSerial(8), subject: ROOT_DN, issuer: ROOT_DN, notBefore, notAfter: now + 20 * YEAR, publicKey: root!.publicKey, issuerKey: root!.privateKey, ca: true });
  const middleCert = issueCertificate({ serial: randomSerial(8), subject: MIDDLE_DN, issuer: ROOT_DN, notBefore, notAfter: now + 15 * YEAR, publicKey: middle!.publicKey, issuerKey: root!.privateKey, ca: true });
  // UnionPay's signing CN: 041@Z<date>@中国银联股份有限公司@<n> (the adapter checks the third part in every mode).
  const cn = `041@Z${beijingTime(now).slice(0, 4)}-01-01@${UNIONPAY_CN_ORG}@00000001`;
  const leafCert = issueCertificate({
    serial: randomSerial(), subject: [['C', 'CN'], ORG, ['OU', 'UnionPay Sandbox'], ['CN', cn]], issuer: MIDDLE_DN,
    notBefore, notAfter: now + 10 * YEAR, publicKey: leaf!.publicKey, issuerKey: middle!.privateKey, ca: false,
  }, '\r\n');
  return { root_cert: rootCert, middle_cert: middleCert, middle_key: pkcs8(middle!.privateKey), leaf_cert: leafCert, leaf_key: pkcs8(leaf!.privateKey) };
}

/** The simulator's CA, drawn once per gateway database (a concurrent first draw loses to the stored one). */
export async function ensureCa(db: Knex, masterKey: Buffer): Promise<SandboxCa> {
  const existing = await findCa(db, masterKey);
  if (existing) return existing;
  const drawn = await drawCa();
  await db('sandbox_unionpay_ca')
    .insert({ id: CA_ID, data_sealed: seal(masterKey, JSON.stringify(drawn), CA_AAD), created: Math.floor(Date.now() / 1000) })
    .onConflict('id')
    .ignore();
  return (await findCa(db, masterKey))!;
}

export async function findCa(db: Knex, masterKey: Buffer): Promise<SandboxCa | undefined> {
  const row = await db('sandbox_unionpay_ca').where({ id: CA_ID }).first('data_sealed');
  if (!row) return undefined;
  return parsedMerchant(masterKey, row.data_sealed, () => {
    const s = JSON.parse(unseal(masterKey, row.data_sealed, CA_AAD)) as StoredCa;
    return { rootCert: s.root_cert, middleCert: s.middle_cert, middleKey: crypto.createPrivateKey(s.middle_key), leafCert: s.leaf_cert, leafKey: crypto.createPrivateKey(s.leaf_key) };
  });
}

/** A merchant at the simulator: UnionPay knows its signing certificate (by certId), never its key. */
export interface SandboxMerchant {
  merId: string;
  certId: string;
  signCert: X509Certificate;
}

/** Stores a merchant; false when the merId or certId is taken (the caller draws another). */
export async function insertMerchant(db: Knex, merId: string, certId: string, signCert: string): Promise<boolean> {
  const rows = await db('sandbox_unionpay_merchants')
    .insert({ mer_id: merId, cert_id: certId, sign_cert: signCert, created: Math.floor(Date.now() / 1000) })
    .onConflict()
    .ignore()
    .returning('mer_id');
  return rows.length > 0;
}

const merchantOf = (row: { mer_id: string; cert_id: string; sign_cert: string }): SandboxMerchant =>
  ({ merId: row.mer_id, certId: row.cert_id, signCert: new X509Certificate(row.sign_cert) });

export async function findMerchantByCertId(db: Knex, certId: string): Promise<SandboxMerchant | undefined> {
  const row = await db('sandbox_unionpay_merchants').where({ cert_id: certId }).first();
  return row ? merchantOf(row) : undefined;
}

export async function findMerchant(db: Knex, merId: string): Promise<SandboxMerchant | undefined> {
  const row = await db('sandbox_unionpay_merchants').where({ mer_id: merId }).first();
  return row ? merchantOf(row) : undefined;
}

export type TxnStatus = 'pending' | 'succeeded' | 'failed';

/** What a transaction keeps beside its columns. Times are unix seconds. */
export interface TxnData {
  channelType: string;
  frontUrl?: string;
  backUrl?: string;
  /** Unix seconds; the payer page refuses to pay after it. */
  payTimeout?: number;
  reqReserved?: string;
  respCode?: string;
  respMsg?: string;
  paidAt?: number;
  traceNo?: string;
  settleDate?: string;
}

export interface SandboxTxn {
  merId: string;
  orderId: string;
  txnTime: string;
  txnType: string;
  queryId: string;
  origQryId?: string;
  status: TxnStatus;
  amount: number;
  amountRefunded: number;
  data: TxnData;
}

function txnOf(row: any): SandboxTxn {
  return {
    merId: row.mer_id, orderId: row.order_id, txnTime: row.txn_time, txnType: row.txn_type, queryId: row.query_id,
    origQryId: row.orig_qry_id ?? undefined, status: row.status, amount: Number(row.amount), amountRefunded: Number(row.amount_refunded),
    data: parseJson<TxnData>(row.data, {} as TxnData),
  };
}

/** The transaction merId + orderId + txnTime identify. */
export async function findTxn(db: Knex, merId: string, orderId: string, txnTime: string): Promise<SandboxTxn | undefined> {
  const row = await db('sandbox_unionpay_txns').where({ mer_id: merId, order_id: orderId, txn_date: txnTime.slice(0, 8), txn_time: txnTime }).first();
  return row ? txnOf(row) : undefined;
}

/** The transaction of that orderId on txnTime's trading day, whatever its txnTime (duplicates answer 12). */
export async function findTxnOfDay(db: Knex, merId: string, orderId: string, txnDate: string): Promise<SandboxTxn | undefined> {
  const row = await db('sandbox_unionpay_txns').where({ mer_id: merId, order_id: orderId, txn_date: txnDate }).first();
  return row ? txnOf(row) : undefined;
}

export async function findTxnByQueryId(db: Knex, merId: string, queryId: string): Promise<SandboxTxn | undefined> {
  const row = await db('sandbox_unionpay_txns').where({ mer_id: merId, query_id: queryId }).first();
  return row ? txnOf(row) : undefined;
}

/** Inserts a transaction; false when its orderId is taken that trading day. */
export async function insertTxn(db: Knex, txn: SandboxTxn): Promise<boolean> {
  const rows = await db('sandbox_unionpay_txns')
    .insert({
      mer_id: txn.merId, order_id: txn.orderId, txn_date: txn.txnTime.slice(0, 8), txn_time: txn.txnTime, txn_type: txn.txnType,
      query_id: txn.queryId, orig_qry_id: txn.origQryId ?? null, status: txn.status, amount: txn.amount, amount_refunded: 0,
      data: JSON.stringify(txn.data), created: Math.floor(Date.now() / 1000), updated_ms: Date.now(),
    })
    .onConflict(['mer_id', 'order_id', 'txn_date'])
    .ignore()
    .returning('order_id');
  return rows.length > 0;
}

/** Moves a transaction out of `pending`; false when someone else moved it first. */
export async function settleTxn(db: Knex, txn: SandboxTxn, to: TxnStatus, data: TxnData): Promise<boolean> {
  const n = await db('sandbox_unionpay_txns')
    .where({ mer_id: txn.merId, order_id: txn.orderId, txn_time: txn.txnTime, status: 'pending' })
    .update({ status: to, data: JSON.stringify(data), updated_ms: Date.now() });
  return n === 1;
}

export type RefundOutcome =
  | { kind: 'refunded'; refund: SandboxTxn }
  | { kind: 'duplicate' }
  | { kind: 'original_missing' }
  | { kind: 'exceeds' };

/**
 * Records a refund (or undo) of a paid consume in one transaction: its orderId must be new that
 * day (12), the original must exist and be paid (35), the refunded total never exceeds it (36).
 */
export async function recordRefund(db: Knex, refund: SandboxTxn): Promise<RefundOutcome> {
  return db.transaction(async (trx) => {
    const origRow = await trx('sandbox_unionpay_txns').where({ mer_id: refund.merId, query_id: refund.origQryId }).forUpdate().first();
    const orig = origRow ? txnOf(origRow) : undefined;
    if (await findTxnOfDay(trx, refund.merId, refund.orderId, refund.txnTime.slice(0, 8))) return { kind: 'duplicate' };
    if (!orig || orig.txnType !== '01' || orig.status !== 'succeeded') return { kind: 'original_missing' };
    if (orig.amountRefunded + refund.amount > orig.amount) return { kind: 'exceeds' };
    if (!(await insertTxn(trx, refund))) return { kind: 'duplicate' };
    const n = await trx('sandbox_unionpay_txns')
      .where({ mer_id: orig.merId, query_id: orig.queryId, amount_refunded: orig.amountRefunded })
      .update({ amount_refunded: orig.amountRefunded + refund.amount, updated_ms: Date.now() });
    if (n !== 1) throw new Error('concurrent refund on the same payment; retry');
    return { kind: 'refunded', refund };
  });
}
