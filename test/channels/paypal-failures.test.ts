import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paypal } from '../../server/channels/paypal/index.ts';
import { cachedTokenCount, clearTokenCache } from '../../server/channels/paypal/client.ts';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable } from '../../server/errors.ts';
import { waitFor } from './sandbox-server.ts';
import { startPaypalHarness, type PaypalHarness } from './paypal-harness.ts';
import { findMerchantByClientId, findOrder } from '../../server/sandbox/paypal/store.ts';
import { approvedEvent } from '../../server/sandbox/paypal/api.ts';
import { transmissionHeaders } from '../../server/sandbox/paypal/webhooks.ts';
import { paypalSandboxTiming } from '../../server/sandbox/paypal/index.ts';

let h: PaypalHarness;
beforeAll(async () => {
  h = await startPaypalHarness();
});
afterAll(() => h?.stop());

const basic = () => `Basic ${Buffer.from(`${h.main.raw.client_id}:${h.main.raw.client_secret}`).toString('base64')}`;

describe('paypal adapter failures', () => {
  it('a revoked token gets one refresh on 401 and the call goes through; the token is cached otherwise', async () => {
    clearTokenCache();
    await h.create(h.order(100));
    expect(cachedTokenCount()).toBe(1);
    const revoked = await fetch(`${h.base}/sandbox/paypal/controls/revoke-tokens`, { method: 'POST', headers: { authorization: basic() } });
    expect(((await revoked.json()) as any).revoked).toBeGreaterThan(0);
    const { reference } = await h.create(h.order(100));
    expect(reference).toMatch(/^[A-Z0-9]{17}$/);
  });

  it('a token is reused until a minute before it expires, then fetched again', async () => {
    clearTokenCache();
    const count = async () => Number((await h.deps.db('paypal_sandbox_tokens').where({ merchant_id: h.main.raw.merchant_id }).count({ n: '*' }))[0]!.n);
    const saved = paypalSandboxTiming.tokenLifetimeS;
    paypalSandboxTiming.tokenLifetimeS = 62;
    try {
      const before = await count();
      await h.create(h.order(100));
      await h.create(h.order(100));
      expect(await count()).toBe(before + 1);
      await new Promise((r) => setTimeout(r, 2100));
      await h.create(h.order(100));
      expect(await count()).toBe(before + 2);
    } finally {
      paypalSandboxTiming.tokenLifetimeS = saved;
    }
  });

  it('wrong client credentials: ChannelConfigError, and the secret never appears in it', async () => {
    const cred = paypal.parseCredentials({ ...h.main.raw, client_secret: 'Ewrongsecretwrongsecret' });
    const err = await paypal.createPayment(cred, h.order(100)).catch((e) => e);
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect(err.message).not.toContain('Ewrongsecret');
    expect(err.message).not.toContain(h.main.raw.client_secret);
  });

  it('network failure: ChannelUnavailable, without the secret', async () => {
    const cred = paypal.parseCredentials({ ...h.main.raw, base_url: 'http://127.0.0.1:9/sandbox/paypal' });
    const err = await paypal.createPayment(cred, h.order(100)).catch((e) => e);
    expect(err).toBeInstanceOf(ChannelUnavailable);
    expect(err.message).not.toContain(h.main.raw.client_secret);
  });

  it('HUF / TWD that are not whole units, CNY without the in-country flag: refused before anything is sent', async () => {
    await expect(paypal.createPayment(h.main.cred, h.order(12345, 'HUF'))).rejects.toThrow(/HUF in whole units/);
    await expect(paypal.createPayment(h.main.cred, h.order(150, 'TWD'))).rejects.toThrow(ChannelRequestError);
    await expect(paypal.createPayment(h.main.cred, h.order(100, 'CNY'))).rejects.toThrow(/registered in its country/);
    const huf = await h.create(h.order(12300, 'HUF'));
    expect(huf.reference).toBeTruthy();
  });

  it('an order not approved yet is not captured: pending (ORDER_NOT_APPROVED at the simulator)', async () => {
    const o = h.order(100);
    const { reference } = await h.create(o);
    expect(await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference))).toEqual({ status: 'pending' });
    const t = ((await (await fetch(`${h.base}/sandbox/paypal/v1/oauth2/token`, { method: 'POST', headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' })).json()) as any).access_token;
    const cap = await fetch(`${h.base}/sandbox/paypal/v2/checkout/orders/${reference}/capture`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: '{}' });
    expect(cap.status).toBe(422);
    expect(((await cap.json()) as any).details[0].issue).toBe('ORDER_NOT_APPROVED');
  });

  it('PayPal-Mock-Response is honoured (INSTRUMENT_DECLINED), and the order stays capturable', async () => {
    const o = h.order(100);
    const { action, reference } = await h.create(o);
    await h.act(o, action, 'pay', 'drop');
    const t = ((await (await fetch(`${h.base}/sandbox/paypal/v1/oauth2/token`, { method: 'POST', headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' })).json()) as any).access_token;
    const cap = await fetch(`${h.base}/sandbox/paypal/v2/checkout/orders/${reference}/capture`, {
      method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', 'paypal-mock-response': '{"mock_application_codes":"INSTRUMENT_DECLINED"}' }, body: '{}',
    });
    expect(((await cap.json()) as any).details[0].issue).toBe('INSTRUMENT_DECLINED');
    expect((await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference))).status).toBe('succeeded');
  });

  it('capture declined inside a COMPLETED order: closed (final), not paid', async () => {
    const o = h.order(700);
    const { action, reference } = await h.create(o);
    await h.act(o, action, 'fail');
    expect(h.paymentNotifies(o.orderNo)[0]).toMatchObject({ status: 'closed' });
    const q = await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference));
    expect(q.status).toBe('closed');
    await waitFor(() => h.paymentNotifies(o.orderNo).find((n, i) => i > 0 && n.status === 'closed'));
  });

  it('capture pending inside a COMPLETED order: pending until the capture completes', async () => {
    const o = h.order(800);
    const { action, reference } = await h.create(o);
    await h.act(o, action, 'pay-pending', 'drop');
    const q = await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference));
    expect(q.status).toBe('pending');
    const { channelTradeNo } = await (async () => {
      const res = await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference));
      return { channelTradeNo: res.channelTradeNo };
    })();
    expect(channelTradeNo).toMatch(/^[A-Z0-9]{17}$/);
    const done = await fetch(`${h.base}/sandbox/paypal/controls/captures/${channelTradeNo}/complete`, { method: 'POST', headers: { authorization: basic() } });
    expect(done.status).toBe(200);
    expect(await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference))).toMatchObject({ status: 'succeeded', channelTradeNo, amount: 800 });
    await waitFor(() => h.paymentNotifies(o.orderNo).find((n) => n.status === 'succeeded'));
  });

  it('concurrent captures (the return, the worker, the APPROVED webhook) end in one capture', async () => {
    const o = h.order(1100);
    const { action, reference } = await h.create(o);
    await h.act(o, action, 'pay', 'drop');
    const results = await Promise.all([0, 1, 2, 3].map(() => paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, reference))));
    expect(new Set(results.map((r) => r.status))).toEqual(new Set(['succeeded']));
    expect(new Set(results.map((r) => r.channelTradeNo)).size).toBe(1);
    expect(await h.deps.db('paypal_sandbox_captures').where({ order_id: reference }).count({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('a capture in another currency than the payment is refused', async () => {
    const o = h.order(1100);
    const { action, reference } = await h.create(o);
    await h.act(o, action, 'pay', 'drop');
    await expect(paypal.queryPayment(h.main.cred, o.orderNo, { ...h.ctx(o, reference), currency: 'EUR' })).rejects.toThrow(/in USD, the payment in EUR/);
  });

  it('an unknown order is not_found; a refund of an unknown capture fails', async () => {
    const o = h.order(100);
    expect((await paypal.queryPayment(h.main.cred, o.orderNo, h.ctx(o, 'ZZZZZZZZZZZZZZZZZ'))).status).toBe('not_found');
    const r = await paypal.refund(h.main.cred, { orderNo: o.orderNo, refundNo: 're_x', amount: 100, totalAmount: 100, currency: 'USD', notifyUrl: '', attempt: h.ctx(o, 'ZZZZZZZZZZZZZZZZZ', 'YYYYYYYYYYYYYYYYY') });
    expect(r.status).toBe('failed');
  });

  it('no secret or token reaches the logs', async () => {
    const o = h.order(100);
    const { action } = await h.create(o);
    await h.act(o, action, 'pay');
    const logs = h.logLines.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(h.main.raw.client_secret);
    expect(logs).not.toMatch(/A21AA[A-Za-z0-9_-]{10}/);
    expect(JSON.stringify(h.main.cred)).not.toContain(h.main.raw.client_secret);
  });

  it('an APPROVED webhook for an order captured elsewhere: ORDER_ALREADY_CAPTURED, then the order is read and its capture counts', async () => {
    const o = h.order(1300);
    const { action, reference } = await h.create(o);
    await h.act(o, action, 'pay', 'drop');
    const t = ((await (await fetch(`${h.base}/sandbox/paypal/v1/oauth2/token`, { method: 'POST', headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' })).json()) as any).access_token;
    const cap = await fetch(`${h.base}/sandbox/paypal/v2/checkout/orders/${reference}/capture`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', 'paypal-request-id': 'captured-elsewhere', prefer: 'return=representation' }, body: '{}' });
    const captureId = ((await cap.json()) as any).purchase_units[0].payments.captures[0].id;
    const merchant = (await findMerchantByClientId(h.deps.db, h.deps.masterKey, h.main.cred.clientId))!;
    const order = (await findOrder(h.deps.db, reference))!;
    const b = `${h.base}/sandbox/paypal`;
    // The approval as it was (APPROVED), delivered late.
    const body = approvedEvent(b, { ...order, status: 'APPROVED' }).body;
    const res = await fetch(`${h.base}/notify/paypal/${h.main.appId}`, { method: 'POST', headers: { 'content-type': 'application/json', ...transmissionHeaders(b, merchant, body) }, body });
    expect(res.status).toBe(200);
    expect(h.paymentNotifies(o.orderNo).at(-1)).toMatchObject({ status: 'succeeded', channelTradeNo: captureId, amount: 1300 });
  });
});
