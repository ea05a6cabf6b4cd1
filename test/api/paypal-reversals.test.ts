// PayPal's reversals: an approval taken back before capture closes the attempt (the payer may pay
// another way); a chargeback of a paid capture is acknowledged and logged, changing nothing here.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { findMerchantByClientId, findOrderByInvoice } from '../../server/sandbox/paypal/store.ts';
import { buildEvent, transmissionHeaders } from '../../server/sandbox/paypal/webhooks.ts';
import { base, orderJson } from '../../server/sandbox/paypal/wire.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import type { PaypalCredentials } from '../../server/channels/paypal/index.ts';

let g: TestGateway;
let seq = 0;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(async () => {
  await g?.close();
});

const eventsOf = async (id: string) => (await g.deps.db('events').where('data', 'like', `%${id}%`).orderBy('created')).map((e) => e.type);

async function signedEvent(paymentId: string, type: string, resource: (order: Record<string, any>) => Record<string, unknown>) {
  const attempt = await g.deps.db('payment_attempts').where({ payment_id: paymentId }).first();
  const cred = (await getCredentials(g.deps, g.app.app_id, 'paypal', false)) as PaypalCredentials;
  const merchant = (await findMerchantByClientId(g.deps.db, g.deps.config.masterKeyBytes, cred.clientId))!;
  const order = (await findOrderByInvoice(g.deps.db, merchant.merchantId, attempt.channel_order_no))!;
  const b = base(g.deps.config.publicUrl);
  const body = buildEvent(b, `WH-${crypto.randomUUID()}`, type, type.startsWith('CHECKOUT') ? 'checkout-order' : 'capture', resource(orderJson(b, order) as Record<string, any>)).body;
  return fetch(`${g.url}/notify/paypal/${g.app.app_id}`, { method: 'POST', headers: { 'content-type': 'application/json', ...transmissionHeaders(b, merchant, body) }, body });
}

const create = async () =>
  (await g.api('POST', '/v1/payments', { amount: 2500, currency: 'USD', channel: 'paypal', subject: 'Reversal', out_trade_no: `ppr_${Date.now()}_${++seq}` })).body;

describe('PayPal reversals', () => {
  it('CHECKOUT.PAYMENT-APPROVAL.REVERSED closes the attempt; the payment stays payable another way', async () => {
    const p = await create();
    const res = await signedEvent(p.id, 'CHECKOUT.PAYMENT-APPROVAL.REVERSED', (o) => o);
    expect(res.status).toBe(200);
    const after = (await g.api('GET', `/v1/payments/${p.id}`)).body;
    expect(after).toMatchObject({ status: 'pending', next_action: null, last_attempt_error: { channel: 'paypal' } });
    expect((await g.deps.db('payment_attempts').where({ payment_id: p.id }).first()).status).toBe('failed');
    expect(await eventsOf(p.id)).toEqual(['payment.attempt_failed']);
    // The same event again changes nothing.
    expect((await signedEvent(p.id, 'CHECKOUT.PAYMENT-APPROVAL.REVERSED', (o) => o)).status).toBe(200);
    expect(await eventsOf(p.id)).toEqual(['payment.attempt_failed']);
  });

  it('PAYMENT.CAPTURE.REVERSED of a paid capture is acknowledged (PayPal would resend it for days) and changes nothing', async () => {
    const p = await create();
    expect((await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { outcome: 'pay' })).body.status).toBe('succeeded');
    const paid = (await g.api('GET', `/v1/payments/${p.id}`)).body;
    const res = await signedEvent(p.id, 'PAYMENT.CAPTURE.REVERSED', (o) => ({
      id: crypto.randomBytes(8).toString('hex').toUpperCase(),
      status: 'COMPLETED',
      amount: { currency_code: 'USD', value: '-25.00' },
      invoice_id: o.purchase_units[0].invoice_id,
    }));
    expect(res.status).toBe(200);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body).toEqual(paid);
    expect(await eventsOf(p.id)).toEqual(['payment.succeeded']);
  });

  it('an unsigned reversal is refused with the retry answer', async () => {
    const p = await create();
    const res = await fetch(`${g.url}/notify/paypal/${g.app.app_id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'WH-1', event_type: 'CHECKOUT.PAYMENT-APPROVAL.REVERSED', resource: {} }) });
    expect(res.status).toBe(400);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('pending');
  });
});
