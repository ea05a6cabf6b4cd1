import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { createDb, isPostgres, migrate } from '../../server/db.ts';
import { pgUrl } from '../support/gateway.ts';
import { statementsOf } from '../support/plans.ts';
import { listBalanceTransactions, listCustomers } from '../../server/customers/service.ts';
import { LEDGER_SQL } from '../../server/customers/repo.ts';
import { REDEEM_SQL } from '../../server/coupons/repo.ts';

// The account system's reads and writes at a million customers (bench/accounts.ts times the
// list): each is one index range or a primary-key lookup, never a walk of the table or a sort.
// On PostgreSQL sequential scans are switched off over a small analyzed table, as in
// test/api/query-plans-pg.test.ts: what is pinned is that each query CAN be an index range.
const auth = { appId: 'app_plan', livemode: false };

for (const kind of ['sqlite', 'postgres'] as const) {
  describe.runIf(kind === 'sqlite' || pgUrl)(`account system query plans on ${kind}`, () => {
    let db: Knex;
    const schema = kind === 'postgres' ? `t_${crypto.randomBytes(6).toString('hex')}` : undefined;
    beforeAll(async () => {
      db = kind === 'sqlite' ? createDb('sqlite::memory:') : createDb(pgUrl!, { schema, pool: { min: 1, max: 1 } });
      await migrate(db);
      await db('apps').insert([{ id: 'app_plan', name: 'p', created: 1 }, { id: 'app_other', name: 'o', created: 1 }]);
      const rows = Array.from({ length: 3000 }, (_, i) => ({
        id: `cus_${String(i).padStart(8, '0')}`, app_id: i % 3 ? 'app_plan' : 'app_other', livemode: i % 10 === 0, out_user_id: `u${i}`,
        metadata: '{}', balance: i, currency: 'CNY', created: 1_700_000_000 + i * 60, updated_ms: 1,
      }));
      for (let i = 0; i < rows.length; i += 200) await db('customers').insert(rows.slice(i, i + 200));
      const entries = Array.from({ length: 2000 }, (_, i) => ({
        id: `btx_${String(i).padStart(8, '0')}`, customer_id: `cus_${String(i % 50).padStart(8, '0')}`, app_id: 'app_plan', livemode: false, type: 'adjustment',
        amount: 1, balance_after: 1, created: 1_700_000_000 + i, source: null,
      }));
      for (let i = 0; i < entries.length; i += 200) await db('balance_transactions').insert(entries.slice(i, i + 200));
      if (isPostgres(db)) {
        await db.raw('vacuum analyze');
        await db.raw('set enable_seqscan = off');
      }
    });
    afterAll(async () => {
      if (schema) await db?.raw('drop schema if exists ?? cascade', [schema]);
      await db?.destroy();
    });

    const planOf = async (sql: string, bindings: unknown[]) => {
      if (isPostgres(db)) {
        const res = await db.raw(`explain ${sql.replace(/\$\d+/g, '?').replace(/\breturning\b[\s\S]*$/i, '')}`, bindings as any);
        return res.rows.map((r: any) => r['QUERY PLAN']).join(' | ');
      }
      const rows: Array<{ detail: string }> = await db.raw(`explain query plan ${sql}`, bindings as any);
      return rows.map((r) => r.detail).join(' | ');
    };
    const plansOf = async (call: () => Promise<unknown>) => {
      const out: string[] = [];
      for (const st of (await statementsOf(db, call)).filter((x) => /^select/i.test(x.sql))) out.push(await planOf(st.sql, st.bindings));
      return out;
    };
    const deps = () => ({ db }) as any;

    it('the customer list, first and deep pages, is a range of customers_created_index with no sort', async () => {
      for (const call of [
        () => listCustomers(deps(), auth, { limit: 100 }),
        () => listCustomers(deps(), auth, { limit: 100, starting_after: 'cus_00001001' }),
        () => listCustomers(deps(), auth, { limit: 100, ending_before: 'cus_00001001' }),
      ]) {
        const plans = await plansOf(call);
        const page = plans.at(-1)!;
        if (kind === 'sqlite') {
          expect(page).toMatch(/USING INDEX customers_created_index \(app_id=\? AND livemode=\?/);
          expect(page).not.toMatch(/TEMP B-TREE/);
        } else {
          expect(page).toMatch(/Index Scan( Backward)? using customers_created_index/);
          expect(page).not.toMatch(/Sort|Seq Scan/);
        }
      }
    });

    it('a customer by out_user_id, and the ledger of one customer, are index lookups', async () => {
      const [byUser] = await plansOf(() => listCustomers(deps(), auth, { limit: 10, out_user_id: 'u5' }));
      expect(byUser).toMatch(kind === 'sqlite' ? /USING INDEX customers_app_id_livemode_out_user_id_unique/ : /customers_app_id_livemode_out_user_id_unique/);
      const ledger = await plansOf(() => listBalanceTransactions(deps(), auth, 'cus_00000001', { limit: 25, starting_after: 'btx_00000051' }).catch(() => undefined));
      expect(ledger.some((p) => /balance_transactions_customer_index/.test(p))).toBe(true);
      expect(ledger.join(' ')).not.toMatch(kind === 'sqlite' ? /TEMP B-TREE|SCAN balance_transactions\b(?! USING)/ : /Sort|Seq Scan/);
    });

    it('debits, credits and coupon uses find their row by primary key', async () => {
      for (const [sql, bindings] of [
        [LEDGER_SQL.debit, [1, 1, 'cus_00000001', 1]],
        [LEDGER_SQL.paymentDebit, [1, 1, 'cus_00000001', 'app_plan', false, 'CNY', 1]],
        [LEDGER_SQL.credit, [1, 1, 'cus_00000001']],
        [REDEEM_SQL.coupon, [1, 'cpn_x', true, 1, 1]],
        [REDEEM_SQL.customer, ['cpn_x', 'cus_00000001', 2]],
      ] as const) {
        const plan = await planOf(sql, [...bindings]);
        expect(plan, sql).toMatch(kind === 'sqlite' ? /USING (INDEX sqlite_autoindex_\w+_1|PRIMARY KEY|INTEGER PRIMARY KEY)/ : /Index (Only )?Scan using \w+_pkey|Index Cond: \(\(?id\)?(::text)? = /);
      }
    });
  });
}
