// PayPal through the API in each currency it is offered in: created with channel paypal (the
// order is placed at once), paid through the simulator, partly refunded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startPaymentWorker, type PaymentWorker } from '../../server/payments/worker.ts';

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

describe('PayPal in USD, EUR, HKD and JPY through the API', () => {
  const cases: Array<[string, number, number, string]> = [
    ['USD', 1999, 500, '19.99'],
    ['EUR', 1250, 250, '12.50'],
    ['HKD', 8800, 800, '88.00'],
    ['JPY', 1500, 300, '1500'],
  ];
  for (const [currency, amount, refund, wire] of cases) {
    it(`${currency}: ${amount} minor units go to PayPal as ${wire}, are paid, and partly refunded`, async () => {
      const created = await g.api('POST', '/v1/payments', { amount, currency, channel: 'paypal', subject: `PayPal ${currency}`, out_trade_no: `ppc_${Date.now()}_${++seq}` });
      expect(created.status).toBe(200);
      expect(created.body.next_action).toMatchObject({ type: 'redirect_to_url', redirect_to_url: { url: expect.stringContaining('/sandbox/paypal/checkoutnow?token=') } });
      const attempt = await g.deps.db('payment_attempts').where({ payment_id: created.body.id }).first();
      const order = await g.deps.db('paypal_sandbox_orders').where({ id: attempt.channel_ref }).first();
      expect(JSON.parse(order.data)).toMatchObject({ currency, value: wire, invoiceId: attempt.channel_order_no });

      const paid = await g.api('POST', `/v1/test_helpers/payments/${created.body.id}/simulate`, { outcome: 'pay' });
      expect(paid.body).toMatchObject({ status: 'succeeded', channel: 'paypal', currency, amount, channel_trade_no: expect.stringMatching(/^[A-Z0-9]{17}$/) });

      const r = await g.api('POST', `/v1/payments/${created.body.id}/refunds`, { amount: refund });
      expect(r.status).toBe(200);
      for (let i = 0; i < 20 && (await g.api('GET', `/v1/refunds/${r.body.id}`)).body.status !== 'succeeded'; i++) {
        await worker.runOnce();
        await new Promise((res) => setTimeout(res, 50));
      }
      expect((await g.api('GET', `/v1/refunds/${r.body.id}`)).body).toMatchObject({ status: 'succeeded', amount: refund });
      expect((await g.api('GET', `/v1/payments/${created.body.id}`)).body.amount_refunded).toBe(refund);
      const capture = await g.deps.db('paypal_sandbox_captures').where({ id: paid.body.channel_trade_no }).first();
      expect(Number(capture.amount_refunded)).toBe(refund);
    });
  }

  it('CNY is not offered by PayPal: refused naming currency', async () => {
    const res = await g.api('POST', '/v1/payments', { amount: 100, currency: 'CNY', channel: 'paypal', subject: 'x', out_trade_no: `ppc_cny_${++seq}` });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'currency_not_supported', param: 'currency' });
  });
});
