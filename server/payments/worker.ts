import type { Deps } from '../deps.ts';
import { attemptFromRow, paymentFromRow } from './repo.ts';
import { refreshAttempt } from './service.ts';
import { closeAttemptAtChannel, closePayment } from './close.ts';
import { refundFromRow } from '../refunds/repo.ts';
import { IDEMPOTENCY_TTL_MS } from '../http/idempotency.ts';
import { REFUND_SUBMIT_LEASE_MS, submitRefund } from '../refunds/service.ts';
import { moneyOutPass } from '../transfers/worker.ts';
import { subscriptionPass } from '../subscriptions/worker.ts';
import { purgeChannelMessages } from '../channel-messages/repo.ts';
import { STATEMENT_EVERY_MS, statementPass } from '../statements/worker.ts';

/** Active query of pending attempts: a lost notify still ends in succeeded (about 10 s, 30 s, 1 min, 5 min, 15 min, then hourly). */
export const QUERY_SCHEDULE_MS = [10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000];
const nextQueryDelay = (queriesDone: number) => QUERY_SCHEDULE_MS[Math.min(queriesDone + 1, QUERY_SCHEDULE_MS.length - 1)];
const BATCH = 50;
const SWEEP_EVERY_MS = 10 * 60_000;
/** How soon an expired payment that could not be closed at its channel is tried again. */
const CLOSE_RETRY_MS = 60_000;
const INTERRUPTED_KEY_KEPT_MS = 30 * 24 * 3600 * 1000;

export interface PaymentWorker {
  /** One pass over everything due now; returns how many items it handled. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Background jobs for money in flight: expire payments, query pending attempts, close attempts
 * that lost to another, and push refunds until the channel gives a final answer. Items are
 * claimed by a conditional update of their due time, so several gateway processes can share
 * the work without doing an item twice at once.
 */
export function startPaymentWorker(deps: Deps, opts: { intervalMs?: number; background?: boolean; now?: () => number } = {}): PaymentWorker {
  const intervalMs = opts.intervalMs ?? 1000;
  // Which items are due and how long a claim lasts; tests move it forward to see a claim hold.
  const clock = opts.now ?? Date.now;
  let running: Promise<number> | undefined;
  let lastSweep = 0;
  // The daily statement job looks every 10 minutes, the first time 10 minutes after start. By the
  // real clock: a test that moves the worker's clock forward is not asking for statements.
  let lastStatements = Date.now();
  let stopped = false;

  async function claim(table: 'payment_attempts' | 'refunds', row: { id: string; next_query_at_ms: number }, next: number): Promise<boolean> {
    const n = await deps.db(table).where({ id: row.id, next_query_at_ms: row.next_query_at_ms }).update({ next_query_at_ms: next });
    return n === 1;
  }

  async function guarded(what: string, id: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      deps.logger.warn(`payment worker: ${what} failed, will retry`, { id, err });
    }
  }

  async function pass(): Promise<number> {
    let handled = 0;
    const now = clock();
    const expired = await deps.db('payments')
      .where('status', 'pending')
      .where('expires_at', '<=', Math.floor(now / 1000))
      .where((q) => q.whereNull('close_retry_at_ms').orWhere('close_retry_at_ms', '<=', now))
      .limit(BATCH);
    for (const row of expired) {
      // Claimed like the rest: one whose channel cannot be reached now waits its turn instead of
      // coming first in every pass, ahead of the others.
      const claimed = await deps.db('payments')
        .where({ id: row.id, status: 'pending' })
        .where((q) => (row.close_retry_at_ms === null ? q.whereNull('close_retry_at_ms') : q.where('close_retry_at_ms', row.close_retry_at_ms)))
        .update({ close_retry_at_ms: now + CLOSE_RETRY_MS });
      if (claimed !== 1) continue;
      handled++;
      await guarded('expiry', row.id, () => closePayment(deps, paymentFromRow(row)));
    }
    const due = await deps.db('payment_attempts').whereIn('status', ['pending', 'closing']).where('next_query_at_ms', '<=', now).limit(BATCH);
    for (const row of due) {
      const attempt = attemptFromRow(row);
      const next = attempt.status === 'closing' ? now + 60_000 : now + nextQueryDelay(Number(row.query_count));
      if (!(await claim('payment_attempts', row, next))) continue;
      handled++;
      if (attempt.status === 'closing') {
        await guarded('closing an attempt', attempt.id, () => closeAttemptAtChannel(deps, attempt));
      } else {
        await deps.db('payment_attempts').where({ id: attempt.id }).increment('query_count', 1);
        await guarded('query', attempt.id, () => refreshAttempt(deps, attempt));
      }
    }
    const refunds = await deps.db('refunds').where('status', 'pending').where('next_query_at_ms', '<=', now).limit(BATCH);
    for (const row of refunds) {
      const refund = refundFromRow(row);
      const lease = now + REFUND_SUBMIT_LEASE_MS;
      if (!(await claim('refunds', row, lease))) continue;
      handled++;
      await guarded('refund', refund.id, () => submitRefund(deps, refund, lease));
    }
    handled += await moneyOutPass(deps, now, guarded);
    handled += await subscriptionPass(deps, now, guarded);
    if (Date.now() - lastStatements >= STATEMENT_EVERY_MS) {
      lastStatements = Date.now();
      await guarded('statements', 'daily', () => statementPass(deps, lastStatements, guarded));
    }
    if (now - lastSweep >= SWEEP_EVERY_MS) {
      lastSweep = now;
      // Idempotent responses are replayed for 24 h; a day's grace after that, they go. A key still
      // 'processing' belongs to a request that died mid-way and may have moved money: it stays
      // (a retry gets 409) until long after any client could still be retrying it.
      await deps.db('idempotency_keys')
        .where('created_ms', '<', now - 2 * IDEMPOTENCY_TTL_MS)
        .where((q) => q.where('state', 'done').orWhere('created_ms', '<', now - INTERRUPTED_KEY_KEPT_MS))
        .delete();
      // Recorded channel messages go after their retention period (DESIGN Console: a payment's timeline).
      await purgeChannelMessages(deps.db, now - deps.config.channelMessageRetentionDays * 86_400_000);
    }
    return handled;
  }

  const runOnce = () => (running ??= pass().finally(() => (running = undefined)));
  const timer = opts.background === false ? undefined : setInterval(() => {
    if (!stopped) runOnce().catch((err) => deps.logger.error('payment worker pass failed', { err }));
  }, intervalMs);
  timer?.unref();
  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
