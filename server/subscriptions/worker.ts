/**
 * The subscriptions part of the worker pass (payments/worker.ts runs it): periods whose try is
 * due, or whose last try's answer is to be looked at again. Each is claimed before it is driven
 * (repo.ts claimDuePeriods: FOR UPDATE SKIP LOCKED on PostgreSQL, conditional updates on
 * SQLite), so two gateway processes never drive one period at once.
 */
import type { Deps } from '../deps.ts';
import { claimDuePeriods } from './repo.ts';
import { PERIOD_LEASE_MS, drivePeriod } from './charge.ts';

const BATCH = 50;

export async function subscriptionPass(deps: Deps, now: number, guarded: (what: string, id: string, fn: () => Promise<unknown>) => Promise<void>): Promise<number> {
  const claimed = await claimDuePeriods(deps.db, now, now + PERIOD_LEASE_MS, BATCH);
  for (const p of claimed) await guarded('subscription period', `${p.subscription_id}#${p.period_index}`, () => drivePeriod(deps, p, now));
  return claimed.length;
}
