import { z } from 'zod';
import type { Knex } from 'knex';
import { bool, parseJson } from '../db.ts';
import type { RecipientType } from '../channels/payouts.ts';
import { recipientObjectSchema } from '../transfers/repo.ts';

export const RED_PACKET_STATUSES = ['sending', 'sent', 'received', 'refunded', 'failed'] as const;
export type RedPacketStatusName = (typeof RED_PACKET_STATUSES)[number];
export const FINAL_RED_PACKET_STATUSES: readonly RedPacketStatusName[] = ['received', 'refunded', 'failed'];
export const RED_PACKET_CHANNELS = ['alipay', 'wechatpay'] as const;
export type RedPacketChannelName = (typeof RED_PACKET_CHANNELS)[number];

export interface RedPacketRow {
  id: string;
  app_id: string;
  livemode: boolean;
  channel: RedPacketChannelName;
  amount: number;
  currency: string;
  out_red_packet_no: string;
  packet_no: string;
  recipient_type: RecipientType;
  recipient_account: string;
  recipient_name: string | null;
  sender_name: string;
  wishing: string;
  act_name: string;
  remark: string;
  scene_id: string | null;
  client_ip: string;
  status: RedPacketStatusName;
  failure_code: string | null;
  failure_message: string | null;
  channel_packet_no: string | null;
  metadata: Record<string, string>;
  sent_at: number | null;
  received_at: number | null;
  refunded_at: number | null;
  created: number;
  next_query_at_ms: number | null;
  submit_count: number;
  query_count: number;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function redPacketFromRow(r: any): RedPacketRow {
  return {
    ...r,
    livemode: bool(r.livemode),
    amount: Number(r.amount),
    metadata: parseJson(r.metadata, {}),
    sent_at: num(r.sent_at),
    received_at: num(r.received_at),
    refunded_at: num(r.refunded_at),
    created: Number(r.created),
    next_query_at_ms: num(r.next_query_at_ms),
    submit_count: Number(r.submit_count),
    query_count: Number(r.query_count),
  };
}

export const redPacketObjectSchema = z
  .object({
    id: z.string().describe('rp_…'),
    object: z.literal('red_packet'),
    livemode: z.boolean(),
    channel: z.enum(RED_PACKET_CHANNELS),
    amount: z.number().int(),
    currency: z.string(),
    out_red_packet_no: z.string(),
    recipient: recipientObjectSchema,
    sender_name: z.string(),
    wishing: z.string(),
    act_name: z.string(),
    remark: z.string(),
    scene_id: z.string().nullable(),
    status: z.enum(RED_PACKET_STATUSES).describe('sending → sent (delivered, not yet opened) → received, or refunded when left unopened for 24 h; failed'),
    failure_code: z.string().nullable(),
    failure_message: z.string().nullable(),
    channel_red_packet_no: z.string().nullable().describe("the channel's number (WeChat send_listid, Alipay order_id)"),
    sent_at: z.number().int().nullable(),
    received_at: z.number().int().nullable(),
    refunded_at: z.number().int().nullable(),
    metadata: z.record(z.string(), z.string()),
    created: z.number().int(),
  })
  .strict()
  .meta({ id: 'RedPacket' });

export function toRedPacketObject(p: RedPacketRow) {
  return {
    id: p.id,
    object: 'red_packet' as const,
    livemode: p.livemode,
    channel: p.channel,
    amount: p.amount,
    currency: p.currency,
    out_red_packet_no: p.out_red_packet_no,
    recipient: { type: p.recipient_type, account: p.recipient_account, name: p.recipient_name },
    sender_name: p.sender_name,
    wishing: p.wishing,
    act_name: p.act_name,
    remark: p.remark,
    scene_id: p.scene_id,
    status: p.status,
    failure_code: p.failure_code,
    failure_message: p.failure_message,
    channel_red_packet_no: p.channel_packet_no,
    sent_at: p.sent_at,
    received_at: p.received_at,
    refunded_at: p.refunded_at,
    metadata: p.metadata,
    created: p.created,
  };
}

export async function findRedPacket(db: Knex | Knex.Transaction, scope: { appId: string; livemode: boolean }, id: string): Promise<RedPacketRow | undefined> {
  const r = await db('red_packets').where({ id, app_id: scope.appId, livemode: scope.livemode }).first();
  return r ? redPacketFromRow(r) : undefined;
}

export async function findRedPacketById(db: Knex | Knex.Transaction, id: string): Promise<RedPacketRow | undefined> {
  const r = await db('red_packets').where({ id }).first();
  return r ? redPacketFromRow(r) : undefined;
}

export async function findRedPacketByNo(db: Knex | Knex.Transaction, channel: RedPacketChannelName, packetNo: string): Promise<RedPacketRow | undefined> {
  const r = await db('red_packets').where({ channel, packet_no: packetNo }).first();
  return r ? redPacketFromRow(r) : undefined;
}
