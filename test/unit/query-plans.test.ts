import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { createDb, migrate } from '../../server/db.ts';
import { SUCCESS_SQL } from '../../server/payments/repo.ts';

// SQLite's planner has no statistics: where two indexes both match an equality, it may take the
// one that walks every pending row. These are the lookups that run once per payment or refund.
describe('query plans on SQLite', () => {
  let db: Knex;
  beforeAll(async () => {
    db = createDb('sqlite::memory:');
    await migrate(db);
  });
  afterAll(() => db.destroy());

  const plan = async (q: Knex.QueryBuilder) => {
    const { sql, bindings } = q.toSQL();
    const rows: Array<{ detail: string }> = await db.raw(`explain query plan ${sql}`, bindings as readonly unknown[] as string[]);
    return rows.map((r) => r.detail).join(' | ');
  };

  const planOf = async (sql: string, bindings: Array<string | number>) => {
    const rows: Array<{ detail: string }> = await db.raw(`explain query plan ${sql}`, bindings);
    return rows.map((r) => r.detail).join(' | ');
  };

  it('closing the winner\'s sibling attempts searches by payment, not by status', async () => {
    expect(await planOf(SUCCESS_SQL.siblings, [1, 1, 'pay_1', 'att_1'])).toMatch(/USING INDEX payment_attempts_payment_id_status_index \(payment_id=\? AND status=\?\)/);
  });

  it('a notify finds its attempt by the order number index, and its payment by id', async () => {
    expect(await planOf('select * from payment_attempts where provider = ? and channel_order_no = ?', ['alipay', 'cs1'])).toMatch(/USING INDEX \S+ \(provider=\? AND channel_order_no=\?\)/);
    expect(await planOf(SUCCESS_SQL.payment, ['alipay_pc', 't', 1, 1, 'pay_1'])).toMatch(/USING INDEX sqlite_autoindex_payments_1 \(id=\?\)/);
  });

  it('finding the paid attempt to refund searches by payment and status', async () => {
    const q = db('payment_attempts').where({ payment_id: 'pay_1', status: 'succeeded', channel: 'alipay_pc' }).first();
    expect(await plan(q)).toMatch(/payment_id=\? AND status=\?/);
  });

  it('a cashier page finds its payment by the checkout token index', async () => {
    const q = db('payments').where({ checkout_token: 'x'.repeat(32) }).first();
    expect(await plan(q)).toMatch(/USING INDEX \S+ \(checkout_token=\?\)/);
  });
});
