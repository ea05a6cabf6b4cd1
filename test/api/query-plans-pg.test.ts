import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { createDb, migrate } from '../../server/db.ts';
import { pgUrl } from '../support/gateway.ts';
import { reads, statementsOf } from '../support/plans.ts';

// PostgreSQL's plans for the reads bench/queries.ts times. An empty schema has no statistics worth
// the name, so sequential scans are switched off: what is pinned is that each query CAN be one
// index range (the row-value cursor, the UNION branches) rather than a filter over every row; the
// bench shows the planner choosing them on a million seeded payments.
describe.runIf(pgUrl)('query plans on PostgreSQL', () => {
  let db: Knex;
  const schema = `t_${crypto.randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    db = createDb(pgUrl!, { schema, pool: { min: 1, max: 1 } });
    await migrate(db);
    // Enough rows over several apps, statuses and channels for statistics, then VACUUM ANALYZE.
    await db.raw(`insert into apps (id, name, created) select 'app_' || a, a, 1 from unnest(array['plan', 'o1', 'o2', 'o3']) a`);
    await db.raw(`insert into payments (id, app_id, livemode, out_trade_no, amount, currency, subject, status, channel, paid_at, expires_at, checkout_token, created, updated_ms)
      select 'pay_' || lpad(g::text, 8, '0'), (array['app_plan', 'app_o1', 'app_o2', 'app_o3'])[1 + g % 4], g % 20 <> 0, 'o' || g, 100 + g % 900, 'CNY', 's',
             (array['succeeded', 'succeeded', 'closed'])[1 + g % 3], (array['alipay_pc', 'wechat_native', 'alipay_wap'])[1 + g % 3],
             case when g % 3 < 2 then 1700000000 + g * 60 end, 1, 'tok' || g, 1700000000 + g * 60 - 30, 1
        from generate_series(1, 40000) g`);
    await db.raw(`insert into refunds (id, payment_id, app_id, livemode, amount, status, out_refund_no, channel, currency, created, updated_ms)
      select 're_' || lpad(g::text, 8, '0'), 'pay_' || lpad(g::text, 8, '0'), (array['app_plan', 'app_o1', 'app_o2', 'app_o3'])[1 + g % 4], g % 20 <> 0, 10,
             'succeeded', 'r' || g, 'alipay_pc', 'CNY', 1700000000 + g * 600, 1
        from generate_series(1, 40000, 10) g`);
    await db.raw('vacuum analyze'); // the visibility map too, as on a settled table (index-only scans)
    await db.raw('set enable_seqscan = off');
  });
  afterAll(async () => {
    await db?.raw('drop schema if exists ?? cascade', [schema]);
    await db?.destroy();
  });

  const plansOf = async (name: string) => {
    const statements = await statementsOf(db, reads(db)[name]);
    const out: string[] = [];
    for (const st of statements.filter((x) => /^select/i.test(x.sql))) {
      const res = await db.raw(`explain ${st.sql.replace(/\$\d+/g, '?')}`, st.bindings as any);
      out.push(res.rows.map((r: any) => r['QUERY PLAN']).join('\n'));
    }
    return out;
  };

  it('search is a UNION of index lookups; its page reads the payments by primary key', async () => {
    const [union] = await plansOf('search');
    expect(union).toMatch(/Index (Only )?Scan using payments_app_id_livemode_out_trade_no_unique/);
    expect(union).toMatch(/Index (Only )?Scan using payments_pkey|Index Cond: .*\(id\)::text = /);
    expect(union).toMatch(/Index Scan using payment_attempts_channel_trade_no_index/);
    expect(union).toMatch(/Index Scan using payment_attempts_provider_channel_order_no_unique/);
    expect(union).not.toMatch(/Seq Scan/);
    expect((await plansOf('searchPage'))[0]).toMatch(/Index Cond: \(\(id\)::text = ANY/);
  });

  it('a page deep in time starts its index range at the cursor (row value in the Index Cond)', async () => {
    const cond = /Index Cond: .*ROW\(created, \(id\)::text\) < ROW\(/;
    expect((await plansOf('deepPage')).at(-1)).toMatch(/payments_created_index/);
    for (const name of ['deepPage', 'deepStatus', 'deepChannel', 'deepStatusChannel']) {
      const plan = (await plansOf(name)).at(-1)!;
      expect(plan).toMatch(cond);
      expect(plan).not.toMatch(/Sort/);
    }
    expect((await plansOf('deepStatusChannel')).at(-1)).toMatch(/payments_status_channel_created_index/);
  });

  it('the filtered list (status+channel+created range, amount) is an index range, first page and deep', async () => {
    const first = (await plansOf('filteredStatusChannel')).at(-1)!;
    expect(first).toMatch(/payments_status_channel_created_index[\s\S]*Index Cond: .*created >= [\s\S]*created < /);
    const deep = (await plansOf('filteredDeep')).at(-1)!;
    expect(deep).toMatch(/payments_status_channel_created_index[\s\S]*Index Cond: .*ROW\(created, \(id\)::text\) < ROW\(/);
    // The amount bounds are index conditions on payments_created_index: no row is read to reject one.
    const amount = (await plansOf('filteredAmount')).at(-1)!;
    expect(amount).toMatch(/payments_created_index[\s\S]*Index Cond: .*amount >= [\s\S]*amount <= /);
    for (const plan of [first, deep, amount]) {
      expect(plan).not.toMatch(/Seq Scan/);
      expect(plan).not.toMatch(/Sort/);
    }
  });

  it("a payment's page finds its events by object_id", async () => {
    expect((await plansOf('eventsOfPayment'))[0]).toMatch(/events_object_id_index[\s\S]*Index Cond: \(\(object_id\)::text = ANY/);
    expect((await plansOf('refundsPayments'))[0]).toMatch(/payments_pkey/);
  });

  it('reconciliation totals are index-only scans; the CSV reads from where the last batch ended', async () => {
    expect((await plansOf('paymentTotals'))[0]).toMatch(/Index Only Scan using payments_paid_index/);
    expect((await plansOf('refundTotals'))[0]).toMatch(/Index Only Scan using refunds_status_created_index/);
    expect((await plansOf('csvPayments'))[0]).toMatch(/payments_paid_index[\s\S]*ROW\(paid_at, \(id\)::text\) > ROW\(/);
    expect((await plansOf('csvRefunds'))[0]).toMatch(/refunds_status_created_index[\s\S]*ROW\(created, \(id\)::text\) > ROW\(/);
  });
});
