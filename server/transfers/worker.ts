/**
 * The money-out part of the worker pass (payments/worker.ts runs it): transfers and red packets
 * whose next look is due — an interrupted submission (its lease ran out), an unknown answer to
 * resolve by a query, a WeChat transfer waiting for its recipient, a red packet not yet opened.
 * Each is claimed by moving its due time forward conditionally, so processes never share one.
 */
import type { Deps } from '../deps.ts';
import { driveTransfer, leaseMsOf } from './service.ts';
import { transferFromRow } from './repo.ts';
import { driveRedPacket } from '../red-packets/service.ts';
import { redPacketFromRow } from '../red-packets/repo.ts';

const BATCH = 50;

export async function moneyOutPass(deps: Deps, now: number, guarded: (what: string, id: string, fn: () => Promise<unknown>) => Promise<void>): Promise<number> {
  let handled = 0;
  const transfers = await deps.db('transfers').where('next_query_at_ms', '<=', now).whereIn('status', ['pending', 'awaiting_recipient']).limit(BATCH);
  for (const row of transfers) {
    const lease = now + leaseMsOf(deps);
    const n = await deps.db('transfers').where({ id: row.id, next_query_at_ms: row.next_query_at_ms }).update({ next_query_at_ms: lease });
    if (n !== 1) continue;
    handled++;
    await guarded('transfer', row.id, () => driveTransfer(deps, transferFromRow({ ...row, next_query_at_ms: lease }), lease));
  }
  const packets = await deps.db('red_packets').where('next_query_at_ms', '<=', now).whereIn('status', ['sending', 'sent']).limit(BATCH);
  for (const row of packets) {
    const lease = now + leaseMsOf(deps);
    const n = await deps.db('red_packets').where({ id: row.id, next_query_at_ms: row.next_query_at_ms }).update({ next_query_at_ms: lease });
    if (n !== 1) continue;
    handled++;
    await guarded('red packet', row.id, () => driveRedPacket(deps, redPacketFromRow({ ...row, next_query_at_ms: lease }), lease));
  }
  return handled;
}
