import type { Knex } from 'knex';
import { z } from 'zod';
import { bool } from '../db.ts';

export type RefundStatus = 'pending' | 'succeeded' | 'failed';

export interface RefundRow {
  id: string;
  payment_id: string;
  attempt_id: string | null;
  app_id: string;
  livemode: boolean;
  amount: number;
  status: RefundStatus;
  reason: string | null;
  out_refund_no: string;
  channel_refund_no: string | null;
  failure_message: string | null;
  automatic: boolean;
  submit_count: number;
  created: number;
}

export function refundFromRow(r: any): RefundRow {
  return { ...r, livemode: bool(r.livemode), automatic: bool(r.automatic), amount: Number(r.amount), created: Number(r.created), submit_count: Number(r.submit_count ?? 0) };
}

export async function findRefund(db: Knex, id: string, scope?: { appId: string; livemode: boolean }): Promise<RefundRow | undefined> {
  const q = db('refunds').where({ id });
  if (scope) q.where({ app_id: scope.appId, livemode: scope.livemode });
  const r = await q.first();
  return r ? refundFromRow(r) : undefined;
}

/** A refund by the merchant's own refund number (unique per app and mode). */
export async function findRefundByOutRefundNo(db: Knex, scope: { appId: string; livemode: boolean }, outRefundNo: string): Promise<RefundRow | undefined> {
  const r = await db('refunds').where({ app_id: scope.appId, livemode: scope.livemode, out_refund_no: outRefundNo }).first();
  return r ? refundFromRow(r) : undefined;
}

/** The public refund object of DESIGN §2. */
/** The refund object as the API answers it; a test parses real answers with it. */
export const refundObjectSchema = z
  .object({
    id: z.string().describe('re_…'),
    object: z.literal('refund'),
    livemode: z.boolean(),
    payment_id: z.string(),
    amount: z.number().int(),
    status: z.enum(['pending', 'succeeded', 'failed']),
    reason: z.string().nullable(),
    out_refund_no: z.string(),
    failure_message: z.string().nullable(),
    created: z.number().int().describe('unix seconds'),
  })
  .strict()
  .meta({ id: 'Refund' });

export function toRefundObject(r: RefundRow) {
  return {
    id: r.id,
    object: 'refund' as const,
    livemode: r.livemode,
    payment_id: r.payment_id,
    amount: r.amount,
    status: r.status,
    reason: r.reason,
    out_refund_no: r.out_refund_no,
    failure_message: r.failure_message,
    created: r.created,
  };
}
