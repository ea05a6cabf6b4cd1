import { z } from 'zod';
import type { Knex } from 'knex';
import { bool, parseJson } from '../db.ts';
import { RECIPIENT_TYPES, type RecipientType, type WechatTransferConfirm } from '../channels/payouts.ts';

export const TRANSFER_STATUSES = ['requires_approval', 'pending', 'awaiting_recipient', 'succeeded', 'failed', 'canceled'] as const;
export type TransferStatus = (typeof TRANSFER_STATUSES)[number];
export const FINAL_TRANSFER_STATUSES: readonly TransferStatus[] = ['succeeded', 'failed', 'canceled'];
export const TRANSFER_CHANNELS = ['alipay', 'wechatpay'] as const;
export type TransferChannel = (typeof TRANSFER_CHANNELS)[number];

export interface TransferRow {
  id: string;
  app_id: string;
  livemode: boolean;
  channel: TransferChannel;
  amount: number;
  currency: string;
  out_transfer_no: string;
  transfer_no: string;
  recipient_type: RecipientType;
  recipient_account: string;
  recipient_name: string | null;
  description: string;
  status: TransferStatus;
  next_action: WechatTransferConfirm | null;
  failure_code: string | null;
  failure_message: string | null;
  channel_transfer_no: string | null;
  customer_id: string | null;
  source: 'channel' | 'balance';
  day: string;
  metadata: Record<string, string>;
  created_by: string | null;
  approved_by: string | null;
  approved_at: number | null;
  paid_at: number | null;
  created: number;
  next_query_at_ms: number | null;
  submit_count: number;
  query_count: number;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function transferFromRow(r: any): TransferRow {
  return {
    ...r,
    livemode: bool(r.livemode),
    amount: Number(r.amount),
    next_action: r.next_action ? parseJson(r.next_action, null) : null,
    metadata: parseJson(r.metadata, {}),
    approved_at: num(r.approved_at),
    paid_at: num(r.paid_at),
    created: Number(r.created),
    next_query_at_ms: num(r.next_query_at_ms),
    submit_count: Number(r.submit_count),
    query_count: Number(r.query_count),
  };
}

const nextActionObject = z
  .object({
    type: z.literal('wechat_transfer_confirm'),
    wechat_transfer_confirm: z
      .object({
        mch_id: z.string(),
        app_id: z.string(),
        package_info: z.string().describe('hand to wx.requestMerchantTransfer / WeixinJSBridge requestMerchantTransfer / the OpenSDK as `package`'),
      })
      .strict(),
  })
  .strict();

export const recipientObjectSchema = z
  .object({
    type: z.enum(RECIPIENT_TYPES),
    account: z.string(),
    name: z.string().nullable(),
  })
  .strict();

export const transferObjectSchema = z
  .object({
    id: z.string().describe('tr_…'),
    object: z.literal('transfer'),
    livemode: z.boolean(),
    channel: z.enum(TRANSFER_CHANNELS),
    amount: z.number().int(),
    currency: z.string(),
    out_transfer_no: z.string(),
    recipient: recipientObjectSchema,
    description: z.string(),
    status: z.enum(TRANSFER_STATUSES),
    next_action: nextActionObject.nullable().describe('with awaiting_recipient: what the recipient confirms in WeChat'),
    failure_code: z.string().nullable(),
    failure_message: z.string().nullable(),
    channel_transfer_no: z.string().nullable().describe("the channel's number (Alipay order_id, WeChat transfer_bill_no)"),
    customer: z.string().nullable().describe('cus_…, with source balance'),
    source: z.enum(['channel', 'balance']).describe("balance: the amount was taken from the customer's stored value"),
    approved_by: z.string().nullable().describe('the console user who approved it, above the approval threshold'),
    paid_at: z.number().int().nullable(),
    metadata: z.record(z.string(), z.string()),
    created: z.number().int(),
  })
  .strict()
  .meta({ id: 'Transfer' });

export function toTransferObject(t: TransferRow) {
  return {
    id: t.id,
    object: 'transfer' as const,
    livemode: t.livemode,
    channel: t.channel,
    amount: t.amount,
    currency: t.currency,
    out_transfer_no: t.out_transfer_no,
    recipient: { type: t.recipient_type, account: t.recipient_account, name: t.recipient_name },
    description: t.description,
    status: t.status,
    next_action: t.status === 'awaiting_recipient' ? t.next_action : null,
    failure_code: t.failure_code,
    failure_message: t.failure_message,
    channel_transfer_no: t.channel_transfer_no,
    customer: t.customer_id,
    source: t.source,
    approved_by: t.approved_by,
    paid_at: t.paid_at,
    metadata: t.metadata,
    created: t.created,
  };
}

export async function findTransfer(db: Knex | Knex.Transaction, scope: { appId: string; livemode: boolean }, id: string): Promise<TransferRow | undefined> {
  const r = await db('transfers').where({ id, app_id: scope.appId, livemode: scope.livemode }).first();
  return r ? transferFromRow(r) : undefined;
}

export async function findTransferById(db: Knex | Knex.Transaction, id: string): Promise<TransferRow | undefined> {
  const r = await db('transfers').where({ id }).first();
  return r ? transferFromRow(r) : undefined;
}

export async function findTransferByNo(db: Knex | Knex.Transaction, channel: TransferChannel, transferNo: string): Promise<TransferRow | undefined> {
  const r = await db('transfers').where({ channel, transfer_no: transferNo }).first();
  return r ? transferFromRow(r) : undefined;
}
