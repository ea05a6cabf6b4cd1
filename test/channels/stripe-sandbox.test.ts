/**
 * The Stripe simulator over real HTTP with the real stripe SDK as its client: bracket
 * form-encoding, errors with param, idempotency replay and mismatch, the Stripe-Version check,
 * expand, refunds, the hosted page (3-D Secure, Apple Pay, decline, cancel) and signed webhooks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { clientFor, stripe } from '../../server/channels/stripe/index.ts';
import { ChannelRequestError } from '../../server/errors.ts';
import { startStripeHarness, type StripeHarness } from './stripe-harness.ts';
import { waitFor } from './sandbox-server.ts';

let h: StripeHarness;
let sdk: Stripe;
beforeAll(async () => {
  h = await startStripeHarness();
  sdk = await clientFor(h.cred);
});
afterAll(() => h.stop());

const lineItem = (over: Record<string, unknown> = {}) => ({ quantity: 1, price_data: { currency: 'cny', unit_amount: 1234, product_data: { name: 'Tea' }, ...over } });
const back = () => `${h.base}/pay/tokABC/return?out_trade_no=o1`;
const createParams = (over: Record<string, unknown> = {}) => ({ mode: 'payment' as const, line_items: [lineItem()], success_url: `${back()}&session_id={CHECKOUT_SESSION_ID}`, cancel_url: back(), ...over });
const pageUrl = (id: string) => `${h.base}/sandbox/stripe/pay/${id}`;
const submit = (id: string, action: string, notify = 'normal') =>
  fetch(pageUrl(id), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ action, notify }), redirect: 'manual' });

async function placed(over: Parameters<typeof h.order>[0] = {}) {
  const o = h.order(over);
  const r = await stripe.createPayment(h.cred, o);
  if (!r.ok || r.action.type !== 'redirect') throw new Error('not placed');
  return { o, url: r.action.url, sessionId: r.reference!, ctx: { channel: o.channel, reference: r.reference!, channelTradeNo: null, amount: o.amount, currency: o.currency, createdAt: 0, expiresAt: o.expiresAt } };
}

describe('wire', () => {
  it('parses bracketed line items and metadata; retrieve expands line_items and payment_intent.latest_charge', async () => {
    const s = await sdk.checkout.sessions.create(createParams({ client_reference_id: 'o1', metadata: { order_no: 'o1' }, line_items: [lineItem(), { ...lineItem({ unit_amount: 100 }), quantity: 3 }] }));
    expect(s).toMatchObject({ object: 'checkout.session', status: 'open', payment_status: 'unpaid', amount_total: 1534, currency: 'cny', client_reference_id: 'o1', metadata: { order_no: 'o1' }, payment_intent: null });
    expect(s.url).toBe(pageUrl(s.id));
    expect(s.lastResponse.requestId).toMatch(/^req_/);
    const withItems = await sdk.checkout.sessions.retrieve(s.id, { expand: ['line_items'] });
    expect(withItems.line_items?.data.map((li) => li.quantity)).toEqual([1, 3]);
    expect((await submit(s.id, 'pay')).status).toBe(303);
    const paid = await sdk.checkout.sessions.retrieve(s.id, { expand: ['payment_intent.latest_charge'] });
    const pi = paid.payment_intent as Stripe.PaymentIntent;
    expect(pi).toMatchObject({ object: 'payment_intent', status: 'succeeded', amount: 1534 });
    expect((pi.latest_charge as Stripe.Charge).payment_method_details?.card?.wallet).toBeNull();
    expect(typeof (await sdk.paymentIntents.retrieve(pi.id)).latest_charge).toBe('string');
  });

  it('errors carry Stripe\'s type, code and the bracketed param', async () => {
    const missing = await sdk.checkout.sessions.create(createParams({ line_items: [{ quantity: 1, price_data: { currency: 'cny', product_data: { name: 'Tea' } } }] })).catch((e) => e);
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ code: 'parameter_missing', param: 'line_items[0][price_data][unit_amount]', statusCode: 400 });
    expect(missing.requestId).toMatch(/^req_/);
    const expiry = await sdk.checkout.sessions.create(createParams({ expires_at: Math.floor(Date.now() / 1000) + 60 })).catch((e) => e);
    expect(expiry).toMatchObject({ param: 'expires_at', statusCode: 400 });
    const unknownKey = await sdk.checkout.sessions.create(createParams({ payment_method_types: ['card'] } as any)).catch((e) => e);
    expect(unknownKey).toMatchObject({ code: 'parameter_unknown', param: 'payment_method_types' });
    const badExpand = await sdk.checkout.sessions.retrieve((await sdk.checkout.sessions.create(createParams())).id, { expand: ['customer'] }).catch((e) => e);
    expect(badExpand).toMatchObject({ param: 'expand', statusCode: 400 });
    const none = await sdk.checkout.sessions.retrieve('cs_test_doesnotexist0000').catch((e) => e);
    expect(none).toMatchObject({ code: 'resource_missing', statusCode: 404 });
  });

  it('idempotency: the same key and parameters replay the first answer; other parameters are an idempotency_error', async () => {
    const key = `create:${Date.now()}`;
    const a = await sdk.checkout.sessions.create(createParams(), { idempotencyKey: key });
    const b = await sdk.checkout.sessions.create(createParams(), { idempotencyKey: key });
    expect(b.id).toBe(a.id);
    const replay = await fetch(`${h.base}/sandbox/stripe/v1/checkout/sessions/${a.id}/expire`, { method: 'POST', headers: { authorization: `Bearer ${h.cred.secretKey}`, 'idempotency-key': `expire:${a.id}` } });
    const replayed = await fetch(`${h.base}/sandbox/stripe/v1/checkout/sessions/${a.id}/expire`, { method: 'POST', headers: { authorization: `Bearer ${h.cred.secretKey}`, 'idempotency-key': `expire:${a.id}` } });
    expect([replay.status, replayed.status]).toEqual([200, 200]);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(await replayed.json()).toEqual(await replay.json());
    const other = await sdk.checkout.sessions.create(createParams({ line_items: [lineItem({ unit_amount: 999 })] }), { idempotencyKey: key }).catch((e) => e);
    expect(other).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    // A request refused by validation is not kept: the key can be used for a valid one.
    const key2 = `create2:${Date.now()}`;
    await sdk.checkout.sessions.create(createParams({ mode: 'subscription' } as any), { idempotencyKey: key2 }).catch(() => undefined);
    expect((await sdk.checkout.sessions.create(createParams(), { idempotencyKey: key2 })).object).toBe('checkout.session');
  });

  it('an unknown Stripe-Version is refused; a wrong key is a 401', async () => {
    const res = await fetch(`${h.base}/sandbox/stripe/v1/refunds/re_x`, { headers: { authorization: `Bearer ${h.cred.secretKey}`, 'stripe-version': '2019-01-01' } });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'api_version_invalid' });
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const wrong = await fetch(`${h.base}/sandbox/stripe/v1/refunds/re_x`, { headers: { authorization: 'Bearer sk_test_0000000000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } });
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(await wrong.json())).not.toContain('aaaaaaaaaaaaaaaaaaaaaaaa');
  });
});

describe('the adapter against the simulator', () => {
  it('card: pay on the hosted page; the signed webhook verifies; query reads the session, the PaymentIntent and the wallet', async () => {
    const { o, url, sessionId, ctx } = await placed();
    const page = await (await fetch(url)).text();
    for (const a of ['pay', 'decline', 'cancel', '3ds', 'apple_pay']) expect(page).toContain(`data-sandbox-action="${a}"`);
    expect(await stripe.queryPayment(h.cred, o.orderNo, ctx)).toEqual({ status: 'pending' });
    const before = h.webhooks.length;
    const res = await submit(sessionId, 'pay');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`${o.returnUrl}?out_trade_no=${o.orderNo}&session_id=${sessionId}`);
    const hook = h.webhooks[before]!;
    const n = await stripe.parseNotification(h.cred, { headers: hook.headers, contentType: hook.headers['content-type']!, body: hook.body });
    expect(n).toMatchObject({ kind: 'payment', orderNo: o.orderNo, status: 'succeeded', amount: 1234, currency: 'CNY', wallet: 'card' });
    const q = await stripe.queryPayment(h.cred, o.orderNo, ctx);
    expect(q).toMatchObject({ status: 'succeeded', amount: 1234, wallet: 'card' });
    expect(q.channelTradeNo).toMatch(/^pi_/);
  });

  it('3-D Secure: a challenge step, then paid; Apple Pay records the wallet; zero-decimal JPY is sent in whole yen', async () => {
    const a = await placed();
    const challenge = await submit(a.sessionId, '3ds');
    expect(challenge.status).toBe(200);
    expect(await challenge.text()).toContain('3-D Secure');
    expect((await stripe.queryPayment(h.cred, a.o.orderNo, a.ctx)).status).toBe('pending');
    expect((await submit(a.sessionId, '3ds_pay')).status).toBe(303);
    expect((await stripe.queryPayment(h.cred, a.o.orderNo, a.ctx)).status).toBe('succeeded');

    const b = await placed({ channel: 'apple_pay', currency: 'JPY', amount: 500 });
    expect((await submit(b.sessionId, 'apple_pay')).status).toBe(303);
    expect(await stripe.queryPayment(h.cred, b.o.orderNo, { ...b.ctx, currency: 'JPY' })).toMatchObject({ status: 'succeeded', amount: 500, wallet: 'apple_pay' });
    expect((await sdk.checkout.sessions.retrieve(b.sessionId)).amount_total).toBe(500);
  });

  it('decline leaves the session open (the buyer may retry); cancel goes back to cancel_url; drop sends no webhook', async () => {
    const { o, sessionId, ctx } = await placed();
    const declined = await submit(sessionId, 'decline');
    expect(declined.status).toBe(200);
    expect(await declined.text()).toContain('data-decline="card_declined"');
    expect((await sdk.checkout.sessions.retrieve(sessionId)).status).toBe('open');
    expect((await sdk.paymentIntents.retrieve((await sdk.checkout.sessions.retrieve(sessionId)).payment_intent as string)).last_payment_error?.code).toBe('card_declined');
    const cancel = await submit(sessionId, 'cancel');
    expect(cancel.headers.get('location')).toBe(`${o.returnUrl}?out_trade_no=${o.orderNo}`);
    const before = h.webhooks.length;
    expect((await submit(sessionId, 'pay', 'drop')).status).toBe(303);
    await new Promise((r) => setTimeout(r, 100));
    expect(h.webhooks.length).toBe(before);
    expect((await stripe.queryPayment(h.cred, o.orderNo, ctx)).status).toBe('succeeded');
  });

  it('close expires an open session (again: fine); a complete one is a ChannelRequestError', async () => {
    const open = await placed();
    await stripe.closePayment(h.cred, open.o.orderNo, open.ctx);
    expect((await sdk.checkout.sessions.retrieve(open.sessionId)).status).toBe('expired');
    await stripe.closePayment(h.cred, open.o.orderNo, open.ctx);
    expect((await stripe.queryPayment(h.cred, open.o.orderNo, open.ctx)).status).toBe('closed');
    const expired = await waitFor(() => h.webhooks.find((w) => w.body.toString().includes('checkout.session.expired') && w.body.toString().includes(open.sessionId)));
    expect(await stripe.parseNotification(h.cred, { headers: expired.headers, contentType: 'application/json', body: expired.body })).toMatchObject({ status: 'closed', orderNo: open.o.orderNo });
    const paid = await placed();
    await submit(paid.sessionId, 'pay');
    expect(await stripe.closePayment(h.cred, paid.o.orderNo, paid.ctx).catch((e) => e)).toBeInstanceOf(ChannelRequestError);
  });

  it('refunds: partial and cumulative on the PaymentIntent, too large names amount, then charge_already_refunded; events name our refund', async () => {
    const { o, sessionId, ctx } = await placed();
    await submit(sessionId, 'pay');
    const q = await stripe.queryPayment(h.cred, o.orderNo, ctx);
    const attempt = { ...ctx, channelTradeNo: q.channelTradeNo! };
    const req = (refundNo: string, amount: number) => ({ orderNo: o.orderNo, refundNo, amount, totalAmount: 1234, currency: 'CNY', notifyUrl: '', attempt });
    const r1 = await stripe.refund(h.cred, req('re_ours_1', 234));
    expect(r1).toMatchObject({ status: 'succeeded' });
    expect(await stripe.refund(h.cred, req('re_ours_1', 234))).toEqual(r1); // replayed by its idempotency key
    const tooLarge = await sdk.refunds.create({ payment_intent: q.channelTradeNo!, amount: 5000 }).catch((e) => e);
    expect(tooLarge).toMatchObject({ code: 'amount_too_large', param: 'amount' });
    expect(await stripe.refund(h.cred, req('re_ours_2', 1000))).toMatchObject({ status: 'succeeded' });
    const again = await sdk.refunds.create({ payment_intent: q.channelTradeNo! }).catch((e) => e);
    expect(again).toMatchObject({ code: 'charge_already_refunded' });
    expect(await stripe.refund(h.cred, req('re_ours_3', 1))).toMatchObject({ status: 'failed' });
    expect(await stripe.queryRefund(h.cred, o.orderNo, 're_ours_2', { attempt, createdAt: 0, channelRefundNo: null })).toMatchObject({ status: 'succeeded' });
    expect((await sdk.refunds.retrieve(r1.channelRefundNo!)).metadata).toMatchObject({ refund_no: 're_ours_1', order_no: o.orderNo });
    const hook = await waitFor(() => h.webhooks.find((w) => w.body.toString().includes('"charge.refunded"') && w.body.toString().includes(q.channelTradeNo!)));
    expect(await stripe.parseNotification(h.cred, { headers: hook.headers, contentType: 'application/json', body: hook.body })).toMatchObject({ kind: 'refund', orderNo: o.orderNo, status: 'succeeded' });
  });
});
