// Payments in currencies other than CNY: the gateway takes a currency some channel takes, the
// cashier offers the channels that take it and shows the amount in it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';

let g: TestGateway;
let seq = 0;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(async () => {
  await g?.close();
});

const desktop = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
const body = (extra: Record<string, unknown>) => ({ amount: 1234, subject: 'Currency', out_trade_no: `cur_${Date.now()}_${++seq}`, ...extra });
const count = async () => Number((await g.deps.db('payments').count({ n: '*' }).first())!.n);

describe('currencies', () => {
  it('takes any ISO 4217 currency a channel takes, upper-cased; refuses the rest naming currency, storing nothing', async () => {
    for (const [currency, stored] of [['usd', 'USD'], ['EUR', 'EUR'], ['HKD', 'HKD'], ['JPY', 'JPY'], ['CNY', 'CNY']]) {
      const res = await g.api('POST', '/v1/payments', body({ currency }));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.currency).toBe(stored);
    }
    const before = await count();
    for (const [currency, code] of [['XYZ', 'parameter_invalid'], ['US', 'parameter_invalid'], ['KPW', 'currency_not_supported'], ['BHD', 'currency_not_supported']]) {
      const res = await g.api('POST', '/v1/payments', body({ currency }));
      expect(res.status, currency).toBe(400);
      expect(res.body.error).toMatchObject({ param: 'currency' });
      if (code === 'currency_not_supported') expect(res.body.error.code).toBe(code);
    }
    expect(await count()).toBe(before);
  });

  it('in live mode, once the app has live channels, one of them must take the currency', async () => {
    const live = (b: unknown) =>
      fetch(`${g.url}/v1/payments`, { method: 'POST', headers: { authorization: `Bearer ${g.app.live_secret_key}`, 'content-type': 'application/json' }, body: JSON.stringify(b) });
    // No live channel yet: nothing to pay with in any currency; the create is not where that shows.
    expect((await live(body({ currency: 'USD' }))).status).toBe(200);
    // Only Alipay live (the row stands for a stored config; this check reads which providers have one).
    await g.deps.db('channel_configs').insert({ app_id: g.app.app_id, provider: 'alipay', livemode: true, config_sealed: 'x', generated: false, created: 1, updated: 1 });
    try {
      const usd = await live(body({ currency: 'USD' }));
      expect(usd.status).toBe(400);
      expect((await usd.json()).error).toMatchObject({ code: 'currency_not_supported', param: 'currency' });
      expect((await live(body({ currency: 'CNY' }))).status).toBe(200);
    } finally {
      await g.deps.db('channel_configs').where({ app_id: g.app.app_id, provider: 'alipay', livemode: true }).delete();
    }
  });

  it('the cashier offers only the channels that take the currency, and shows the amount in it and the reader language', async () => {
    const usd = (await g.api('POST', '/v1/payments', body({ currency: 'USD', amount: 1999 }))).body;
    const en = await (await fetch(usd.checkout_url, { headers: { 'user-agent': desktop, 'accept-language': 'en' } })).text();
    expect(en).toContain('$19.99');
    expect(en).toContain('data-channel="paypal"');
    expect(en).not.toContain('data-channel="alipay_pc"');
    expect(en).not.toContain('data-channel="unionpay_pc"');
    const zh = await (await fetch(usd.checkout_url, { headers: { 'user-agent': desktop, 'accept-language': 'zh-CN' } })).text();
    expect(zh).toContain('US$19.99');

    const jpy = (await g.api('POST', '/v1/payments', body({ currency: 'JPY', amount: 1500 }))).body;
    expect(await (await fetch(jpy.checkout_url, { headers: { 'user-agent': desktop, 'accept-language': 'en' } })).text()).toContain('¥1,500');

    const cny = (await g.api('POST', '/v1/payments', body({ currency: 'CNY', amount: 1999 }))).body;
    const cnyPage = await (await fetch(cny.checkout_url, { headers: { 'user-agent': desktop, 'accept-language': 'zh-CN' } })).text();
    expect(cnyPage).toContain('¥19.99');
    expect(cnyPage).toContain('data-channel="alipay_pc"');
    expect(cnyPage).toContain('data-channel="unionpay_pc"');
    expect(cnyPage).not.toContain('data-channel="paypal"');
  });
});
