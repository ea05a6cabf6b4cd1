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

/** How long records wait to be written together. */
const FLUSH_MS = 50;
interface Pending {
  items: Array<{ row: ChannelMessageRow; resolve: (inserted: boolean) => void; reject: (err: unknown) => void }>;
  timer?: NodeJS.Timeout;
}
const pending = new WeakMap<Knex, Pending>();

/**
 * Written with the other records of the next FLUSH_MS in one multi-row statement and one commit
 * (batch.ts): at 200 notifies a second that is one commit per ten notifies instead of one each,
 * which the notify bench showed to matter (each commit rewrites the table's and indexes' pages).
 * A record still waiting when the process dies is lost: they are a debugging aid, not the money.
 */
export function insertChannelMessage(db: Knex, row: ChannelMessageRow): Promise<boolean> {
  let p = pending.get(db);
  if (!p) pending.set(db, (p = { items: [] }));
  const buffer = p;
  return new Promise((resolve, reject) => {
    buffer.items.push({ row, resolve, reject });
    if (buffer.timer) return;
    buffer.timer = setTimeout(() => {
      const items = buffer.items;
      buffer.items = [];
      buffer.timer = undefined;
      // Handed over in one turn: the batcher puts them in one statement.
      const batcher = batcherFor(db, 'channel_messages');
      for (const it of items) batcher.insert({ ...it.row }).then(it.resolve, it.reject);
    }, FLUSH_MS);
    buffer.timer.unref();
  });
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
