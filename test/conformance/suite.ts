import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAppCode, type ChannelCode, type Provider } from '../../server/channels/types.ts';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startPaymentWorker, type PaymentWorker } from '../../server/payments/worker.ts';

/** An HTTP message as a channel would post it to /notify. */
export interface NotifyMessage {
  contentType: string;
  headers?: Record<string, string>;
  body: string;
}

/** A paid order at the simulator whose notify was held back, for a driver to build notifies about. */
export interface PaidOrder {
  paymentId: string;
  orderNo: string;
  amount: number;
}

/**
 * What the suite needs to know of a channel beyond the Channel interface: how its simulator's
 * genuine notify looks, and how to build each kind of bad one. Each builder gets the gateway and
 * the paid order, and returns the message a channel (or an attacker) would post.
 */
export interface ConformanceDriver {
  provider: Provider;
  /** The channel codes that go through the whole payment story. */
  codes: ChannelCode[];
  /** The currency of the suite's payments (default the API's, CNY): a channel that does not take CNY names one it takes. */
  currency?: string;
  genuine(g: TestGateway, order: PaidOrder): Promise<NotifyMessage>;
  /** Signed or encrypted with a key that is not the channel's. */
  forged(g: TestGateway, order: PaidOrder): Promise<NotifyMessage>;
  /** Genuinely signed, for an amount other than the payment's. */
  amountMismatch(g: TestGateway, order: PaidOrder): Promise<NotifyMessage>;
  /** Genuinely signed, naming a merchant (Alipay seller_id, WeChat mchid, UnionPay merId, PayPal payee) other than the app's; omit when the channel's notify names none. */
  merchantMismatch?(g: TestGateway, order: PaidOrder): Promise<NotifyMessage>;
  /** Genuinely signed, in a currency other than the payment's; omit when the channel's notify carries none. */
  currencyMismatch?(g: TestGateway, order: PaidOrder): Promise<NotifyMessage>;
  /** Malformed messages by name: missing fields, wrong content type, bad base64, wrong AES key… */
  malformed(g: TestGateway, order: PaidOrder): Promise<Record<string, NotifyMessage>>;
  /** The answer that makes the channel retry. */
  isRetryAnswer(status: number, body: string): boolean;
}

