import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { describe, expect, it, onTestFailed } from 'vitest';
import type { Knex } from 'knex';
import { createDb } from '../../server/db.ts';
import { createAppWithCli, pool, spawnGateway, startBalancer, type GatewayProcess } from './harness.ts';

// 300 top-ups and balance spends run against a gateway that is SIGKILLed halfway and restarted.
// Whatever each dead request had done, every balance equals the sum of its ledger, none is below
// zero, and each succeeded payment of a customer has exactly its one entry (top-up or spend),
// and no other payment has any: the entry commits with the change or not at all.

const pgUrl = process.env.TEST_DATABASE_URL?.startsWith('postgres') ? process.env.TEST_DATABASE_URL : undefined;

async function crashDuringLedgerWork(kind: 'sqlite' | 'postgres'): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-ledger-crash-'));
  const schema = kind === 'postgres' ? `ledger_${crypto.randomBytes(5).toString('hex')}` : undefined;
  const databaseUrl = kind === 'postgres' ? pgUrl! : `sqlite:${path.join(dir, 'crash.db')}`;
  const balancer = await startBalancer();
  const db: Knex = createDb(databaseUrl, { schema, pool: { max: 2 } });
  const gateways: GatewayProcess[] = [];
  onTestFailed(() => console.log(gateways.flatMap((g) => g.log).slice(-60).join('\n')));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PUBLIC_URL: balancer.url,
    DATABASE_URL: databaseUrl,
    CHECKSTAND_DATA_DIR: dir,
    CHECKSTAND_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
    CHECKSTAND_DEMO: 'false',
    CHECKSTAND_API_RATE_LIMIT: '0',
    ...(schema ? { DATABASE_SCHEMA: schema } : {}),
  };
  const up = async (name: string) => {
    const g = await spawnGateway(name, env);
    gateways.push(g);
    balancer.setBackends([g.port]);
    return g;
  };
  try {
    let cliEnv = env;
    if (schema) {
      await db.raw('CREATE SCHEMA ??', [schema]);
      cliEnv = { ...env, DATABASE_URL: `${pgUrl}${pgUrl!.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}` };
    }
    const app = await createAppWithCli(cliEnv);
    let died = 0;
    const api = async (method: string, p: string, body?: unknown) => {
      try {
        const res = await fetch(balancer.url + p, {
          method,
          headers: { authorization: `Bearer ${app.secret_key}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(20_000),
        });
        return { status: res.status, body: await res.json().catch(() => null) };
      } catch {
        died++;
        return { status: 0, body: null }; // the connection died with its gateway
      }
    };

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
    expect(died).toBeGreaterThan(0);
  } finally {
    for (const g of gateways) await g.kill('SIGTERM');
    await balancer.close();
    if (schema) await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the balance ledger across a crash', () => {
  it.skipIf(pgUrl)('SQLite: after SIGKILL during 300 top-ups and spends, every ledger sums to its balance, one entry per paid payment', () => crashDuringLedgerWork('sqlite'), 180_000);
  it.skipIf(!pgUrl)('PostgreSQL: after SIGKILL during 300 top-ups and spends, every ledger sums to its balance, one entry per paid payment', () => crashDuringLedgerWork('postgres'), 180_000);
});
