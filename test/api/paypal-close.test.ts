// PayPal has no void for intent-CAPTURE orders: a closed payment's order stays approvable at
// PayPal. An approval that still comes is captured when its webhook arrives, and the core
// refunds that late success automatically.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startPaymentWorker, type PaymentWorker } from '../../server/payments/worker.ts';

let g: TestGateway;
let worker: PaymentWorker;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  worker = startPaymentWorker(g.deps, { background: false });
});
afterAll(async () => {
  await worker?.stop();
  await g?.close();
});

describe('PayPal: close, then a late approval', () => {
  it('the payment stays closed and the late capture is refunded automatically', async () => {
    const p = (await g.api('POST', '/v1/payments', { amount: 4100, currency: 'USD', channel: 'paypal', subject: 'Late', out_trade_no: `ppl_${Date.now()}` })).body;
    const closed = await g.api('POST', `/v1/payments/${p.id}/close`);
    expect(closed.body.status).toBe('closed');
    const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
    // The payer, still on PayPal's page, approves anyway.
    const res = await fetch(`${g.url}/sandbox/paypal/payer/action`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: attempt.channel_ref, action: 'pay', notify: 'normal' }) });
    expect(res.status).toBe(200);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('closed');
    const capture = await g.deps.db('paypal_sandbox_captures').where({ order_id: attempt.channel_ref }).first();
    expect(capture.status).toBe('COMPLETED');
    let refund: any;
    for (let i = 0; i < 20; i++) {
      refund = await g.deps.db('refunds').where({ payment_id: p.id }).first();
      if (refund?.status === 'succeeded') break;
      if (refund) await g.deps.db('refunds').where({ id: refund.id, status: 'pending' }).update({ next_query_at_ms: Date.now() - 1 });
      await worker.runOnce();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(refund).toMatchObject({ status: 'succeeded', amount: 4100 });
    const after = await g.deps.db('paypal_sandbox_captures').where({ id: capture.id }).first();
    expect(after).toMatchObject({ status: 'REFUNDED' });
  });
});