/** The shared conformance suite: every adapter, through the whole gateway, over real HTTP. */
export function conformanceSuite(driver: ConformanceDriver): void {
  describe(`conformance: ${driver.provider}`, () => {
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

    const create = async (amount = 1200) =>
      (await g.api('POST', '/v1/payments', { amount, ...(driver.currency ? { currency: driver.currency } : {}), subject: `Conformance ${driver.provider}`, out_trade_no: `cf_${driver.provider}_${Date.now()}_${++seq}`, client_ip: '203.0.113.7' })).body;
    const payment = async (id: string) => (await g.api('GET', `/v1/payments/${id}`)).body;
    const events = async (id: string) => (await g.deps.db('events').where('data', 'like', `%${id}%`).orderBy('created')).map((e) => e.type);
    const post = (msg: NotifyMessage, appId = g.app.app_id) =>
      fetch(`${g.url}/notify/${driver.provider}/${appId}`, { method: 'POST', headers: { 'content-type': msg.contentType, ...msg.headers }, body: msg.body });

    async function paidWithoutNotify(channel: ChannelCode): Promise<PaidOrder> {
      const p = await create();
      const sim = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel, outcome: 'pay', notify: 'drop' });
      expect(sim.status).toBe(200);
      expect(sim.body.status).toBe('pending');
      const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
      return { paymentId: p.id, orderNo: attempt.channel_order_no, amount: p.amount };
    }

    for (const channel of driver.codes) {
      it(`${channel}: create, pay through the simulator, notify, query, refund, refund notify`, async () => {
        const p = await create(1500);
        const sim = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel, notify: 'normal' });
        expect(sim.body).toMatchObject({ status: 'succeeded', channel });
        expect(await events(p.id)).toEqual(['payment.succeeded']);
        const r1 = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 500 });
        const r2 = await g.api('POST', `/v1/payments/${p.id}/refunds`, {});
        // A refund the channel has not confirmed yet is pushed by the worker (and its notify).
        for (let i = 0; i < 20; i++) {
          const [a, b] = await Promise.all([r1, r2].map(async (r) => (await g.api('GET', `/v1/refunds/${r.body.id}`)).body.status));
          if (a === 'succeeded' && b === 'succeeded') break;
          await g.deps.db('refunds').where({ payment_id: p.id, status: 'pending' }).update({ next_query_at_ms: Date.now() - 1 });
          await worker.runOnce();
          await new Promise((res) => setTimeout(res, 100));
        }
        expect((await g.api('GET', `/v1/refunds/${r1.body.id}`)).body.status).toBe('succeeded');
        expect((await g.api('GET', `/v1/refunds/${r2.body.id}`)).body).toMatchObject({ status: 'succeeded', amount: 1000 });
        expect((await payment(p.id)).amount_refunded).toBe(1500);
        expect(await events(r1.body.id)).toEqual(['refund.succeeded']);
      });
    }

    // Each code's orders are notified and queried under the ids they were placed with (WeChat's
    // in-app orders under the mobile app's AppID): both paths run for every code.
    for (const channel of driver.codes) {
      it(`${channel}: a genuine notify is accepted once; duplicates are acknowledged and change nothing`, async () => {
        const order = await paidWithoutNotify(channel);
        const msg = await driver.genuine(g, order);
        for (let i = 0; i < 3; i++) {
          const res = await post(msg);
          expect(res.status).toBeLessThan(300);
          expect(driver.isRetryAnswer(res.status, await res.text())).toBe(false);
        }
        expect((await payment(order.paymentId)).status).toBe('succeeded');
        expect(await events(order.paymentId)).toEqual(['payment.succeeded']);
      });

      it(`${channel}: a lost notify still ends in succeeded through the active query`, async () => {
        const order = await paidWithoutNotify(channel);
        await g.deps.db('payment_attempts').where({ channel_order_no: order.orderNo }).update({ next_query_at_ms: Date.now() - 1 });
        await worker.runOnce();
        expect((await payment(order.paymentId)).status).toBe('succeeded');
      });
    }

    // The first code stands for the browser ones; in-app codes place their orders differently
    // (and WeChat's under another AppID), so close and the refusals run for them too.
    const representative = [...new Set([driver.codes[0]!, ...driver.codes.filter(isAppCode)])];
    for (const channel of representative) {
      it(`${channel}: close: an unpaid order is closed at the channel; a paid one ends succeeded`, async () => {
        const p = await create();
        await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel, outcome: 'cancel' });
        const closed = await g.api('POST', `/v1/payments/${p.id}/close`);
        expect(closed.body.status).toBe('closed');
        expect(await events(p.id)).toEqual(['payment.closed']);
        const order = await paidWithoutNotify(channel);
        expect((await g.api('POST', `/v1/payments/${order.paymentId}/close`)).status).toBe(400);
        expect((await payment(order.paymentId)).status).toBe('succeeded');
      });

      const refusals: Array<[string, (order: PaidOrder) => Promise<{ msg: NotifyMessage; appId?: string }>]> = [
        ['a forged notify', async (o) => ({ msg: await driver.forged(g, o) })],
        ['an amount mismatch', async (o) => ({ msg: await driver.amountMismatch(g, o) })],
        ['a notify for another app', async (o) => {
          const { createApp } = await import('../../server/apps/service.ts');
          const other = await createApp(g.deps.db, { name: 'Other app' });
          const { getCredentials } = await import('../../server/apps/channel-configs.ts');
          await getCredentials(g.deps, other.app_id, driver.provider, false);
          return { msg: await driver.genuine(g, o), appId: other.app_id };
        }],
      ];
      // The optional builders, for channels whose notify names a merchant or a currency.
      const { merchantMismatch, currencyMismatch } = driver;
      if (merchantMismatch) refusals.push(['a notify naming another merchant', async (o) => ({ msg: await merchantMismatch(g, o) })]);
      if (currencyMismatch) refusals.push(['a currency mismatch', async (o) => ({ msg: await currencyMismatch(g, o) })]);
      for (const [name, build] of refusals) {
        it(`${channel}: refuses ${name}: the retry answer, nothing changes`, async () => {
          const order = await paidWithoutNotify(channel);
          const { msg, appId } = await build(order);
          const res = await post(msg, appId);
          expect(driver.isRetryAnswer(res.status, await res.text())).toBe(true);
          expect((await payment(order.paymentId)).status).toBe('pending');
          expect(await events(order.paymentId)).toEqual([]);
        });
      }
    }

    const [channel] = driver.codes;

    it(`${channel}: expiry: a placed, unpaid order's payment closes when it expires, and its order can no longer be paid`, async () => {
      const p = await create();
      const confirmed = await g.api('POST', `/v1/payments/${p.id}/confirm`, { channel, client_ip: '203.0.113.7' });
      expect(confirmed.status).toBe(200);
      expect(confirmed.body.next_action).not.toBeNull();
      // The payment (and with it the channel order's own expiry, which the adapter hands the
      // channel and gets back in AttemptContext) lies in the past now.
      await g.deps.db('payments').where({ id: p.id }).update({ expires_at: Math.floor(Date.now() / 1000) - 120 });
      await worker.runOnce();
      const closed = await payment(p.id);
      expect(closed).toMatchObject({ status: 'closed', next_action: null });
      expect(await events(p.id)).toEqual(['payment.closed']);
      const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
      expect(['closed', 'closing']).toContain(attempt.status);
      // Nothing more for the customer: the helper refuses a closed payment, the cashier shows it closed.
      const sim = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel, outcome: 'pay' });
      expect(sim.status).toBe(400);
      expect((await payment(p.id)).status).toBe('closed');
    });

    it('refuses malformed notifies (missing fields, wrong content type, 1 MB body, bad base64, wrong key)', async () => {
      const order = await paidWithoutNotify(channel);
      const cases = await driver.malformed(g, order);
      cases['1 MB body'] = { contentType: 'application/x-www-form-urlencoded', body: 'x='.padEnd(1024 * 1024, 'y') };
      expect(Object.keys(cases).length).toBeGreaterThanOrEqual(5);
      for (const [name, msg] of Object.entries(cases)) {
        const res = await post(msg);
        const body = await res.text();
        expect(driver.isRetryAnswer(res.status, body), `${name}: ${res.status} ${body}`).toBe(true);
      }
      expect((await payment(order.paymentId)).status).toBe('pending');
      expect(await events(order.paymentId)).toEqual([]);
      // And the genuine one still goes through afterwards.
      const ok = await post(await driver.genuine(g, order));
      expect(driver.isRetryAnswer(ok.status, await ok.text())).toBe(false);
      expect((await payment(order.paymentId)).status).toBe('succeeded');
    });
  });
}
