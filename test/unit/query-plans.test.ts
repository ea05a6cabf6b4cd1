import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { createDb, migrate } from '../../server/db.ts';
import { reads, statementsOf } from '../support/plans.ts';
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

  /** The plan of every statement a read sends (the cursor's own lookup included), one line each. */
  const plansOf = async (name: string) => {
    const statements = await statementsOf(db, reads(db)[name]);
    const out: string[] = [];
    for (const st of statements.filter((x) => /^select/i.test(x.sql))) out.push(await plan(db.raw(st.sql, st.bindings as any) as any));
    return out;
  };

  // At a million payments (bench/queries.ts): each read is an index range or lookup, never a walk.
  it('search is a UNION of four index lookups, and its page reads the found payments by primary key', async () => {
    const [union] = await plansOf('search');
    expect(union).toMatch(/USING INDEX payments_app_id_livemode_out_trade_no_unique \(app_id=\? AND livemode=\? AND out_trade_no=\?\)/);
    expect(union).toMatch(/USING INDEX sqlite_autoindex_payments_1 \(id=\?\)/);
    expect(union).toMatch(/USING INDEX payment_attempts_channel_trade_no_index \(channel_trade_no=\?\)/);
    expect(union).toMatch(/USING INDEX payment_attempts_provider_channel_order_no_unique \(provider=\? AND channel_order_no=\?\)/);
    expect(union).not.toMatch(/SCAN/);
    expect((await plansOf('searchPage'))[0]).toMatch(/SEARCH payments USING INDEX sqlite_autoindex_payments_1 \(id=\?\)/);
  });

  it('a page deep in time is one index range from the cursor, with or without status and channel filters', async () => {
    const last = async (name: string) => (await plansOf(name)).at(-1)!;
    expect(await last('deepPage')).toMatch(/USING INDEX payments_created_index \(app_id=\? AND livemode=\? AND \(created,id\)<\(\?,\?\)\)/);
    expect(await last('deepStatus')).toMatch(/USING INDEX payments_status_created_index \(app_id=\? AND livemode=\? AND status=\? AND \(created,id\)<\(\?,\?\)\)/);
    expect(await last('deepChannel')).toMatch(/USING INDEX payments_channel_created_index \(app_id=\? AND livemode=\? AND channel=\? AND \(created,id\)<\(\?,\?\)\)/);
    expect(await last('deepStatusChannel')).toMatch(/USING INDEX payments_status_channel_created_index \(app_id=\? AND livemode=\? AND status=\? AND channel=\? AND \(created,id\)<\(\?,\?\)\)/);
    for (const name of ['deepPage', 'deepStatus', 'deepChannel', 'deepStatusChannel']) expect(await last(name)).not.toMatch(/TEMP B-TREE/);
  });

  it('the filtered list (status+channel+created range) is one index range, first page and deep; amount is checked on the created index', async () => {
    const last = async (name: string) => (await plansOf(name)).at(-1)!;
    expect(await last('filteredStatusChannel')).toMatch(/USING INDEX payments_status_channel_created_index \(app_id=\? AND livemode=\? AND status=\? AND channel=\? AND created>\? AND created<\?\)/);
    expect(await last('filteredDeep')).toMatch(/USING INDEX payments_status_channel_created_index \(app_id=\? AND livemode=\? AND status=\? AND channel=\? AND created>\? AND \(created,id\)<\(\?,\?\)\)/);
    expect(await last('filteredAmount')).toMatch(/USING INDEX payments_created_index \(app_id=\? AND livemode=\? AND created>\? AND created<\?\)/);
    for (const name of ['filteredStatusChannel', 'filteredDeep', 'filteredAmount']) expect(await last(name)).not.toMatch(/TEMP B-TREE/);
  });

  it("the reconciliation page's per-day counts and statement fees are read from covering indexes", async () => {
    const perDay = (await plansOf('createdPerDay'))[0]!;
    expect(perDay).toMatch(/COVERING INDEX payments_created_index \(app_id=\? AND livemode=\? AND created>\? AND created<\?\)/);
    expect(perDay).not.toMatch(/TEMP B-TREE/);
    expect((await plansOf('statementFees'))[0]).toMatch(/COVERING INDEX statement_rows_fees_index \(statement_id=\?\)/);
  });

  it("a payment's page finds its events by object_id; the lists find attempts and payments by their keys", async () => {
    expect((await plansOf('eventsOfPayment'))[0]).toMatch(/SEARCH events USING INDEX events_object_id_index \(object_id=\?\)/);
    expect((await plansOf('listFailures'))[0]).toMatch(/payment_attempts_payment_id_status_index \(payment_id=\?\)/);
    expect((await plansOf('refundsPayments'))[0]).toMatch(/SEARCH payments USING INDEX sqlite_autoindex_payments_1 \(id=\?\)/);
    expect((await plansOf('refundsList'))[0]).toMatch(/USING (COVERING )?INDEX refunds_status_created_index \(app_id=\? AND livemode=\? AND status=\?\)$/);
  });

  it('reconciliation totals come from one index each; the CSV reads ranges from where the last batch ended', async () => {
    expect((await plansOf('paymentTotals'))[0]).toMatch(/^SEARCH payments USING COVERING INDEX payments_paid_index \(app_id=\? AND livemode=\? AND status=\? AND paid_at>\? AND paid_at<\?\)/);
    expect((await plansOf('refundTotals'))[0]).toMatch(/^SEARCH refunds USING COVERING INDEX refunds_status_created_index \(app_id=\? AND livemode=\? AND status=\? AND created>\? AND created<\?\)/);
    expect((await plansOf('csvPayments'))[0]).toMatch(/USING INDEX payments_paid_index \(app_id=\? AND livemode=\? AND status=\? AND \(paid_at,id\)>\(\?,\?\) AND paid_at<\?\)/);
    expect((await plansOf('csvRefunds'))[0]).toMatch(/USING (COVERING )?INDEX refunds_status_created_index \(app_id=\? AND livemode=\? AND status=\? AND \(created,id\)>\(\?,\?\) AND created<\?\)/);
    for (const name of ['csvPayments', 'csvRefunds']) expect((await plansOf(name))[0]).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
  });
});
