import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { expectLedgerConsistent, newCustomer, topUp, tradeNo } from '../support/accounts.ts';

// The conditional updates decide every race (DESIGN §3): on SQLite and, with TEST_DATABASE_URL,
// on PostgreSQL, where these requests really run at once on several connections.

let g: TestGateway;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(() => g?.close());

const statuses = (rs: Array<{ status: number }>) => rs.reduce<Record<number, number>>((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {});

describe('races on balances and coupons', () => {
  it('50 concurrent balance payments of 100 on a balance of 1,000: exactly 10 succeed, balance 0', async () => {
    const c = await newCustomer(g);
    await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 1000 });
    const results = await Promise.all(Array.from({ length: 50 }, () =>
      g.api('POST', '/v1/payments', { amount: 100, subject: 'Race', out_trade_no: tradeNo('race'), customer: c.id, channel: 'balance' })));
    expect(statuses(results)).toEqual({ 200: 10, 402: 40 });
    expect(results.filter((r) => r.status === 402).every((r) => r.body.error.code === 'balance_insufficient')).toBe(true);
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(0);
    expect(Number((await g.deps.db('payments').where({ customer_id: c.id, channel: 'balance' }).count({ n: '*' }))[0].n)).toBe(10);
    await expectLedgerConsistent(g.deps.db);
  });

  it('concurrent balance payments under one out_trade_no: one succeeds, the others debit nothing', async () => {
    const c = await newCustomer(g);
    await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 1000 });
    const no = tradeNo('same');
    // Batched into one transaction on SQLite: each refused one rolls back to its own savepoint, debit included.
    const results = await Promise.all(Array.from({ length: 8 }, () =>
      g.api('POST', '/v1/payments', { amount: 100, subject: 'Same', out_trade_no: no, customer: c.id, channel: 'balance' })));
    expect(statuses(results)).toEqual({ 200: 1, 400: 7 });
    expect(results.filter((r) => r.status === 400).every((r) => r.body.error.code === 'out_trade_no_taken')).toBe(true);
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(900);
    await expectLedgerConsistent(g.deps.db);
  });

  it('30 concurrent creates with a coupon limited to 5 redemptions: exactly 5 discounted, the others refused naming coupon', async () => {
    const coupon = (await g.api('POST', '/v1/coupons', { code: `RACE${Date.now()}`, percent_off: 20, max_redemptions: 5 })).body;
    const results = await Promise.all(Array.from({ length: 30 }, () =>
      g.api('POST', '/v1/payments', { amount: 1000, subject: 'Race', out_trade_no: tradeNo('cpnrace'), coupon: coupon.code })));
    expect(statuses(results)).toEqual({ 200: 5, 400: 25 });
    expect(results.filter((r) => r.status === 200).every((r) => r.body.amount === 800 && r.body.coupon === coupon.id)).toBe(true);
    expect(results.filter((r) => r.status === 400).every((r) => r.body.error.code === 'coupon_exhausted' && r.body.error.param === 'coupon')).toBe(true);
    expect((await g.api('GET', `/v1/coupons/${coupon.id}`)).body.times_redeemed).toBe(5);
  });

  it('per_customer_limit holds under concurrency too', async () => {
    const c = await newCustomer(g);
    const coupon = (await g.api('POST', '/v1/coupons', { code: `PERC${Date.now()}`, amount_off: 100, currency: 'CNY', per_customer_limit: 2 })).body;
    const results = await Promise.all(Array.from({ length: 12 }, () =>
      g.api('POST', '/v1/payments', { amount: 1000, subject: 'Race', out_trade_no: tradeNo('perc'), coupon: coupon.code, customer: c.id })));
    expect(statuses(results)).toEqual({ 200: 2, 400: 10 });
    expect(Number((await g.deps.db('coupon_customer_uses').where({ coupon_id: coupon.id, customer_id: c.id }).first()).times_redeemed)).toBe(2);
  });

  it('a top-up notify and balance spends at the same moment: the ledger sums to the balance', async () => {
    const c = await newCustomer(g);
    await topUp(g, c.id, 500);
    const pendingTopUp = (await g.api('POST', '/v1/payments', { amount: 700, subject: 'Top-up', out_trade_no: tradeNo('tu'), customer: c.id, purpose: 'balance_top_up' })).body;
    const [paid, ...spends] = await Promise.all([
      g.api('POST', `/v1/test_helpers/payments/${pendingTopUp.id}/simulate`, { channel: 'alipay_pc' }),
      ...Array.from({ length: 12 }, () => g.api('POST', '/v1/payments', { amount: 100, subject: 'Spend', out_trade_no: tradeNo('sp'), customer: c.id, channel: 'balance' })),
    ]);
    expect(paid.body.status).toBe('succeeded');
    const ok = spends.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThanOrEqual(5);
    expect(ok + spends.filter((r) => r.status === 402).length).toBe(12);
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(1200 - ok * 100);
    await expectLedgerConsistent(g.deps.db);
    // One entry per succeeded payment of the customer.
    const entries = await g.deps.db('balance_transactions').where({ customer_id: c.id }).whereIn('type', ['top_up', 'payment']).select('source');
    const paidIds = (await g.deps.db('payments').where({ customer_id: c.id, status: 'succeeded' }).select('id')).map((r) => r.id).sort();
    expect(entries.map((e) => e.source).sort()).toEqual(paidIds);
  });
});
