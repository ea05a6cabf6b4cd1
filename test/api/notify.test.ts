import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { findMerchant, findOrder } from '../../server/sandbox/alipay/store.ts';
import { tradeNotifyParams } from '../../server/sandbox/alipay/notify.ts';
import { signNotify } from '../../server/channels/alipay/sign.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import type { AlipayCredentials } from '../../server/channels/alipay/index.ts';

let g: TestGateway;
const logs: string[] = [];
let seq = 0;

beforeAll(async () => {
  g = await startTestGateway({ workers: false, logLines: logs });
});
afterAll(async () => {
  await g?.close();
});

/** A payment paid at the simulator whose notify was dropped, and the genuine notify Alipay would send. */
async function paidWithDroppedNotify(amount = 500) {
  const p = (await g.api('POST', '/v1/payments', { amount, subject: 'Notify test', out_trade_no: `n_${Date.now()}_${++seq}`, channel: 'alipay_pc' })).body;
  const sim = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { outcome: 'pay', notify: 'drop' });
  expect(sim.status).toBe(200);
  expect(sim.body.status).toBe('pending');
  const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
  const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
  const merchant = (await findMerchant(g.deps.db, g.deps.config.masterKeyBytes, cred.appId))!;
  const order = (await findOrder(g.deps.db, cred.appId, { outTradeNo: attempt.channel_order_no }))!;
  expect(order.status).toBe('TRADE_SUCCESS');
  const params = tradeNotifyParams(merchant, order, crypto.randomBytes(16).toString('hex'));
  return { payment: p, params, merchant, order, cred };
}

const post = (params: Record<string, string>, appId = g.app.app_id, contentType = 'application/x-www-form-urlencoded') =>
  fetch(`${g.url}/notify/alipay/${appId}`, { method: 'POST', headers: { 'content-type': contentType }, body: new URLSearchParams(params).toString() });

async function state(paymentId: string) {
  const p = (await g.api('GET', `/v1/payments/${paymentId}`)).body;
  const events = await g.deps.db('events').where('data', 'like', `%${paymentId}%`);
  return { status: p.status, events: events.map((e) => e.type) };
}

