import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { beijingDay, signedAgreement } from '../support/subscriptions.ts';
import { startPaymentWorker } from '../../server/payments/worker.ts';

/**
 * Two gateway processes on one database run their worker passes at the same time over 200
 * subscriptions due now: every period is claimed by one of them, and charged exactly once.
 */
let a: TestGateway;
let b: TestGateway;
beforeAll(async () => {
  a = await startTestGateway({ workers: false });
  b = await startTestGateway({ workers: false, sameDatabaseAs: a });
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

const N = 200;

describe('subscriptions on two gateways sharing one database', () => {
  it(`${N} due subscriptions: each period charged exactly once`, async () => {
    // A weekly rule from today (Beijing): the first period is due at once (its first try time has passed or is now).
    const rule = { period_type: 'DAY', period: 7, execute_time: beijingDay(0) };
    const ids: string[] = [];
    for (let i = 0; i < N; i += 20) {
      const batch = await Promise.all(Array.from({ length: Math.min(20, N - i) }, async () => {
        const { agreement } = await signedAgreement(a, rule);
        const s = await a.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 700, subject: 'Weekly', interval: 'week', interval_count: 1 });
        expect(s.status, JSON.stringify(s.body)).toBe(200);
        return s.body.id as string;
      }));
      ids.push(...batch);
    }
    const workers = [startPaymentWorker(a.deps, { background: false }), startPaymentWorker(b.deps, { background: false })];
    const paidCount = async () => Number((await a.deps.db('subscription_periods').where({ status: 'succeeded' }).count({ n: '*' }))[0].n);
    const handled = [0, 0];
    for (let round = 0; round < 40 && (await paidCount()) < N; round++) {
      const n = await Promise.all(workers.map((w) => w.runOnce()));
      n.forEach((x, i) => (handled[i] += x));
    }
    // Both processes took a share of the work.
    expect(handled[0]).toBeGreaterThan(0);
    expect(handled[1]).toBeGreaterThan(0);
    await Promise.all(workers.map((w) => w.stop()));

    const periods = await a.deps.db('subscription_periods').where({ period_index: 0 });
    expect(periods).toHaveLength(N);
    expect(periods.every((p) => p.status === 'succeeded' && Number(p.tries) === 1)).toBe(true);
    // One payment per subscription period, succeeded, with one attempt.
    const perPeriod = await a.deps.db('payments').whereIn('subscription_id', ids).groupBy('subscription_id', 'subscription_period').select('subscription_id', 'subscription_period').count({ n: '*' });
    expect(perPeriod).toHaveLength(N);
    expect(perPeriod.every((r) => Number(r.n) === 1)).toBe(true);
    expect(await a.deps.db('payments').whereIn('subscription_id', ids).whereNot('status', 'succeeded')).toHaveLength(0);
    const attempts = await a.deps.db('payment_attempts').where({ channel: 'alipay_agreement' });
    expect(attempts).toHaveLength(N);
    // The simulator's side: N deductions, one per mandate, each under one of our order numbers.
    const charged = await a.deps.db('sandbox_agreement_deductions');
    expect(charged).toHaveLength(N);
    expect(new Set(charged.map((c) => c.agreement_no)).size).toBe(N);
    expect(new Set(charged.map((c) => c.out_trade_no))).toEqual(new Set(attempts.map((t) => t.channel_order_no)));
    const renewed = await a.deps.db('events').where({ type: 'subscription.renewed' });
    expect(renewed).toHaveLength(N);
    // Each subscription's next period is scheduled, once, a week on.
    expect(await a.deps.db('subscription_periods').where({ period_index: 1, status: 'pending' })).toHaveLength(N);
  }, 180_000);
});
