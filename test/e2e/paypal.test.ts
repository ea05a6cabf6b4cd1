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

describe.skipIf(!haveChromium)('PayPal through the hosted cashier in Chromium', { timeout: 90_000 }, () => {
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

  const create = async (extra: Record<string, unknown> = {}) =>
    (await g.api('POST', '/v1/payments', { amount: 2599, currency: 'USD', subject: 'Jasmine tea', out_trade_no: `pp_ui_${Date.now()}_${++seq}`, return_url: `${shop.url}/done`, ...extra })).body;
  const payment = async (id: string) => (await g.api('GET', `/v1/payments/${id}`)).body;

  for (const [name, notify] of [['the approval webhook captures', 'normal'], ['the return captures (webhook dropped)', 'drop']] as const) {
    it(`desktop: pick PayPal on a USD payment, approve on PayPal, back to the merchant: ${name}`, async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const p = await create();
      await page.goto(`${p.checkout_url}?lang=en`);
      // A USD payment offers only the channels that take USD.
      const offered = await page.$$eval('[data-channel]', (els) => els.map((e) => e.getAttribute('data-channel')));
      expect(offered).toEqual(['paypal', 'card']);
      await page.click('[data-channel="paypal"]');
      await page.waitForSelector('[data-sandbox-action="pay"]');
      expect(page.url()).toContain('/sandbox/paypal/checkoutnow?token=');
      expect(await page.textContent('[data-amount]')).toContain('25.99 USD');
      await page.check(`input[name="notify_mode"][value="${notify}"]`);
      await Promise.all([page.waitForURL(`${shop.url}/done**`), page.click('[data-sandbox-action="pay"]')]);
      expect(new URL(page.url()).searchParams.get('payment_id')).toBe(p.id);
      const paid = await payment(p.id);
      expect(paid).toMatchObject({ status: 'succeeded', channel: 'paypal', channel_trade_no: expect.stringMatching(/^[A-Z0-9]{17}$/) });
      await context.close();
    });
  }

  it('cancel on PayPal brings the payer back to the cashier; PayPal is offered on phones too', async () => {
    const context = await browser.newContext(iphone);
    const page = await context.newPage();
    const p = await create();
    await page.goto(`${p.checkout_url}?lang=en`);
    await page.click('[data-channel="paypal"]');
    await page.waitForSelector('[data-sandbox-action="cancel"]');
    await Promise.all([page.waitForURL(`${g.url}/pay/**`), page.click('[data-sandbox-action="cancel"]')]);
    await page.waitForSelector('[data-channel="paypal"]');
    expect((await payment(p.id)).status).toBe('pending');
    await context.close();
  });
});