describe('Alipay notify at /notify/alipay/:app', () => {
  it('accepts a genuine notify once; a replay is acknowledged again and changes nothing', async () => {
    const { payment, params } = await paidWithDroppedNotify();
    const first = await post(params);
    expect(first.status).toBe(200);
    expect(await first.text()).toBe('success');
    expect(await state(payment.id)).toEqual({ status: 'succeeded', events: ['payment.succeeded'] });
    const replay = await post(params);
    expect(await replay.text()).toBe('success');
    expect(await state(payment.id)).toEqual({ status: 'succeeded', events: ['payment.succeeded'] });
  });

  it('writes one event when the same notify arrives many times at once', async () => {
    const { payment, params } = await paidWithDroppedNotify();
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(params).then((r) => r.text())));
    expect(answers.every((a) => a === 'success')).toBe(true);
    expect(await state(payment.id)).toEqual({ status: 'succeeded', events: ['payment.succeeded'] });
  });

  const refusals: Array<[string, (x: Awaited<ReturnType<typeof paidWithDroppedNotify>>) => Promise<Response>, RegExp]> = [
    ['a tampered amount (forged)', async ({ params }) => post({ ...params, total_amount: '0.01' }), /signature/i],
    ['a notify signed by another key', async ({ params }) => {
      const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const { sign: _s, ...rest } = params;
      return post({ ...rest, sign: signNotify(rest, other) });
    }, /signature/i],
    ['a correctly signed notify whose amount differs from the payment', async ({ merchant, order }) =>
      post(tradeNotifyParams(merchant, { ...order, amount: order.amount + 1 }, 'x1')), /amount/i],
    ['a notify for another app', async ({ params }) => {
      const { createApp } = await import('../../server/apps/service.ts');
      const other = await createApp(g.deps.db, { name: 'Other' });
      await getCredentials(g.deps, other.app_id, 'alipay', false);
      return post(params, other.app_id);
    }, /signature|no such order/i],
    ['a notify with another Alipay app_id signed by its key', async ({ merchant, order }) =>
      post(tradeNotifyParams({ ...merchant, appId: '2021000999999999' }, order, 'x2')), /app id/i],
    ['a JSON body', async ({ params }) => post(params, g.app.app_id, 'application/json'), /./],
    ['a notify without sign', async ({ params }) => {
      const { sign: _s, ...rest } = params;
      return post(rest);
    }, /./],
  ];
  for (const [name, send, reason] of refusals) {
    it(`refuses ${name}: not "success", logged, nothing changes`, async () => {
      const x = await paidWithDroppedNotify();
      const before = logs.length;
      const res = await send(x);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(await res.text()).not.toBe('success');
      expect(await state(x.payment.id)).toEqual({ status: 'pending', events: [] });
      const logged = logs.slice(before).map((l) => JSON.parse(l)).filter((l) => l.msg === 'channel notify refused');
      expect(logged.length).toBeGreaterThan(0);
      expect(logged.map((l) => l.reason).join(' ')).toMatch(reason);
      // The genuine notify still works afterwards.
      expect(await (await post(x.params)).text()).toBe('success');
    });
  }

  it('refuses a 1 MB body in the channel\'s terms', async () => {
    const res = await fetch(`${g.url}/notify/alipay/${g.app.app_id}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a='.padEnd(1024 * 1024, 'x') });
    expect(res.status).toBe(413);
    expect(await res.text()).not.toBe('success');
  });

  it('answers 404 for an unknown channel', async () => {
    const res = await fetch(`${g.url}/notify/bitcoin/${g.app.app_id}`, { method: 'POST', body: 'x=1' });
    expect(res.status).toBe(404);
  });

  it('never logs keys', () => {
    const all = logs.join('\n');
    expect(all).not.toMatch(/PRIVATE KEY/);
    expect(all).not.toContain(g.app.secret_key);
  });
});

describe('POST /v1/test_helpers/payments/:id/simulate', () => {
  const create = async (extra: Record<string, unknown> = {}) =>
    (await g.api('POST', '/v1/payments', { amount: 300, subject: 'Sim', out_trade_no: `s_${Date.now()}_${++seq}`, ...extra })).body;

  // Every code the README lists, with nothing but {channel, outcome, notify}: the helper stands in
  // for the customer, so it brings what a customer brings (WeChat H5's IP, JSAPI's openid).
  for (const channel of ['alipay_pc', 'alipay_wap', 'alipay_qr', 'wechat_native', 'wechat_h5', 'wechat_jsapi']) {
    it(`pays ${channel} through the simulator and the real notify path`, async () => {
      const p = await create();
      const res = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel, outcome: 'pay', notify: 'normal' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: p.id, status: 'succeeded', channel });
      expect(res.body.channel_trade_no).toMatch(/^\d+$/);
      expect((await state(p.id)).events).toEqual(['payment.succeeded']);
    });
  }

  it('a payment created with client_ip keeps it for WeChat H5', async () => {
    const p = await create({ client_ip: '203.0.113.9' });
    const res = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'wechat_h5', outcome: 'pay', notify: 'normal' });
    expect(res.body.status).toBe('succeeded');
    const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
    const order = await g.deps.db('sandbox_orders').where({ provider: 'wechatpay', out_trade_no: attempt.channel_order_no }).first();
    expect(JSON.parse(order.data).payerClientIp).toBe('203.0.113.9');
  });

  it('a duplicated notify still makes one event', async () => {
    const p = await create();
    const res = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify: 'duplicate' });
    expect(res.body.status).toBe('succeeded');
    expect((await state(p.id)).events).toEqual(['payment.succeeded']);
  });

  it('a failed attempt leaves the payment pending and tells the merchant', async () => {
    const p = await create();
    const res = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', outcome: 'fail' });
    expect(res.body.status).toBe('pending');
    expect((await state(p.id)).events).toEqual(['payment.attempt_failed']);
    const retry = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_qr', outcome: 'pay' });
    expect(retry.body).toMatchObject({ status: 'succeeded', channel: 'alipay_qr' });
    const attempts = await g.deps.db('payment_attempts').where({ payment_id: p.id }).orderBy('created');
    expect(new Set(attempts.map((a) => a.channel_order_no)).size).toBe(2);
  });

  it('refuses bad input naming the parameter and a paid payment', async () => {
    const p = await create();
    expect((await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, {})).body.error.param).toBe('channel');
    expect((await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', outcome: 'maybe' })).body.error.param).toBe('outcome');
    expect((await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify: 'delay:x' })).body.error.param).toBe('notify');
    expect((await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'paypal' })).body.error.param).toBe('channel');
    await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' });
    const again = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' });
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe('payment_unexpected_state');
  });

  it('is 404 for a live key', async () => {
    const p = await create();
    const res = await fetch(`${g.url}/v1/test_helpers/payments/${p.id}/simulate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${g.app.live_secret_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'alipay_pc' }),
    });
    expect(res.status).toBe(404);
  });
});
