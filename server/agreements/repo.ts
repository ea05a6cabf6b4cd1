import { z } from 'zod';
import type { Knex } from 'knex';
import { bool, parseJson } from '../db.ts';

export const AGREEMENT_STATUSES = ['pending', 'active', 'terminated'] as const;
export type AgreementStatus = (typeof AGREEMENT_STATUSES)[number];
export const AGREEMENT_CHANNELS = ['alipay', 'wechatpay'] as const;
export type AgreementChannel = (typeof AGREEMENT_CHANNELS)[number];
/** Why a mandate ended: our API call, the wallet user, or the channel (expiry, account closed). */
export const TERMINATED_REASONS = ['merchant', 'customer', 'channel', 'expired_unsigned'] as const;

export type AgreementAction = { type: 'redirect'; redirect_url: string; wallet_url?: string } | { type: 'qr'; qr_code_url: string };

export interface AgreementRow {
  id: string;
  app_id: string;
  livemode: boolean;
  customer_id: string;
  channel: AgreementChannel;
  status: AgreementStatus;
  external_agreement_no: string;
  channel_agreement_no: string | null;
  period_type: 'DAY' | 'MONTH';
  period: number;
  execute_time: string;
  single_amount_max: number;
  currency: string;
  next_action: AgreementAction | null;
  terminated_reason: string | null;
  metadata: Record<string, string>;
  created: number;
}

export function agreementFromRow(r: any): AgreementRow {
  return {
    ...r,
    livemode: bool(r.livemode),
    period: Number(r.period),
    single_amount_max: Number(r.single_amount_max),
    next_action: r.next_action ? parseJson(r.next_action, null) : null,
    metadata: parseJson(r.metadata, {}),
    created: Number(r.created),
  };
}

const nextActionObject = z.union([
  z.object({ type: z.literal('redirect'), redirect_url: z.string().describe("the channel's signing page; send the customer's browser there"), wallet_url: z.string().optional().describe('the same page opened in the Alipay app from a phone browser') }).strict(),
  z.object({ type: z.literal('qr'), qr_code_url: z.string().describe('render as a QR code for the customer to scan with the wallet') }).strict(),
]);

export const agreementObjectSchema = z
  .object({
    id: z.string().describe('agr_…'),
    object: z.literal('agreement'),
    livemode: z.boolean(),
    channel: z.enum(AGREEMENT_CHANNELS),
    customer: z.string().describe('cus_…'),
    status: z.enum(AGREEMENT_STATUSES),
    period_rule: z.object({ period_type: z.enum(['DAY', 'MONTH']), period: z.number().int(), execute_time: z.string().describe('yyyy-MM-dd, the first deduction date') }).strict(),
    single_amount_max: z.number().int().describe('the most one deduction may take, minor units'),
    currency: z.string(),
    next_action: nextActionObject.nullable().describe('how the customer signs; null once signed or ended'),
    channel_agreement_no: z.string().nullable().describe("the channel's number for the mandate (Alipay agreement_no), once signed"),
    terminated_reason: z.enum(TERMINATED_REASONS).nullable(),
    metadata: z.record(z.string(), z.string()),
    created: z.number().int(),
  })
  .strict()
  .meta({ id: 'Agreement' });

export function toAgreementObject(a: AgreementRow) {
  return {
    id: a.id,
    object: 'agreement' as const,
    livemode: a.livemode,
    channel: a.channel,
    customer: a.customer_id,
    status: a.status,
    period_rule: { period_type: a.period_type, period: a.period, execute_time: a.execute_time },
    single_amount_max: a.single_amount_max,
    currency: a.currency,
    next_action: a.status === 'pending' ? a.next_action : null,
    channel_agreement_no: a.channel_agreement_no ?? null,
    terminated_reason: (a.terminated_reason ?? null) as (typeof TERMINATED_REASONS)[number] | null,
    metadata: a.metadata,
    created: a.created,
  };
}

export async function findAgreement(db: Knex | Knex.Transaction, scope: { appId: string; livemode: boolean }, id: string): Promise<AgreementRow | undefined> {
  const r = await db('agreements').where({ id, app_id: scope.appId, livemode: scope.livemode }).first();
  return r ? agreementFromRow(r) : undefined;
}

/** The mandate a channel's notify names: by our number, else by the channel's. */
export async function findAgreementByChannelNo(db: Knex | Knex.Transaction, channel: AgreementChannel, by: { external?: string; channelNo?: string }): Promise<AgreementRow | undefined> {
  let r: any;
  if (by.external) r = await db('agreements').where({ channel, external_agreement_no: by.external }).first();
  if (!r && by.channelNo) r = await db('agreements').where({ channel, channel_agreement_no: by.channelNo }).first();
  return r ? agreementFromRow(r) : undefined;
}

/** pending|active → next status, conditionally: false when another writer moved it first. */
export async function transitionAgreement(trx: Knex.Transaction, a: AgreementRow, to: AgreementStatus, changes: Record<string, unknown> = {}): Promise<boolean> {
  const n = await trx('agreements').where({ id: a.id, status: a.status }).update({ status: to, ...changes, updated_ms: Date.now() });
  return n === 1;
}
