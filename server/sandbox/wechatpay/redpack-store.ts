/**
 * What the simulated WeChat Pay holds for cash red packets: each merchant's v2 key and the
 * certificate it issued them (sandbox_wechat_v2_keys), the packets by (mch_id, mch_billno)
 * (sandbox_wechat_redpacks), and the debits (sandbox_wechat_redpack_debits), one per packet paid.
 */
import type { Knex } from 'knex';
import { parseJson } from '../../db.ts';
import { insertV2Row, readV2Row } from './v2-tls.ts';

/** A merchant's API v2 side at the simulator. */
export interface V2Merchant {
  mchid: string;
  /** The 公众号 AppID: the only wxappid / appid its red packets go under. */
  appid: string;
  apiV2Key: string;
  /** SHA-256 fingerprint (colon hex, as node reports it) of the apiclient certificate issued to it. */
  certFingerprint: string;
}

interface StoredV2Merchant {
  appid: string;
  api_v2_key: string;
  cert_fingerprint256: string;
}

const merchantRow = (mchid: string) => `mch:${mchid}`;

export async function insertV2Merchant(db: Knex, masterKey: Buffer, m: V2Merchant): Promise<boolean> {
  const stored: StoredV2Merchant = { appid: m.appid, api_v2_key: m.apiV2Key, cert_fingerprint256: m.certFingerprint };
  return insertV2Row(db, masterKey, merchantRow(m.mchid), stored);
}

export async function findV2Merchant(db: Knex, masterKey: Buffer, mchid: string): Promise<V2Merchant | undefined> {
  if (!/^\d{1,32}$/.test(mchid)) return undefined;
  const s = await readV2Row<StoredV2Merchant>(db, masterKey, merchantRow(mchid));
  return s && { mchid, appid: s.appid, apiV2Key: s.api_v2_key, certFingerprint: s.cert_fingerprint256 };
}

/** Stored states; SENDING is a view of a young SENT packet (redpack.ts). */
export type StoredPacketStatus = 'SENT' | 'RECEIVED' | 'RFUND_ING' | 'REFUND' | 'FAILED';

export interface PacketData {
  sendName: string;
  wishing: string;
  actName: string;
  remark: string;
  sceneId?: string;
  clientIp: string;
  /** Unix seconds. */
  sendTime: number;
  rcvTime?: number;
  refundTime?: number;
  reason?: string;
}

export interface SandboxPacket {
  mchid: string;
  billno: string;
  detailId: string;
  openid: string;
  status: StoredPacketStatus;
  amount: number;
  terms: string;
  sendDay: string;
  createdMs: number;
  data: PacketData;
}

function packetOf(row: any): SandboxPacket {
  return {
    mchid: row.mch_id, billno: row.mch_billno, detailId: row.detail_id, openid: row.re_openid, status: row.status,
    amount: Number(row.amount), terms: row.terms, sendDay: row.send_day, createdMs: Number(row.created_ms),
    data: parseJson<PacketData>(row.data, {} as PacketData),
  };
}

export async function findPacket(db: Knex, mchid: string, billno: string): Promise<SandboxPacket | undefined> {
  const row = await db('sandbox_wechat_redpacks').where({ mch_id: mchid, mch_billno: billno }).first();
  return row ? packetOf(row) : undefined;
}

/** Packets a user got from a merchant on one Beijing day (failed ones do not count). */
export async function packetsOfDay(db: Knex, mchid: string, openid: string, day: string): Promise<number> {
  const [row] = await db('sandbox_wechat_redpacks').where({ mch_id: mchid, re_openid: openid, send_day: day }).whereNot({ status: 'FAILED' }).count<{ n: number }[]>({ n: '*' });
  return Number(row?.n ?? 0);
}

/**
 * Sends a packet: inserts it and debits the merchant in one transaction. False when the number
 * is already taken (the caller re-reads it and answers as for a resend).
 */
export async function insertPacket(db: Knex, p: SandboxPacket): Promise<boolean> {
  return db.transaction(async (trx) => {
    const rows = await trx('sandbox_wechat_redpacks')
      .insert({
        mch_id: p.mchid, mch_billno: p.billno, detail_id: p.detailId, re_openid: p.openid, status: p.status, amount: p.amount,
        terms: p.terms, data: JSON.stringify(p.data), send_day: p.sendDay, created_ms: p.createdMs, updated_ms: p.createdMs,
      })
      .onConflict(['mch_id', 'mch_billno'])
      .ignore()
      .returning('mch_billno');
    if (rows.length === 0) return false;
    await trx('sandbox_wechat_redpack_debits').insert({ mch_id: p.mchid, mch_billno: p.billno, amount: p.amount, created_ms: p.createdMs });
    return true;
  });
}

/** Moves a packet from one stored state to another; false when it was not in `from`. */
export async function transitionPacket(db: Knex, p: SandboxPacket, from: StoredPacketStatus, to: StoredPacketStatus, data: PacketData): Promise<boolean> {
  const n = await db('sandbox_wechat_redpacks')
    .where({ mch_id: p.mchid, mch_billno: p.billno, status: from })
    .update({ status: to, data: JSON.stringify(data), updated_ms: Date.now() });
  return n === 1;
}

/** How many times the simulator paid out under this mch_billno (exactly-once means 0 or 1). */
export async function redPacketPaidCount(db: Knex, mchid: string, billno: string): Promise<number> {
  const [row] = await db('sandbox_wechat_redpack_debits').where({ mch_id: mchid, mch_billno: billno }).count<{ n: number }[]>({ n: '*' });
  return Number(row?.n ?? 0);
}
