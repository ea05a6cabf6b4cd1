import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paypal } from '../../server/channels/paypal/index.ts';
import { waitFor } from './sandbox-server.ts';
import { startPaypalHarness, type PaypalHarness } from './paypal-harness.ts';
import { paypalSandboxTiming } from '../../server/sandbox/paypal/index.ts';
import { findMerchantByClientId } from '../../server/sandbox/paypal/store.ts';
import { buildEvent, transmissionHeaders } from '../../server/sandbox/paypal/webhooks.ts';

let h: PaypalHarness;
beforeAll(async () => {
  h = await startPaypalHarness();
});
afterAll(() => h?.stop());

const token = async (cred = h.main.raw) => {
  const res = await fetch(`${h.base}/sandbox/paypal/v1/oauth2/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${cred.client_id}:${cred.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  return { status: res.status, body: (await res.json()) as any };
};
const rest = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const t = (await token()).body.access_token;
  const res = await fetch(`${h.base}/sandbox/paypal${path}`, {
    method, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', prefer: 'return=representation', ...headers }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};
const orderBody = (value: string, currency = 'USD', invoice = `inv${Math.random().toString(36).slice(2)}`) => ({
  intent: 'CAPTURE', purchase_units: [{ invoice_id: invoice, amount: { currency_code: currency, value } }],
});

describe('paypal simulator over HTTP', () => {
  it('OAuth: a token for the right Basic credentials; 401 invalid_client otherwise', async () => {
    const ok = await token();
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ token_type: 'Bearer', expires_in: expect.any(Number) });
    const bad = await token({ ...h.main.raw, client_secret: 'Ewrong-secret-value' });
    expect(bad).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    const noAuth = await fetch(`${h.base}/sandbox/paypal/v2/checkout/orders/XXXXXXXXXXXXXXXXX`);
    expect(noAuth.status).toBe(401);
  });

  it('create: schema limits, money pattern and per-currency decimals', async () => {
    expect((await rest('POST', '/v2/checkout/orders', orderBody('1000.00', 'JPY'))).body.details[0].issue).toBe('DECIMALS_NOT_SUPPORTED');
    expect((await rest('POST', '/v2/checkout/orders', orderBody('12.345'))).body.details[0].issue).toBe('DECIMAL_PRECISION');
    expect((await rest('POST', '/v2/checkout/orders', orderBody('12,00'))).status).toBe(400);
    expect((await rest('POST', '/v2/checkout/orders', orderBody('12.00', 'CNY'))).body.details[0].issue).toBe('CURRENCY_NOT_SUPPORTED');
    const long = orderBody('1.00');
    (long.purchase_units[0] as any).description = 'x'.repeat(128);
    expect((await rest('POST', '/v2/checkout/orders', long)).body.details[0]).toMatchObject({ issue: 'INVALID_STRING_LENGTH' });
    const ok = await rest('POST', '/v2/checkout/orders', orderBody('1000', 'JPY'));
    expect(ok.status).toBe(201);
    expect(ok.body.status).toBe('CREATED');
    expect(ok.body.links.find((l: any) => l.rel === 'approve').href).toBe(`${h.base}/sandbox/paypal/checkoutnow?token=${ok.body.id}`);
  });

  it('invoice_id is unique per merchant; PayPal-Request-Id replays the first answer; Prefer minimal answers id, status, links', async () => {
    const body = orderBody('5.00', 'USD', `dup${Date.now()}`);
    const first = await rest('POST', '/v2/checkout/orders', body, { 'paypal-request-id': `rid-${Date.now()}` });
    expect(first.status).toBe(201);
    const again = await rest('POST', '/v2/checkout/orders', body);
    expect(again.body.details[0].issue).toBe('DUPLICATE_INVOICE_ID');
    const rid = `rid2-${Date.now()}`;
    const b2 = orderBody('6.00');
    const one = await rest('POST', '/v2/checkout/orders', b2, { 'paypal-request-id': rid });
    const two = await rest('POST', '/v2/checkout/orders', b2, { 'paypal-request-id': rid });
    expect(two.body.id).toBe(one.body.id);
    const minimal = await rest('POST', '/v2/checkout/orders', orderBody('7.00'), { prefer: 'return=minimal' });
    expect(Object.keys(minimal.body).sort()).toEqual(['id', 'links', 'status']);
  });

  it('the adapter: create → approval page → pay → APPROVED webhook captured by the adapter → PAYMENT.CAPTURE.COMPLETED', async () => {
    const o = h.order(1500);
    const { action, reference } = await h.create(o);
    expect(action.url).toBe(`${h.base}/sandbox/paypal/checkoutnow?token=${reference}`);
    const page = await fetch(action.url);
    const html = await page.text();
    for (const a of ['pay', 'fail', 'cancel']) expect(html).toContain(`data-sandbox-action="${a}"`);
    await h.act(o, action, 'pay');
    const [approved] = h.paymentNotifies(o.orderNo);
    expect(approved).toMatchObject({ kind: 'payment', status: 'succeeded', amount: 1500, currency: 'USD', merchantId: h.main.raw.merchant_id });
    const completed = await waitFor(() => h.paymentNotifies(o.orderNo)[1]);
    expect(completed).toMatchObject({ status: 'succeeded', channelTradeNo: approved!.channelTradeNo, amount: 1500 });
    expect(await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference))).toMatchObject({ status: 'succeeded', channelTradeNo: approved!.channelTradeNo, amount: 1500 });
  });

  it('the payer page form: pay redirects to return_url?token=&PayerID= (out_trade_no kept); cancel to cancel_url?token=', async () => {
    const o = h.order(300);
    const { reference } = await h.create(o);
    const res = await fetch(`${h.base}/sandbox/paypal/payer/action`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: reference, action: 'cancel' }) });
    expect(res.status).toBe(303);
    const cancel = new URL(res.headers.get('location')!);
    expect(Object.fromEntries(cancel.searchParams)).toEqual({ out_trade_no: o.orderNo, cancel: '1', token: reference });
    const pay = await fetch(`${h.base}/sandbox/paypal/payer/action`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: reference, action: 'pay', notify_mode: 'drop' }) });
    const back = new URL(pay.headers.get('location')!);
    expect(back.searchParams.get('out_trade_no')).toBe(o.orderNo);
    expect(back.searchParams.get('token')).toBe(reference);
    expect(back.searchParams.get('PayerID')).toMatch(/^[A-Z0-9]{13}$/);
    // The return asks the adapter, which captures the approved order.
    expect((await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference))).status).toBe('succeeded');
  });

  it('partial and cumulative refunds; CAPTURE_FULLY_REFUNDED; REFUND_AMOUNT_EXCEEDED; PAYMENT.CAPTURE.REFUNDED carries our refund number', async () => {
    const o = h.order(1000);
    const { action, reference } = await h.create(o);
    await h.act(o, action, 'pay');
    const captureId = h.paymentNotifies(o.orderNo)[0]!.channelTradeNo;
    const attempt = h.ctx(o, reference, captureId);
    const req = (refundNo: string, amount: number) => ({ orderNo: o.orderNo, refundNo, amount, totalAmount: 1000, currency: 'USD', notifyUrl: '', attempt });
    const r1 = await paypal.refund(h.main.cred, req('re_a1', 400));
    expect(r1).toMatchObject({ status: 'succeeded', channelRefundNo: expect.stringMatching(/^[A-Z0-9]{17}$/) });
    expect((await paypal.refund(h.main.cred, req('re_a1', 400))).channelRefundNo).toBe(r1.channelRefundNo);
    const over = await paypal.refund(h.main.cred, req('re_a2', 700));
    expect(over.status).toBe('failed');
    expect(over.failureMessage).toContain('REFUND_AMOUNT_EXCEEDED');
    expect((await paypal.refund(h.main.cred, req('re_a3', 600))).status).toBe('succeeded');
    expect(await paypal.refund(h.main.cred, req('re_a4', 1))).toEqual({ status: 'succeeded' });
    expect(await paypal.queryRefund(h.main.cred, o.orderNo, 're_a1', { attempt, createdAt: 0, channelRefundNo: r1.channelRefundNo! })).toMatchObject({ status: 'succeeded' });
    const refundNote = await waitFor(() => h.notifications.find((n) => n.kind === 'refund' && n.refundNo === 're_a1'));
    expect(refundNote).toMatchObject({ kind: 'refund', orderNo: o.orderNo, status: 'succeeded', amount: 400, currency: 'USD', channelRefundNo: r1.channelRefundNo });
  });

  it('unapproved orders expire (VOIDED → closed) after the approval window', async () => {
    const o = h.order(200);
    const { reference } = await h.create(o);
    const saved = paypalSandboxTiming.approvalWindowS;
    paypalSandboxTiming.approvalWindowS = -1;
    try {
      expect((await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference))).status).toBe('closed');
    } finally {
      paypalSandboxTiming.approvalWindowS = saved;
    }
  });

  it('verify-webhook-signature postback: SUCCESS for the raw event as sent, FAILURE re-serialised; the adapter verifies by postback when configured', async () => {
    const m = await h.provision({ webhook_verification: 'postback' });
    const o = h.order(900);
    const { action } = await h.create(o, m.cred);
    await h.act(o, action, 'pay', 'normal', m.cred.clientId);
    expect(h.paymentNotifies(o.orderNo)[0]).toMatchObject({ status: 'succeeded', amount: 900 });
    const merchant = (await findMerchantByClientId(h.deps.db, h.deps.masterKey, m.cred.clientId))!;
    const b = `${h.base}/sandbox/paypal`;
    const event = buildEvent(b, 'WH-TEST-1', 'PAYMENT.CAPTURE.COMPLETED', 'capture', { id: 'X', amount: { currency_code: 'USD', value: '1.0' }, note: '付款 €' }).body;
    const t = transmissionHeaders(b, merchant, event);
    const fields = { auth_algo: t['paypal-auth-algo'], cert_url: t['paypal-cert-url'], transmission_id: t['paypal-transmission-id'], transmission_sig: t['paypal-transmission-sig'], transmission_time: t['paypal-transmission-time'], webhook_id: merchant.webhookId };
    const spliced = `${JSON.stringify(fields).slice(0, -1)},"webhook_event":${event}}`;
    const postback = async (raw: string) => {
      const tk = (await token(m.raw)).body.access_token;
      const res = await fetch(`${b}/v1/notifications/verify-webhook-signature`, { method: 'POST', headers: { authorization: `Bearer ${tk}`, 'content-type': 'application/json' }, body: raw });
      return ((await res.json()) as any).verification_status;
    };
    expect(await postback(spliced)).toBe('SUCCESS');
    expect(await postback(JSON.stringify({ ...fields, webhook_event: JSON.parse(event) }, null, 1))).toBe('FAILURE');
  });
});
