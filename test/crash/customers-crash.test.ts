import { describe, expect, it } from 'vitest';
import { pgUrl, pool, withCrashWorld, type DbKind } from './harness.ts';

// 300 top-ups and balance spends run against a gateway that is SIGKILLed halfway and restarted.
// Whatever each dead request had done, every balance equals the sum of its ledger, none is below
// zero, and each succeeded payment of a customer has exactly its one entry (top-up or spend),
// and no other payment has any: the entry commits with the change or not at all.

function crashDuringLedgerWork(kind: DbKind): Promise<void> {
  return withCrashWorld({ kind, name: 'ledger' }, async ({ db, gateways, up, api, died }) => {
    const first = await up('A');
    const customers: string[] = [];
    for (let i = 0; i < 5; i++) {
      const c = (await api('POST', '/v1/customers', { out_user_id: `crash_${i}` })).body;
      customers.push(c.id);
      await api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 2000 });
    }
    // The app's first Alipay payment provisions its simulator keys: before the load, not during it.
    const warm = (await api('POST', '/v1/payments', { amount: 100, subject: 'Warm', out_trade_no: 'warm', customer: customers[0], purpose: 'balance_top_up' })).body;
    expect((await api('POST', `/v1/test_helpers/payments/${warm.id}/simulate`, { channel: 'alipay_pc' })).body.status).toBe('succeeded');

    const ops = Array.from({ length: 300 }, (_, i) => ({ i, customer: customers[i % customers.length], topUp: i % 3 === 0 }));
    let done = 0;
    let killed: Promise<unknown> | undefined;
    await pool(ops, 12, async (op) => {
      if (op.topUp) {
        const p = await api('POST', '/v1/payments', { amount: 300, subject: 'Top-up', out_trade_no: `tu_${op.i}`, customer: op.customer, purpose: 'balance_top_up' });
        if (p.status === 200) await api('POST', `/v1/test_helpers/payments/${p.body.id}/simulate`, { channel: 'alipay_pc' });
      } else {
        await api('POST', '/v1/payments', { amount: 200, subject: 'Spend', out_trade_no: `sp_${op.i}`, customer: op.customer, channel: 'balance' });
      }
      // Halfway, the gateway dies mid-request (SIGKILL: no graceful anything) and another takes over.
      if (++done === 150) killed = first.kill('SIGKILL').then(() => up('B'));
      if (killed && done > 150) await killed;
    });
    await killed;

    const balances = await db('customers').select('id', 'balance');
    for (const c of balances) {
      const [{ total }] = await db('balance_transactions').where({ customer_id: c.id }).sum({ total: 'amount' });
      expect(Number(total), c.id).toBe(Number(c.balance));
      expect(Number(c.balance)).toBeGreaterThanOrEqual(0);
    }
    const entries = await db('balance_transactions').whereIn('type', ['top_up', 'payment']).select('source', 'type');
    const bySource = new Map<string, number>();
    for (const e of entries) bySource.set(e.source, (bySource.get(e.source) ?? 0) + 1);
    const paid = await db('payments').whereNotNull('customer_id').where({ status: 'succeeded' }).select('id');
    expect(paid.length).toBeGreaterThan(100);
    for (const p of paid) expect(bySource.get(p.id), p.id).toBe(1);
    expect(bySource.size).toBe(paid.length);
    // The load really crossed the crash: some requests died with A, and B answered the rest.
    expect(gateways).toHaveLength(2);
    expect(died()).toBeGreaterThan(0);
  });
}

describe('the balance ledger across a crash', () => {
  it.skipIf(pgUrl)('SQLite: after SIGKILL during 300 top-ups and spends, every ledger sums to its balance, one entry per paid payment', () => crashDuringLedgerWork('sqlite'), 180_000);
  it.skipIf(!pgUrl)('PostgreSQL: after SIGKILL during 300 top-ups and spends, every ledger sums to its balance, one entry per paid payment', () => crashDuringLedgerWork('postgres'), 180_000);
});
