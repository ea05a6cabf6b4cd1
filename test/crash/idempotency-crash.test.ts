import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { describe, expect, it, onTestFailed } from 'vitest';
import type { Knex } from 'knex';
import { createDb } from '../../server/db.ts';
import { createLogger } from '../../server/log.ts';
import { setChannelConfig } from '../../server/apps/channel-configs.ts';
import { alipaySandbox } from '../../server/sandbox/alipay/index.ts';
import { startSlowProxy } from '../support/slow-channel.ts';
import { createAppWithCli, spawnGateway, startBalancer, waitFor, type GatewayProcess } from './harness.ts';

// A refund request is killed with its gateway (SIGKILL) while the channel holds it; the channel
// still carries it out. Its Idempotency-Key stays 'processing' for good: neither a day later
// (when answered keys expire) nor after the restarted gateway's sweep of old keys may a retry
// with that key refund again. The refund itself is finished by the worker, under its own number.

const pgUrl = process.env.TEST_DATABASE_URL?.startsWith('postgres') ? process.env.TEST_DATABASE_URL : undefined;
const HOUR = 3600 * 1000;

async function crashedRefund(kind: 'sqlite' | 'postgres'): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-idem-crash-'));
  const schema = kind === 'postgres' ? `idem_${crypto.randomBytes(5).toString('hex')}` : undefined;
  const databaseUrl = kind === 'postgres' ? pgUrl! : `sqlite:${path.join(dir, 'crash.db')}`;
  const masterKey = crypto.randomBytes(32);
  const balancer = await startBalancer();
  const proxy = await startSlowProxy(balancer.url);
  const db: Knex = createDb(databaseUrl, { schema, pool: { max: 2 } });
  const gateways: GatewayProcess[] = [];
  onTestFailed(() => console.log(gateways.flatMap((g) => g.log).slice(-60).join('\n')));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PUBLIC_URL: balancer.url,
    DATABASE_URL: databaseUrl,
    CHECKSTAND_DATA_DIR: dir,
    CHECKSTAND_MASTER_KEY: masterKey.toString('base64'),
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
    // The app's Alipay (the simulator) is reached through the proxy, which can hold requests.
    const draft = await alipaySandbox.draftMerchant({ db, publicUrl: balancer.url, masterKey, logger: createLogger('error') });
    const raw = await draft.register(db);
    raw.gateway = `${proxy.url}/sandbox/alipay/gateway.do`;
    await setChannelConfig({ db, config: { masterKeyBytes: masterKey } } as never, app.app_id, 'alipay', false, raw);
    const api = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
      try {
        const res = await fetch(balancer.url + p, {
          method,
          headers: { authorization: `Bearer ${app.secret_key}`, 'content-type': 'application/json', ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(20_000),
        });
        return { status: res.status, body: await res.json().catch(() => null) };
      } catch {
        return { status: 0, body: null }; // the connection died with its gateway
      }
    };

    const first = await up('A');
    const p = (await api('POST', '/v1/payments', { amount: 1000, subject: 'Crash refund', out_trade_no: 'crash_refund_1' })).body;
    expect((await api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' })).body.status).toBe('succeeded');

    const key = 'refund-crash-1';
    const refundPath = `/v1/payments/${p.id}/refunds`;
    proxy.hold();
    const before = proxy.requests;
    const abandoned = api('POST', refundPath, { amount: 100 }, { 'idempotency-key': key });
    await waitFor('the refund to reach the channel', async () => proxy.requests > before, 10_000);
    await first.kill('SIGKILL');
    expect((await abandoned).status).toBe(0);
    const [refund] = await db('refunds').where({ payment_id: p.id });
    expect(refund).toMatchObject({ status: 'pending', amount: 100 });

    // Two days pass (answered keys expire after one, the sweep removes them after two) before the
    // gateway is back; its worker is due to resubmit the refund at once.
    await db('idempotency_keys').where({ key }).update({ created_ms: Date.now() - 49 * HOUR });
    await db('refunds').where({ id: refund.id }).update({ next_query_at_ms: Date.now() - 1 });
    await up('B');
    // B's worker claimed the refund (its pass sweeps old keys right after): the channel now has
    // the dead request's refund and the resubmission, under one refund number.
    await waitFor('the worker to resubmit the refund', async () => Number((await db('refunds').where({ id: refund.id }).first()).submit_count) >= 2, 15_000);
    proxy.release();
    await waitFor('the refund to succeed', async () => (await db('refunds').where({ id: refund.id }).first()).status === 'succeeded', 15_000);
    await new Promise((r) => setTimeout(r, 1500)); // the rest of that pass (the sweep) and another

    const retry = await api('POST', refundPath, { amount: 100 }, { 'idempotency-key': key });
    expect(retry.status).toBe(409);
    expect(retry.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_in_use' });
    expect(retry.body.error.message).toMatch(/interrupted/);
    expect(await db('refunds').where({ payment_id: p.id })).toHaveLength(1);
    expect(Number((await db('payments').where({ id: p.id }).first()).amount_refunded)).toBe(100);
    const attempt = await db('payment_attempts').where({ payment_id: p.id, status: 'succeeded' }).first();
    const atChannel = await db('sandbox_refunds').where({ provider: 'alipay', merchant_id: raw.app_id, out_trade_no: attempt.channel_order_no });
    expect(atChannel.map((r) => [r.out_refund_no, Number(r.amount)])).toEqual([[refund.id, 100]]);
  } finally {
    proxy.release();
    for (const g of gateways) await g.kill('SIGTERM');
    await proxy.close();
    await balancer.close();
    if (schema) await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('an Idempotency-Key whose request died in a crash', () => {
  it.skipIf(pgUrl)('SQLite: a retry never refunds again, a day or two later either', () => crashedRefund('sqlite'), 120_000);
  it.skipIf(!pgUrl)('PostgreSQL: a retry never refunds again, a day or two later either', () => crashedRefund('postgres'), 120_000);
});
