import { describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';
import { setChannelConfig } from '../../server/apps/channel-configs.ts';
import { alipaySandbox } from '../../server/sandbox/alipay/index.ts';
import { startSlowProxy } from '../support/slow-channel.ts';
import { pgUrl, waitFor, withCrashWorld, type DbKind } from './harness.ts';

// A refund request is killed with its gateway (SIGKILL) while the channel holds it; the channel
// still carries it out. Its Idempotency-Key stays 'processing' for good: neither a day later
// (when answered keys expire) nor after the restarted gateway's sweep of old keys may a retry
// with that key refund again. The refund itself is finished by the worker, under its own number.

const HOUR = 3600 * 1000;

function crashedRefund(kind: DbKind): Promise<void> {
  return withCrashWorld({ kind, name: 'idem' }, async ({ db, masterKey, balancer, app, up, api, defer }) => {
    const proxy = await startSlowProxy(balancer.url);
    defer(() => proxy.close());
    try {
      // The app's Alipay (the simulator) is reached through the proxy, which can hold requests.
      const draft = await alipaySandbox.draftMerchant({ db, publicUrl: balancer.url, masterKey, logger: createLogger('error') });
      const raw = await draft.register(db);
      raw.gateway = `${proxy.url}/sandbox/alipay/gateway.do`;
      await setChannelConfig({ db, config: { masterKeyBytes: masterKey } } as never, app.app_id, 'alipay', false, raw);

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
      proxy.release(); // before the gateways stop: one may be waiting on it
    }
  });
}

describe('an Idempotency-Key whose request died in a crash', () => {
  it.skipIf(pgUrl)('SQLite: a retry never refunds again, a day or two later either', () => crashedRefund('sqlite'), 120_000);
  it.skipIf(!pgUrl)('PostgreSQL: a retry never refunds again, a day or two later either', () => crashedRefund('postgres'), 120_000);
});
