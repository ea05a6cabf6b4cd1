/**
 * The subscriptions part of the worker pass (payments/worker.ts runs it): periods whose try is
 * due, or whose last try's answer is to be looked at again. Each is claimed before it is driven,
 * so two gateway processes never drive one period at once: on PostgreSQL a batch at a time with
 * FOR UPDATE SKIP LOCKED (processes take disjoint batches), on SQLite one row at a time by a
 * conditional update of its due time, just before it is driven (processes then interleave).
 */
import type { Deps } from '../deps.ts';
import { isPostgres } from '../db.ts';
import { claimDuePeriodsLocked, claimPeriod, duePeriods } from './repo.ts';
import { PERIOD_LEASE_MS, drivePeriod } from './charge.ts';

const BATCH = 50;

export async function subscriptionPass(deps: Deps, now: number, guarded: (what: string, id: string, fn: () => Promise<unknown>) => Promise<void>): Promise<number> {
  const lease = now + PERIOD_LEASE_MS;
  const drive = (p: { subscription_id: string; period_index: number }, fn: () => Promise<unknown>) => guarded('subscription period', `${p.subscription_id}#${p.period_index}`, fn);
  if (isPostgres(deps.db)) {
    const claimed = await claimDuePeriodsLocked(deps.db, now, lease, BATCH);
    for (const p of claimed) await drive(p, () => drivePeriod(deps, p, now));
    return claimed.length;
  }
  let handled = 0;
  for (const due of await duePeriods(deps.db, now, BATCH)) {
    const p = await claimPeriod(deps.db, due, lease);
    if (!p) continue;
    handled++;
    await drive(p, () => drivePeriod(deps, p, now));
  }
  return handled;
}
