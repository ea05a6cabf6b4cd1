/**
 * UnionPay through the hosted cashier in Chromium: the consume form auto-posted to the
 * simulator's page, paid there, and back by the cross-site POST of the signed result to the
 * gateway's return page, then on to the merchant. Desktop (unionpay_pc) and phone (unionpay_wap).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { haveChromium, launchBrowser } from '../support/browser.ts';
import { startReceiver } from '../support/receiver.ts';

const iphone = {
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
};

describe.skipIf(!haveChromium)('UnionPay through the cashier in Chromium', () => {
  let g: TestGateway;
  let browser: Browser;
  let shop: Awaited<ReturnType<typeof startReceiver>>;
  let seq = 0;

  beforeAll(async () => {
    g = await startTestGateway();
    shop = await startReceiver();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await shop?.close();
    await g?.close();
  });

  const create = async () =>
    (await g.api('POST', '/v1/payments', { amount: 4200, subject: 'Oolong 乌龙茶', out_trade_no: `up_${Date.now()}_${++seq}`, return_url: `${shop.url}/done` })).body;
  const payment = async (id: string) => (await g.api('GET', `/v1/payments/${id}`)).body;
  const offered = (page: import('playwright-core').Page) => page.locator('[data-channel]').evaluateAll((els) => els.map((e) => e.getAttribute('data-channel')));

  it('desktop: pick UnionPay, the form auto-posts to the UnionPay page, pay, back through the return to the merchant', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    const codes = await offered(page);
    expect(codes).toContain('unionpay_pc');
    expect(codes).not.toContain('unionpay_wap');
    await page.click('[data-channel="unionpay_pc"]');
    await page.waitForSelector('[data-sandbox-action="pay"]');
    expect(new URL(page.url()).pathname).toBe('/sandbox/unionpay/gateway/api/frontTransReq.do');
    const returned = page.waitForRequest((r) => r.method() === 'POST' && /\/pay\/[A-Za-z0-9]+\/return\?out_trade_no=cs[A-Za-z0-9]{30}$/.test(r.url()));
    await Promise.all([page.waitForURL(`${shop.url}/done**`), page.click('[data-sandbox-action="pay"]')]);
    const ret = await returned;
    expect(new URLSearchParams(ret.postData() ?? '').get('respCode')).toBe('00');
    expect(new URL(page.url()).searchParams.get('payment_id')).toBe(p.id);
    expect(await payment(p.id)).toMatchObject({ status: 'succeeded', channel: 'unionpay_pc' });
    await context.close();
  }, 60_000);

  it('desktop without JavaScript: the visible buttons carry the forms', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    await page.click('[data-channel="unionpay_pc"]');
    // The cashier's form to UnionPay, then the UnionPay page's result form back.
    await page.click('form[data-autosubmit] button[type=submit]');
    await page.waitForSelector('[data-sandbox-action="pay"]');
    await page.click('[data-sandbox-action="pay"]');
    await Promise.all([page.waitForURL(`${shop.url}/done**`), page.click('form[data-front-notify] button[type=submit]')]);
    expect((await payment(p.id)).status).toBe('succeeded');
    await context.close();
  }, 60_000);

  it('phone: UnionPay WAP on an iPhone', async () => {
    const context = await browser.newContext(iphone);
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    const codes = await offered(page);
    expect(codes).toContain('unionpay_wap');
    expect(codes).not.toContain('unionpay_pc');
    await page.click('[data-channel="unionpay_wap"]');
    await page.waitForSelector('[data-sandbox-action="pay"]');
    expect(await page.textContent('header')).toContain('WAP');
    await Promise.all([page.waitForURL(`${shop.url}/done**`), page.click('[data-sandbox-action="pay"]')]);
    expect(await payment(p.id)).toMatchObject({ status: 'succeeded', channel: 'unionpay_wap' });
    await context.close();
  }, 60_000);

  it('cancel on the UnionPay page brings the payer back to the choice', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const p = await create();
    await page.goto(`${p.checkout_url}?lang=en`);
    await page.click('[data-channel="unionpay_pc"]');
    await page.click('[data-sandbox-action="cancel"]');
    await page.waitForSelector('[data-channel]');
    expect(new URL(page.url()).pathname).toBe(new URL(p.checkout_url).pathname);
    expect((await payment(p.id)).status).toBe('pending');
    await context.close();
  }, 60_000);
});
