import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { expectLedgerConsistent, newCustomer, tradeNo } from '../support/accounts.ts';

let g: TestGateway;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(() => g?.close());

const desktop = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36';
const page = async (url: string) => (await fetch(`${url}?lang=en`, { headers: { 'user-agent': desktop } })).text();
const formTokenOf = (html: string) => /name="form_token" value="([^"]+)"/.exec(html)![1];
const post = (url: string, form: Record<string, string>) =>
  fetch(`${url}?lang=en`, { method: 'POST', redirect: 'manual', headers: { 'user-agent': desktop, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
const balanceButton = (html: string) => /<button[^>]*data-channel="balance"[^>]*>/.exec(html)?.[0];

describe('the cashier and the account system', () => {
  it('offers "pay with balance" for a payment that names a customer, showing the balance; paying debits it', async () => {
    const c = await newCustomer(g);
    await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 1500 });
    const p = (await g.api('POST', '/v1/payments', { amount: 1200, subject: 'Tea', out_trade_no: tradeNo('cash'), customer: c.id, return_url: 'https://shop.example/done' })).body;
    const html = await page(p.checkout_url);
    expect(balanceButton(html)).toBeDefined();
    expect(balanceButton(html)).not.toMatch(/disabled/);
    expect(html).toContain('data-balance="1500"');
    expect(html).toMatch(/Available balance: (CN)?¥15\.00/);
    expect(html).toContain('data-channel="alipay_pc"');
    const res = await post(`${p.checkout_url}/channel`, { form_token: formTokenOf(html), channel: 'balance' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/^https:\/\/shop\.example\/done\?payment_id=/);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body).toMatchObject({ status: 'succeeded', channel: 'balance' });
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(300);
    await expectLedgerConsistent(g.deps.db);
  });

  it('greys the button out when the balance is too low, and a forced post changes nothing', async () => {
    const c = await newCustomer(g);
    await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 100 });
    const p = (await g.api('POST', '/v1/payments', { amount: 1200, subject: 'Tea', out_trade_no: tradeNo('low'), customer: c.id })).body;
    const html = await page(p.checkout_url);
    expect(balanceButton(html)).toMatch(/disabled/);
    expect(html).toContain('Balance too low');
    const res = await post(`${p.checkout_url}/channel`, { form_token: formTokenOf(html), channel: 'balance' });
    expect(res.status).toBe(402);
    expect(await res.text()).toContain('Balance too low');
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('pending');
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(100);
    // Without the form token, refused before anything.
    expect((await post(`${p.checkout_url}/channel`, { channel: 'balance' })).status).toBe(403);
  });

  it('a top-up shows the customer it credits and never offers balance; a payment without a customer offers none', async () => {
    const c = await newCustomer(g, { name: 'Wang Fang' });
    await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 5000 });
    const top = (await g.api('POST', '/v1/payments', { amount: 1000, subject: 'Top-up', out_trade_no: tradeNo('tu'), customer: c.id, purpose: 'balance_top_up' })).body;
    const html = await page(top.checkout_url);
    expect(html).toContain(`data-top-up="${c.id}"`);
    expect(html).toContain('Top-up for account: Wang Fang');
    expect(balanceButton(html)).toBeUndefined();
    const forced = await post(`${top.checkout_url}/channel`, { form_token: formTokenOf(html), channel: 'balance' });
    expect(forced.status).toBe(400);
    expect((await g.api('GET', `/v1/payments/${top.id}`)).body.status).toBe('pending');
    const anon = (await g.api('POST', '/v1/payments', { amount: 1000, subject: 'Anon', out_trade_no: tradeNo('an') })).body;
    expect(balanceButton(await page(anon.checkout_url))).toBeUndefined();
  });

  it('a payment that allows it takes a coupon code typed by the payer, re-priced before any channel order; refused once one exists', async () => {
    const coupon = (await g.api('POST', '/v1/coupons', { code: `TYPE${Date.now()}`, amount_off: 200, currency: 'CNY' })).body;
    const p = (await g.api('POST', '/v1/payments', { amount: 1000, subject: 'Typed', out_trade_no: tradeNo('typed'), allow_coupon_code: true })).body;
    expect(p.allow_coupon_code).toBe(true);
    let html = await page(p.checkout_url);
    expect(html).toContain('data-coupon-form');
    const bad = await post(`${p.checkout_url}/coupon`, { form_token: formTokenOf(html), coupon: 'NOPE' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('This coupon code cannot be used');
    const ok = await post(`${p.checkout_url}/coupon`, { form_token: formTokenOf(html), coupon: coupon.code.toLowerCase() });
    expect(ok.status).toBe(303);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body).toMatchObject({ amount: 800, amount_original: 1000, amount_discount: 200, coupon: coupon.id });
    html = await page(p.checkout_url);
    expect(html).toContain('data-amount="800"');
    expect(html).toContain('data-discount="200"');
    expect(html).not.toContain('data-coupon-form');
    // The order is placed for the new amount.
    const paid = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' });
    expect(paid.body).toMatchObject({ status: 'succeeded', amount: 800 });

    const q = (await g.api('POST', '/v1/payments', { amount: 1000, subject: 'Late', out_trade_no: tradeNo('late'), allow_coupon_code: true })).body;
    const qHtml = await page(q.checkout_url);
    const placed = await post(`${q.checkout_url}/channel`, { form_token: formTokenOf(qHtml), channel: 'alipay_pc' });
    expect(placed.status).toBe(303);
    const late = await post(`${q.checkout_url}/coupon`, { form_token: formTokenOf(qHtml), coupon: coupon.code });
    expect(late.status).toBe(400);
    expect((await g.api('GET', `/v1/payments/${q.id}`)).body).toMatchObject({ amount: 1000, coupon: null });
    expect(await page(q.checkout_url)).not.toContain('data-coupon-form');
    // A payment that does not allow codes shows no form and takes none.
    const plain = (await g.api('POST', '/v1/payments', { amount: 1000, subject: 'Plain', out_trade_no: tradeNo('plain') })).body;
    const plainHtml = await page(plain.checkout_url);
    expect(plainHtml).not.toContain('data-coupon-form');
    expect((await post(`${plain.checkout_url}/coupon`, { form_token: formTokenOf(plainHtml), coupon: coupon.code })).status).toBe(400);
  });
});
