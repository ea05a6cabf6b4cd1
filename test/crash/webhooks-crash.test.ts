import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { describe, expect, it, onTestFailed } from 'vitest';
import type { Knex } from 'knex';
import { createDb } from '../../server/db.ts';
import { createAppWithCli, pool, spawnGateway, startBalancer, startVerifyingReceiver, waitFor, type GatewayProcess } from './harness.ts';

// The outbox promise of DESIGN §2, tested the hard way: gateways are killed with SIGKILL while
// 500 payments are being confirmed, restarted, and every succeeded payment's event must still
// reach the merchant, verified, with the same webhook-id and body on any redelivery.

const pgUrl = process.env.TEST_DATABASE_URL?.startsWith('postgres') ? process.env.TEST_DATABASE_URL : undefined;
const PAYMENTS = 500;
const CONCURRENCY = 20;
const KILL_AFTER = 150;
// Slow enough that deliveries are in flight at the kill; their redelivery proves the same webhook-id.
const RECEIVER_DELAY_MS = 100;

async function crashRun(kind: 'sqlite' | 'postgres'): Promise<void> {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-crash-'));
  const schema = kind === 'postgres' ? `crash_${crypto.randomBytes(5).toString('hex')}` : undefined;
  const databaseUrl = kind === 'postgres' ? pgUrl! : `sqlite:${path.join(dir, 'crash.db')}`;
  const gateways: GatewayProcess[] = [];
  const balancer = await startBalancer();
  const receiver = await startVerifyingReceiver({ delayMs: RECEIVER_DELAY_MS, pids: () => gateways.map((g) => g.child.pid!) });
  const db: Knex = createDb(databaseUrl, { schema, pool: { max: 2 } });
  const steps: string[] = [];
  const step = (what: string) => steps.push(`${((Date.now() - started) / 1000).toFixed(1)} s ${what}`);
  onTestFailed(() => console.log([...steps, ...gateways.flatMap((g) => g.log).slice(-60)].join('\n')));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PUBLIC_URL: balancer.url,
    DATABASE_URL: databaseUrl,
    CHECKSTAND_DATA_DIR: dir,
    CHECKSTAND_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
    CHECKSTAND_DEMO: 'false',
    // 20 confirmations at a time are far above the default per-key limit, and not what is tested here.
    CHECKSTAND_API_RATE_LIMIT: '0',
    ...(schema ? { DATABASE_SCHEMA: schema } : {}),
  };
  const up = async (name: string) => {
    const g = await spawnGateway(name, env);
    gateways.push(g);
    balancer.setBackends(gateways.filter((x) => x.child.exitCode === null && x.child.signalCode === null).map((x) => x.port));
    return g;
  };

  try {
    // The CLI reads DATABASE_URL only, so on PostgreSQL the schema goes in as libpq options.
    let cliEnv = env;
    if (schema) {
      await db.raw('CREATE SCHEMA ??', [schema]);
      cliEnv = { ...env, DATABASE_URL: `${pgUrl}${pgUrl!.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}` };
    }
    const app = await createAppWithCli(cliEnv);
    const api = async (method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> => {
      try {
        const res = await fetch(balancer.url + p, {
          method,
          headers: { authorization: `Bearer ${app.secret_key}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(20_000),
        });
        return { status: res.status, body: await res.json().catch(() => null) };
      } catch {
        return { status: 0, body: null }; // the connection died with a gateway
      }
    };

    step('app created');
    const first = await up('A');
    const second = kind === 'postgres' ? await up('B') : undefined;
    const ep = await api('POST', '/v1/webhook_endpoints', { url: receiver.url, enabled_events: ['payment.succeeded'] });
    expect(ep.status).toBe(200);
    receiver.setSecret(ep.body.secret);

    step('gateways up');
    const ids: string[] = [];
    await pool([...Array(PAYMENTS).keys()], CONCURRENCY, async (i) => {
      const p = await api('POST', '/v1/payments', { amount: 100 + i, subject: `Crash ${i}`, out_trade_no: `crash_${i}` });
      expect(p.status).toBe(200);
      ids.push(p.body.id);
    });

    // Confirm 20 at a time; SIGKILL the first gateway after KILL_AFTER confirmations. On SQLite
    // nothing answers until the restart, so the rest wait; on PostgreSQL the second instance
    // carries on while the first is restarted.
    step('payments created');
    let confirmed = 0;
    let failed = 0;
    let killing: Promise<void> | undefined;
    let restarting: Promise<GatewayProcess> | undefined;
    await pool(ids, CONCURRENCY, async (id) => {
      if (killing && !second) return;
      const res = await api('POST', `/v1/test_helpers/payments/${id}/simulate`, { channel: 'alipay_pc' });
      if (res.status === 200) confirmed++;
      else failed++;
      if (confirmed >= KILL_AFTER && !killing) {
        step(`SIGKILL after ${confirmed} confirmations`);
        killing = first.kill('SIGKILL');
        if (second) restarting = killing.then(() => up('A2'));
      }
    });
    await killing;
    const restarted = await (restarting ?? up('A2'));
    const afterKill = Date.now();
    step(`restarted; ${confirmed} confirmed, ${failed} lost`);

    // Payments left pending: some attempts were paid at the simulator before the kill (their
    // notify died with it), so let the restarted payment worker query those first; only then
    // confirm what is still pending, to avoid paying a trade twice.
    const pendingIds = () => db('payments').where({ app_id: app.app_id, status: 'pending' }).pluck('id');
    for (let round = 0; round < 2 && (await pendingIds()).length > 0; round++) {
      // Bounded and not fatal: if a query is late, a leftover may be paid twice, which the
      // gateway refunds automatically; its payment.succeeded event is still the one under test.
      await waitFor('active queries of pending attempts', async () => {
        const row = await db('payment_attempts as a')
          .join('payments as p', 'p.id', 'a.payment_id')
          .where({ 'p.status': 'pending', 'a.status': 'pending', 'a.query_count': 0 })
          .count<{ n: number }[]>({ n: '*' });
        return Number(row[0].n) === 0;
      }, 15_000).catch(() => step('active queries still due; confirming anyway'));
      await new Promise((r) => setTimeout(r, 500)); // queries claimed a moment ago finish
      const leftovers = await pendingIds();
      step(`round ${round + 1}: confirming ${leftovers.length} leftovers`);
      await pool(leftovers, CONCURRENCY, async (id) => {
        await api('POST', `/v1/test_helpers/payments/${id}/simulate`, { channel: 'alipay_pc' });
      });
    }
    step('leftovers confirmed');

    const succeeded: string[] = await db('payments').where({ app_id: app.app_id, status: 'succeeded' }).pluck('id');
    expect(succeeded).toHaveLength(PAYMENTS);
    const events = await db('events').where({ app_id: app.app_id, type: 'payment.succeeded' }).select('id', 'data');
    const eventOf = new Map<string, string[]>();
    for (const e of events) {
      const paymentId = JSON.parse(e.data).object.id;
      eventOf.set(paymentId, [...(eventOf.get(paymentId) ?? []), e.id]);
    }
    // Drained: nothing pending in the outbox (claims of the killed process run out after the lease).
    await waitFor('the outbox to drain', async () => {
      const n = await db('webhook_deliveries').where({ status: 'pending' }).count<{ n: number }[]>({ n: '*' });
      return Number(n[0].n) === 0 && events.every((e) => receiver.deliveries.some((d) => d.id === e.id && d.verified));
    }, 60_000);
    step('drained');

    // Every succeeded payment has exactly one payment.succeeded event, received verified.
    const byId = new Map<string, typeof receiver.deliveries>();
    for (const d of receiver.deliveries) byId.set(d.id, [...(byId.get(d.id) ?? []), d]);
    for (const paymentId of succeeded) {
      const eventIds = eventOf.get(paymentId) ?? [];
      expect(eventIds, paymentId).toHaveLength(1);
      expect(byId.get(eventIds[0])?.some((d) => d.verified), paymentId).toBe(true);
    }
    // Redeliveries carry the same webhook-id and the very same body, and nothing else arrived.
    expect(receiver.deliveries.every((d) => d.verified)).toBe(true);
    const repeated = [...byId.values()].filter((list) => list.length > 1);
    for (const list of repeated) {
      expect(new Set(list.map((d) => d.body)).size).toBe(1);
      expect(JSON.parse(list[0].body).id).toBe(list[0].id);
    }
    expect([...byId.keys()].every((id) => events.some((e) => e.id === id))).toBe(true);
    // The kill really landed mid-way: confirmations were cut off and finished only after the restart.
    // (Whether a delivery was in flight at that instant is chance, so redeliveries are not required.)
    expect(confirmed).toBeLessThan(PAYMENTS);

    const sentBy = (g: GatewayProcess | undefined) => receiver.deliveries.filter((d) => g && d.pid === g.child.pid).length;
    if (second && receiver.deliveries.some((d) => d.pid !== undefined)) {
      // Both instances delivered: the claims really are shared, and the survivor carried on.
      expect(sentBy(first)).toBeGreaterThan(0);
      expect(sentBy(second)).toBeGreaterThan(0);
    }
    console.log(
      `${kind}: ${PAYMENTS} payments, ${confirmed} confirmed before leftovers, ${failed} simulate calls lost to the kill, ` +
        `${receiver.deliveries.length} deliveries for ${byId.size} events, ${repeated.length} redelivered after the crash; ` +
        `sent by A ${sentBy(first)}, B ${sentBy(second)}, A2 ${sentBy(restarted)}; drained ${((Date.now() - afterKill) / 1000).toFixed(1)} s after the kill, ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s in all`,
    );
  } finally {
    for (const g of gateways) await g.kill('SIGTERM');
    await receiver.close();
    await balancer.close();
    if (schema) await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('webhooks survive a gateway crash', () => {
  it.skipIf(pgUrl)('SQLite: the gateway is killed with SIGKILL mid-way and restarted; no event is lost', () => crashRun('sqlite'), 120_000);
  it.skipIf(!pgUrl)('PostgreSQL: two gateways, one killed with SIGKILL and restarted; no event is lost', () => crashRun('postgres'), 120_000);
});
