/**
 * Cards and Apple Pay in Chromium: a desktop card payment through the cashier, the hosted page
 * (top level) and back to the merchant; the Apple Pay choice shown to Safari on an iPhone whose
 * ApplePaySession can pay, and absent in Chrome.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { haveChromium, launchBrowser } from '../support/browser.ts';
import { startReceiver } from '../support/receiver.ts';

const IPHONE_SAFARI = {
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1',
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
};

describe.skipIf(!haveChromium)('cards and Apple Pay in Chromium', () => {
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
    (await g.api('POST', '/v1/payments', { amount: 4200, subject: 'Card tea', out_trade_no: `e2e_st_${Date.now()}_${++seq}`, return_url: `${shop.url}/done` })).body;
  const status = async (id: string) => (await g.api('GET', `/v1/payments/${id}`)).body.status;

  it('desktop: pays by card on the hosted page and comes back to the merchant', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    expect(await page.locator('[data-channel="apple_pay"]').count()).toBe(0);
    await page.click('[data-channel="card"]');
    await page.waitForSelector('[data-sandbox-action="pay"]');
    expect(page.url()).toContain('/sandbox/stripe/pay/cs_test_');
    await Promise.all([page.waitForURL(`${shop.url}/done**`), page.click('[data-sandbox-action="pay"]')]);
    expect(await status(p.id)).toBe('succeeded');
    await context.close();
  }, 60_000);

  it('Safari on an iPhone with a wallet: the Apple Pay choice shows, and opens the hosted page where Apple Pay pays', async () => {
    const context = await browser.newContext(IPHONE_SAFARI);
    await context.addInitScript(() => {
      (window as unknown as { ApplePaySession: unknown }).ApplePaySession = { canMakePayments: () => true, supportsVersion: () => true };
    });
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    const choice = page.locator('[data-channel="apple_pay"]');
    await choice.waitFor({ state: 'visible' });
    await choice.click();
    await page.waitForSelector('[data-sandbox-action="apple_pay"]');
    await Promise.all([page.waitForURL(`${shop.url}/done**`), page.click('[data-sandbox-action="apple_pay"]')]);
    expect(await status(p.id)).toBe('succeeded');
    expect((await g.deps.db('payment_attempts').where({ payment_id: p.id }).first()).wallet).toBe('apple_pay');
    await context.close();
  }, 60_000);

  it('an iPhone whose ApplePaySession cannot pay, and Chrome, get no Apple Pay choice', async () => {
    const noWallet = await browser.newContext(IPHONE_SAFARI);
    await noWallet.addInitScript(() => {
      (window as unknown as { ApplePaySession: unknown }).ApplePaySession = { canMakePayments: () => false };
    });
    const page = await noWallet.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    await page.waitForLoadState('load');
    expect(await page.locator('[data-channel="card"]').isVisible()).toBe(true);
    expect(await page.locator('[data-channel="apple_pay"]').isVisible()).toBe(false);
    await noWallet.close();
    const chrome = await browser.newContext();
    const page2 = await chrome.newPage();
    await page2.goto(p.checkout_url);
    await page2.waitForLoadState('load');
    expect(await page2.locator('[data-channel="apple_pay"]').count()).toBe(0);
    await chrome.close();
  }, 60_000);
});
