import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { PRODUCTS, startShop, type Shop } from '../../examples/shop/server.ts';
import type { Order } from '../../examples/shop/pages.ts';

// The demo shop's webhook handling, without a gateway: it is given its secret, so it registers nothing.
describe('demo shop webhooks', () => {
  const secret = `whsec_${crypto.randomBytes(24).toString('base64')}`;
  let shop: Shop;

  beforeAll(async () => {
    shop = await startShop({ gatewayUrl: 'http://127.0.0.1:9', secretKey: 'sk_test_unused', port: 0, webhookSecret: secret });
  });
  afterAll(() => shop?.close());

  function addOrder(): Order {
    const id = `ord_${crypto.randomBytes(4).toString('hex')}`;
    const order: Order = { id, product: PRODUCTS[0], amount: PRODUCTS[0].amount, currency: 'CNY', status: 'pending', paymentId: `pay_${id}`, checkoutUrl: 'http://127.0.0.1:9/pay/x', created: Date.now() };
    shop.orders.set(id, order);
    return order;
  }

  function event(order: Order, type: string, over: Record<string, unknown> = {}) {
    return {
      id: `evt_${crypto.randomBytes(6).toString('hex')}`,
      object: 'event',
      type,
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      data: { object: { id: order.paymentId, object: 'payment', status: 'succeeded', amount: order.amount, currency: 'CNY', out_trade_no: order.id, metadata: { order_id: order.id }, ...over } },
    };
  }

  async function deliver(body: object, signWith = secret) {
    const payload = JSON.stringify(body);
    const id = (body as { id: string }).id;
    const now = new Date();
    const signature = new Webhook(signWith).sign(id, now, payload);
    return fetch(`${shop.url}/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': signature },
      body: payload,
    });
  }

  const statusOf = async (order: Order) => (await (await fetch(`${shop.url}/orders/${order.id}/status`)).json()).status;

  it('marks an order paid from a verified payment.succeeded', async () => {
    const order = addOrder();
    expect(await statusOf(order)).toBe('pending');
    expect((await deliver(event(order, 'payment.succeeded'))).status).toBe(204);
    expect(await statusOf(order)).toBe('paid');
  });

  it('refuses a forged or tampered webhook and leaves the order pending', async () => {
    const order = addOrder();
    const forged = await deliver(event(order, 'payment.succeeded'), `whsec_${crypto.randomBytes(24).toString('base64')}`);
    expect(forged.status).toBe(400);
    const unsigned = await fetch(`${shop.url}/webhooks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event(order, 'payment.succeeded')) });
    expect(unsigned.status).toBe(400);
    expect(await statusOf(order)).toBe('pending');
  });

  it('ignores a verified event whose payment is not the order\'s own or whose amount differs', async () => {
    const order = addOrder();
    expect((await deliver(event(order, 'payment.succeeded', { amount: 1 }))).status).toBe(204);
    expect((await deliver(event(order, 'payment.succeeded', { id: 'pay_other' }))).status).toBe(204);
    expect((await deliver(event(order, 'payment.attempt_failed'))).status).toBe(204);
    expect(await statusOf(order)).toBe('pending');
    expect((await deliver(event(order, 'payment.closed', { status: 'closed' }))).status).toBe(204);
    expect(await statusOf(order)).toBe('closed');
  });

  it('refuses a cross-site order form post', async () => {
    const res = await fetch(`${shop.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      body: 'product=mug',
      redirect: 'manual',
    });
    expect(res.status).toBe(403);
  });

  it('serves its pages under a strict CSP', async () => {
    const res = await fetch(shop.url);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self' http://127.0.0.1:9");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await res.text()).toContain('data-buy="mug"');
  });
});
