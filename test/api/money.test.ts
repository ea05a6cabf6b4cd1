import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startPaymentWorker, type PaymentWorker } from '../../server/payments/worker.ts';
import { alipaySandbox } from '../../server/sandbox/alipay/index.ts';
import { findOrder } from '../../server/sandbox/alipay/store.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import type { AlipayCredentials } from '../../server/channels/alipay/index.ts';

let g: TestGateway;
let worker: PaymentWorker;
let seq = 0;

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  worker = startPaymentWorker(g.deps, { background: false });
});
afterAll(async () => {
  await worker?.stop();
  await g?.close();
});

async function paid(amount = 1000, channel = 'alipay_pc') {
  const p = (await g.api('POST', '/v1/payments', { amount, subject: 'Money', out_trade_no: `m_${Date.now()}_${++seq}` })).body;
  const s = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel });
  expect(s.body.status).toBe('succeeded');
  return s.body;
}

const eventsOf = async (id: string) => (await g.deps.db('events').where('data', 'like', `%${id}%`).orderBy('created')).map((e) => e.type);
const alipayOrder = async (paymentId: string) => {
  const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
  const attempts = await g.deps.db('payment_attempts').where({ payment_id: paymentId }).orderBy('created');
  return { cred, attempts, order: (no: string) => findOrder(g.deps.db, cred.appId, { outTradeNo: no }) };
};

describe('refunds', () => {
  it('refunds partly, then the rest, with events and the channel agreeing', async () => {
    const p = await paid(1000);
    const r1 = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 300, reason: 'damaged' });
    expect(r1.status).toBe(200);
    expect(r1.body).toMatchObject({ object: 'refund', payment_id: p.id, amount: 300, status: 'succeeded', reason: 'damaged', out_refund_no: r1.body.id });
    expect(r1.body.id).toMatch(/^re_/);
    const r2 = await g.api('POST', `/v1/payments/${p.id}/refunds`, {});
    expect(r2.body).toMatchObject({ amount: 700, status: 'succeeded' });
    const after = (await g.api('GET', `/v1/payments/${p.id}`)).body;
    expect(after).toMatchObject({ status: 'succeeded', amount_refunded: 1000 });
    expect((await g.api('GET', `/v1/refunds/${r1.body.id}`)).body).toEqual(r1.body);
    const { attempts, order } = await alipayOrder(p.id);
    expect((await order(attempts[0].channel_order_no))!.amountRefunded).toBe(1000);
    // Alipay also notifies each refund; the notifies change nothing more.
    expect((await eventsOf(r1.body.id))).toEqual(['refund.succeeded']);
    expect((await eventsOf(r2.body.id))).toEqual(['refund.succeeded']);
    const more = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 1 });
    expect(more.status).toBe(400);
    expect(more.body.error).toMatchObject({ code: 'payment_fully_refunded', param: 'amount' });
  });

  it('refuses bad refunds naming the parameter, changing nothing', async () => {
    const p = await paid(500);
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ amount: 0 }, 'amount'], [{ amount: 1.5 }, 'amount'], [{ amount: '5' }, 'amount'], [{ amount: 501 }, 'amount'],
      [{ reason: 'x'.repeat(300) }, 'reason'], [{ out_refund_no: 'has space' }, 'out_refund_no'], [{ extra: 1 }, 'extra'],
    ];
    for (const [body, param] of bad) {
      const res = await g.api('POST', `/v1/payments/${p.id}/refunds`, body);
      expect(res.status).toBe(400);
      expect(res.body.error.param).toBe(param);
    }
    expect(await g.deps.db('refunds').where({ payment_id: p.id })).toHaveLength(0);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(0);
    const pending = (await g.api('POST', '/v1/payments', { amount: 100, subject: 'x', out_trade_no: `pend_${++seq}` })).body;
    expect((await g.api('POST', `/v1/payments/${pending.id}/refunds`, {})).body.error.code).toBe('payment_not_succeeded');
    expect((await g.api('POST', '/v1/payments/pay_missing/refunds', {})).status).toBe(404);
    expect((await g.api('GET', '/v1/refunds/re_missing')).status).toBe(404);
    const r = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 100, out_refund_no: 'R-1' });
    expect(r.status).toBe(200);
    const dup = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 100, out_refund_no: 'R-1' });
    expect(dup.body.error).toMatchObject({ code: 'out_refund_no_taken', param: 'out_refund_no' });
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(100);
  });

  for (const channel of ['alipay_pc', 'wechat_native']) {
    it(`never refunds more than the amount under 20 concurrent refunds: ${channel} (${pgUrl ? 'PostgreSQL' : 'SQLite'})`, async () => {
      const p = await paid(1000, channel);
      const results = await Promise.all(Array.from({ length: 20 }, () => g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 100 })));
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status !== 200);
      expect(ok).toHaveLength(10);
      for (const r of refused) expect(r.body.error).toMatchObject({ param: 'amount' });
      // WeChat confirms refunds asynchronously (PROCESSING, then its notify); Alipay at once.
      for (let i = 0; i < 20 && (await g.deps.db('refunds').where({ payment_id: p.id, status: 'pending' })).length; i++) {
        await g.deps.db('refunds').where({ payment_id: p.id, status: 'pending' }).update({ next_query_at_ms: Date.now() - 1 });
        await worker.runOnce();
      }
      const statuses = (await g.deps.db('refunds').where({ payment_id: p.id })).map((r) => r.status);
      expect(statuses).toEqual(Array(10).fill('succeeded'));
      expect((await g.api('GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(1000);
    });
  }

  it('replays a refund under the same Idempotency-Key instead of refunding twice', async () => {
    const p = await paid(600);
    const a = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 200 }, { 'idempotency-key': `rf_${seq}` });
    const b = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 200 }, { 'idempotency-key': `rf_${seq}` });
    expect(b.body).toEqual(a.body);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(200);
  });
});

