/**
 * Test clocks (test mode only, as Stripe's): POST /v1/test_helpers/subscriptions/:id/advance
 * freezes the subscription's time and moves it forward; every try due on the way is run in
 * order, at its own time, through the real simulator (whose clock is set to that time, so its
 * deduction window holds as Alipay's would), and synchronously: a year of renewals in seconds.
 * A subscription on a test clock is left alone by the background scheduler.
 */
import type { AuthContext, Deps } from '../deps.ts';
import { invalid } from '../errors.ts';
import { SANDBOX_OFF } from '../channels/registry.ts';
import { sqlOf, transaction } from '../sql.ts';
import { periodFromRow } from './repo.ts';
import { clockOf, retrieveSubscription, subscriptionOf } from './service.ts';
import { drivePeriod } from './charge.ts';
import { atSimulatorTime } from './simulator-clock.ts';

const MAX_AHEAD_MS = 5 * 366 * 86_400_000;
/** Steps of one advance at most (a daily subscription over five years, with retries, fits). */
const MAX_STEPS = 10_000;

export async function advanceSubscription(deps: Deps, auth: AuthContext, id: string, input: { to: number }) {
  if (!deps.config.sandbox) throw invalid('sandbox_disabled', `Test clocks need the channel simulators: ${SANDBOX_OFF}.`);
  const s = await subscriptionOf(deps, auth, id);
  const from = clockOf(s);
  const toMs = input.to * 1000;
  if (toMs < from) throw invalid('parameter_invalid', `to must not be before the subscription's clock (${Math.floor(from / 1000)}): test clocks never go back.`, 'to');
  if (toMs > from + MAX_AHEAD_MS) throw invalid('parameter_invalid', 'to must be at most 5 years ahead of the subscription\'s clock.', 'to');
  const db = sqlOf(deps.db);
  if (s.test_clock_ms === null) {
    // From now on only this helper moves the subscription: its periods leave the background scheduler.
    await transaction(deps.db, async (tx) => {
      await tx.run('update subscriptions set test_clock_ms = ?, updated_ms = ? where id = ? and test_clock_ms is null', [from, Date.now(), s.id]);
      await tx.run('update subscription_periods set clocked = ? where subscription_id = ?', [true, s.id]);
    });
  }
  const channel = (await db.first('select channel from agreements where id = ?', [s.agreement_id]))?.channel === 'wechatpay' ? 'wechatpay' : 'alipay';
  let clock = from;
  let stuck = 0;
  for (let step = 0; step < MAX_STEPS; step++) {
    const row = await db.first(
      `select * from subscription_periods where subscription_id = ? and status = 'pending' and next_try_at_ms <= ? order by next_try_at_ms limit 1`,
      [s.id, toMs],
    );
    if (!row) break;
    const p = periodFromRow(row);
    const at = Math.max(p.next_try_at_ms!, clock);
    clock = at;
    await db.run('update subscriptions set test_clock_ms = ?, updated_ms = ? where id = ? and test_clock_ms <= ?', [at, Date.now(), s.id, at]);
    // Claimed like the scheduler claims: by the due time it was read with.
    const claimed = await db.run(
      `update subscription_periods set next_try_at_ms = ?, updated_ms = ? where subscription_id = ? and period_index = ? and status = 'pending' and next_try_at_ms = ?`,
      [at, Date.now(), p.subscription_id, p.period_index, p.next_try_at_ms],
    );
    if (claimed !== 1) continue;
    const result = await atSimulatorTime(deps, s.app_id, at, () => drivePeriod(deps, { ...p, next_try_at_ms: at }, at), channel);
    // An answer that stays pending however often it is asked stops the clock there.
    stuck = result === 'pending' ? stuck + 1 : 0;
    if (stuck >= 5) break;
  }
  await db.run('update subscriptions set test_clock_ms = ?, updated_ms = ? where id = ? and test_clock_ms < ?', [toMs, Date.now(), s.id, toMs]);
  await deps.bus.publish('webhooks', s.id);
  return retrieveSubscription(deps, auth, id);
}
