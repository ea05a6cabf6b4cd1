import type { Knex } from 'knex';
import { batcherFor } from '../batch.ts';
import { bool } from '../db.ts';

/** The SQL of channel_messages (migration 040). */

export interface ChannelMessageRow {
  id: string;
  app_id: string;
  livemode: boolean | null;
  provider: string;
  kind: string;
  direction: 'in' | 'out';
  payment_id: string | null;
  attempt_id: string | null;
  refund_id: string | null;
  order_no: string | null;
  http_status: number | null;
  verification: 'verified' | 'refused' | 'error' | 'unchecked';
  reason: string | null;
  body: string | null;
  body_bytes: number;
  duration_ms: number | null;
  created_ms: number;
}

/**
 * Group-committed with the other messages of the same event-loop turn (batch.ts): a notify's
 * record shares one statement and one commit with its neighbours' instead of a commit of its own.
 */
export function insertChannelMessage(db: Knex, row: ChannelMessageRow): Promise<boolean> {
  return batcherFor(db, 'channel_messages').insert({ ...row });
}

const fromRow = (r: any): ChannelMessageRow => ({
  ...r,
  livemode: r.livemode === null || r.livemode === undefined ? null : bool(r.livemode),
  http_status: r.http_status === null ? null : Number(r.http_status),
  body_bytes: Number(r.body_bytes),
  duration_ms: r.duration_ms === null ? null : Number(r.duration_ms),
  created_ms: Number(r.created_ms),
});

/** A payment's messages, oldest first, bounded (a payer watching a QR code makes a query every few seconds). */
export async function messagesOfPayment(db: Knex, paymentId: string, limit = 300): Promise<ChannelMessageRow[]> {
  const rows = await db('channel_messages').where({ payment_id: paymentId }).orderBy([{ column: 'created_ms' }, { column: 'id' }]).limit(limit);
  return rows.map(fromRow);
}

/** Deletes messages older than `beforeMs`, a batch at a time so no statement holds the write lock long; returns how many went. */
export async function purgeChannelMessages(db: Knex, beforeMs: number, batch = 5000): Promise<number> {
  let total = 0;
  for (;;) {
    const ids = db('channel_messages').where('created_ms', '<', beforeMs).orderBy('created_ms').limit(batch).select('id');
    const n = await db('channel_messages').whereIn('id', ids).delete();
    total += n;
    if (n < batch) return total;
  }
}