describe('close, expiry and active query', () => {
  const pendingWithAttempt = async (notify = 'drop', outcome = 'cancel') => {
    const p = (await g.api('POST', '/v1/payments', { amount: 250, subject: 'Close', out_trade_no: `cl_${Date.now()}_${++seq}` })).body;
    await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', outcome, notify });
    return p;
  };

  it('closes a pending payment at the channel and emits payment.closed', async () => {
    const p = await pendingWithAttempt();
    const res = await g.api('POST', `/v1/payments/${p.id}/close`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('closed');
    expect(await eventsOf(p.id)).toEqual(['payment.closed']);
    const { attempts, order } = await alipayOrder(p.id);
    expect((await order(attempts[0].channel_order_no))!.status).toBe('TRADE_CLOSED');
    const again = await g.api('POST', `/v1/payments/${p.id}/close`);
    expect(again.body.error.code).toBe('payment_unexpected_state');
  });

  it('a payment paid at the channel just before closing ends succeeded, not closed', async () => {
    const p = await pendingWithAttempt('drop', 'pay');
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('pending');
    const res = await g.api('POST', `/v1/payments/${p.id}/close`);
    expect(res.status).toBe(400);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('succeeded');
    expect(await eventsOf(p.id)).toEqual(['payment.succeeded']);
  });

  it('expires payments at expires_at through the worker', async () => {
    const p = await pendingWithAttempt();
    const bare = (await g.api('POST', '/v1/payments', { amount: 99, subject: 'No attempt', out_trade_no: `ex_${++seq}` })).body;
    await g.deps.db('payments').whereIn('id', [p.id, bare.id]).update({ expires_at: Math.floor(Date.now() / 1000) - 1 });
    await worker.runOnce();
    for (const id of [p.id, bare.id]) {
      expect((await g.api('GET', `/v1/payments/${id}`)).body.status).toBe('closed');
      expect(await eventsOf(id)).toEqual(['payment.closed']);
    }
  });

  it('a dropped notify still ends in succeeded by the active query', async () => {
    const p = await pendingWithAttempt('drop', 'pay');
    await worker.runOnce();
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('pending');
    const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
    expect(Number(attempt.next_query_at_ms)).toBeGreaterThan(Date.now() + 5000);
    await g.deps.db('payment_attempts').where({ id: attempt.id }).update({ next_query_at_ms: Date.now() - 1 });
    await worker.runOnce();
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('succeeded');
    const after = await g.deps.db('payment_attempts').where({ id: attempt.id }).first();
    expect(after.next_query_at_ms).toBeNull();
    expect(await eventsOf(p.id)).toEqual(['payment.succeeded']);
  });

  it('a customer who pays a second attempt gets that money back automatically', async () => {
    const p = (await g.api('POST', '/v1/payments', { amount: 777, subject: 'Twice', out_trade_no: `tw_${++seq}` })).body;
    await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_qr', outcome: 'cancel' });
    const won = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' });
    expect(won.body.status).toBe('succeeded');
    const { cred, attempts } = await alipayOrder(p.id);
    const loser = attempts.find((a) => a.channel === 'alipay_qr')!;
    expect(loser.status).toBe('closing');
    // The customer pays the QR too, before the worker closed it.
    await alipaySandbox.act(
      { db: g.deps.db, publicUrl: g.deps.config.publicUrl, masterKey: g.deps.config.masterKeyBytes, logger: g.deps.logger },
      { appId: cred.appId, orderNo: loser.channel_order_no, outcome: 'pay', notify: 'normal', action: JSON.parse(loser.action) },
    );
    await worker.runOnce();
    const refunds = await g.deps.db('refunds').where({ payment_id: p.id });
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ attempt_id: loser.id, status: 'succeeded', reason: 'duplicate_payment' });
    expect(Number(refunds[0].amount)).toBe(777);
    const payment = (await g.api('GET', `/v1/payments/${p.id}`)).body;
    expect(payment).toMatchObject({ status: 'succeeded', channel: 'alipay_pc', amount_refunded: 0 });
    expect(await eventsOf(refunds[0].id)).toEqual(['refund.succeeded']);
  });
});

describe('idempotency key expiry', () => {
  it('the worker deletes stored responses two days old, and keeps recent ones', async () => {
    const key = `old_${Date.now()}`;
    await g.api('POST', '/v1/payments', { amount: 100, subject: 'x', out_trade_no: `idem_old_${Date.now()}` }, { 'idempotency-key': key });
    await g.api('POST', '/v1/payments', { amount: 100, subject: 'x', out_trade_no: `idem_new_${Date.now()}` }, { 'idempotency-key': `${key}_new` });
    await g.deps.db('idempotency_keys').where({ key }).update({ created_ms: Date.now() - 49 * 3600 * 1000 });
    const fresh = startPaymentWorker(g.deps, { background: false });
    await fresh.runOnce();
    await fresh.stop();
    expect(await g.deps.db('idempotency_keys').where({ key })).toHaveLength(0);
    expect(await g.deps.db('idempotency_keys').where({ key: `${key}_new` })).toHaveLength(1);
  });
});
