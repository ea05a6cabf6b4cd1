import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { axeViolations, haveChromium, launchBrowser } from '../support/browser.ts';
import { startReceiver } from '../support/receiver.ts';

const iphone = {
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
};

/** Elements marked hidden that a style rule still shows (a `display` rule beats the attribute's default). */
const hiddenButShown = (page: Page) =>
  page.evaluate(() => Array.from(document.querySelectorAll('[hidden]')).filter((el) => getComputedStyle(el).display !== 'none').map((el) => el.outerHTML));

const axe = axeViolations;

describe.skipIf(!haveChromium)('hosted cashier in Chromium', () => {
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
    (await g.api('POST', '/v1/payments', { amount: 4200, subject: 'Oolong 乌龙茶', out_trade_no: `ui_${Date.now()}_${++seq}`, return_url: `${shop.url}/done`, ...extra })).body;
  const status = async (id: string) => (await g.api('GET', `/v1/payments/${id}`)).body.status;

  it('completes a redirect channel with JavaScript turned off', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    await page.click('[data-channel="alipay_pc"]');
    await page.waitForSelector('[data-sandbox-action="pay"]');
    await Promise.all([page.waitForURL(`${shop.url}/done**`), page.click('[data-sandbox-action="pay"]')]);
    expect(await status(p.id)).toBe('succeeded');
    await context.close();
  });

  it('shows a QR code on the desktop cashier and moves on by itself once paid', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const p = await create();
    await page.goto(`${p.checkout_url}?lang=en`);
    await page.click('[data-channel="alipay_qr"]');
    await page.waitForSelector('.qr-code svg');
    expect(await axe(page)).toEqual([]);
    const scan = await page.getAttribute('[data-sandbox-action="scan"]', 'href');
    // The customer's phone: the simulator's payer page for that code.
    const phone = await context.newPage();
    await phone.goto(scan!);
    await phone.click('[data-sandbox-action="pay"]');
    await page.waitForURL(`${shop.url}/done**`);
    expect(new URL(page.url()).searchParams.get('payment_id')).toBe(p.id);
    expect(await status(p.id)).toBe('succeeded');
    await context.close();
  });

  it('cancel on the Alipay page brings the payer back to the choice with a line; another channel then pays', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const p = await create();
    await page.goto(`${p.checkout_url}?lang=en`);
    await page.click('[data-channel="alipay_pc"]');
    await page.click('[data-sandbox-action="cancel"]');
    await page.waitForSelector('[data-notice="pending"]');
    expect(new URL(page.url()).pathname).toBe(new URL(p.checkout_url).pathname);
    expect(await page.textContent('[data-notice]')).toContain('The payment with Alipay is not complete');
    expect(await page.locator('[data-channel]').count()).toBeGreaterThan(1);
    expect(await axe(page)).toEqual([]);
    // Another channel: the WeChat Pay QR code, paid from the phone.
    await page.click('[data-channel="wechat_native"]');
    await page.waitForSelector('.qr-code svg');
    const phone = await context.newPage();
    await phone.goto((await page.getAttribute('[data-sandbox-action="scan"]', 'href'))!);
    await phone.click('[data-sandbox-action="pay"]');
    await page.waitForURL(`${shop.url}/done**`);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body).toMatchObject({ status: 'succeeded', channel: 'wechat_native' });
    await context.close();
  }, 60_000);

  it('a QR code that fails on the phone turns into the choice with the reason, live', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const p = await create();
    await page.goto(`${p.checkout_url}?lang=en`);
    await page.click('[data-channel="alipay_qr"]');
    await page.waitForSelector('.qr-code svg');
    const phone = await context.newPage();
    await phone.goto((await page.getAttribute('[data-sandbox-action="scan"]', 'href'))!);
    await phone.click('[data-sandbox-action="fail"]');
    await page.waitForSelector('[data-notice="failed"]');
    expect(await page.textContent('[data-notice]')).toContain('Alipay QR code did not go through');
    expect(await page.locator('[data-channel="alipay_qr"]').count()).toBe(1);
    expect(await axe(page)).toEqual([]);
    await context.close();
  }, 60_000);

  it('pays with Alipay WAP on an iPhone', async () => {
    const context = await browser.newContext(iphone);
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    expect(await page.locator('[data-channel]').evaluateAll((els) => els.map((e) => e.getAttribute('data-channel')))).toContain('alipay_wap');
    expect(await page.locator('[data-channel="alipay_pc"]').count()).toBe(0);
    await page.click('[data-channel="alipay_wap"]');
    await page.waitForSelector('[data-sandbox-action="pay"]');
    await Promise.all([page.waitForURL(`${shop.url}/done**`), page.click('[data-sandbox-action="pay"]')]);
    expect(await status(p.id)).toBe('succeeded');
    await context.close();
  });

  it('has no axe violations, works by keyboard with visible focus, and fits 320 px', async () => {
    const context = await browser.newContext({ viewport: { width: 320, height: 640 } });
    const page = await context.newPage();
    const p = await create();
    for (const lang of ['zh-CN', 'en']) {
      await page.goto(`${p.checkout_url}?lang=${lang}`);
      expect(await axe(page)).toEqual([]);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(320);
    }
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('data-channel') ?? document.activeElement?.tagName);
    expect(focused).toBe('alipay_pc');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe('none');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-sandbox-action="pay"]');
    for (const kind of ['closed', 'not_found']) {
      if (kind === 'closed') {
        const c = await create();
        await g.api('POST', `/v1/payments/${c.id}/close`);
        await page.goto(c.checkout_url);
      } else {
        await page.goto(`${g.url}/pay/${'x'.repeat(32)}`);
      }
      expect(await page.getAttribute('[data-result]', 'data-result')).toBe(kind);
      expect(await axe(page)).toEqual([]);
    }
    await context.close();
  });

  it('the hidden attribute beats every display rule of the cashier\'s styles', async () => {
    const page = await browser.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    expect(await page.evaluate(() => ['button', 'a', 'fieldset', 'p', 'section'].map((tag) => {
      const el = document.createElement(tag);
      el.className = tag === 'a' ? 'button' : 'channel';
      el.hidden = true;
      document.getElementById('main')!.append(el);
      return `${tag}: ${getComputedStyle(el).display}`;
    }))).toEqual(['button: none', 'a: none', 'fieldset: none', 'p: none', 'section: none']);
    await page.close();
  });

  it('the ticking countdown shows hours and days (1:02:05, not 62:05)', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const p = await create({ expires_in: 7200 });
    const expiresAt = Number((await g.deps.db('payments').where({ id: p.id }).first()).expires_at);
    // The page's clock, not the server's: what the text shows then comes from the script alone.
    await page.clock.setFixedTime((expiresAt - 3725) * 1000);
    await page.goto(`${p.checkout_url}?lang=en`);
    await expect.poll(() => page.textContent('time[data-expires-at]')).toBe('1:02:05');
    await page.clock.setFixedTime((expiresAt - 90061) * 1000);
    await page.goto(`${p.checkout_url}?lang=zh-CN`);
    await expect.poll(() => page.textContent('time[data-expires-at]')).toBe('1天 1:01:01');
    await page.clock.setFixedTime((expiresAt - 59) * 1000);
    await page.goto(`${p.checkout_url}?lang=en`);
    await expect.poll(() => page.textContent('time[data-expires-at]')).toBe('0:59');
    await context.close();
  });

  it('cannot be framed by a page on an unregistered origin', async () => {
    const p = await create();
    const evil = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>evil</title><iframe id="f" src="${p.checkout_url}"></iframe>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    await page.waitForTimeout(500);
    const frame = page.frames().find((f) => f !== page.mainFrame())!;
    const framedMerchant = await frame.locator('.merchant-name').count().catch(() => 0);
    expect(framedMerchant).toBe(0);
    await page.close();
    evil.close();
  });
});

describe.skipIf(!haveChromium)('WeChat Pay on the cashier', () => {
  let g: TestGateway;
  let browser: Browser;
  let shop: Awaited<ReturnType<typeof startReceiver>>;
  let seq = 0;
  const wechatUa = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN';

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
    (await g.api('POST', '/v1/payments', { amount: 990, subject: 'Milk tea 奶茶', out_trade_no: `wx_${Date.now()}_${++seq}`, return_url: `${shop.url}/done` })).body;
  const status = async (id: string) => (await g.api('GET', `/v1/payments/${id}`)).body.status;

  it('inside WeChat offers JSAPI, gets the openid by OAuth and pays through the payment sheet', async () => {
    const context = await browser.newContext({ ...iphone, userAgent: wechatUa });
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    expect(await page.locator('[data-channel]').evaluateAll((els) => els.map((e) => e.getAttribute('data-channel')))).toEqual(['wechat_jsapi']);
    expect(await page.locator('[data-guide="open-in-browser"]').count()).toBe(1);
    await page.click('[data-channel="wechat_jsapi"]');
    // The OAuth stand-in sends the payer back with a code; the in-app page then offers the sheet.
    await page.waitForSelector('[data-sandbox-action="inapp"]');
    expect(page.url()).toContain('/authorized');
    // One way to pay: the sheet's retry button stays hidden until the sheet comes back unpaid.
    expect(await page.locator('[data-inapp-pay]').isVisible()).toBe(false);
    expect(await hiddenButShown(page)).toEqual([]);
    expect(await axe(page)).toEqual([]);
    await page.click('[data-sandbox-action="inapp"]');
    await page.click('[data-sandbox-action="pay"]');
    await page.waitForURL(/\/pay\/|\/done/);
    await expect.poll(() => status(p.id)).toBe('succeeded');
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.channel).toBe('wechat_jsapi');
    await context.close();
  });

  it('on a phone browser pays with WeChat H5 and comes back through redirect_url', async () => {
    const context = await browser.newContext(iphone);
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    await page.click('[data-channel="wechat_h5"]');
    await page.waitForSelector('[data-sandbox-action="pay"]');
    await page.click('[data-sandbox-action="pay"]');
    await page.waitForURL(`${shop.url}/done**`);
    expect(await status(p.id)).toBe('succeeded');
    await context.close();
  });

  it('on a desktop shows the WeChat Native QR; the sandbox scan pays it', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const p = await create();
    await page.goto(p.checkout_url);
    await page.click('[data-channel="wechat_native"]');
    await page.waitForSelector('.qr-code svg');
    const scan = await page.getAttribute('[data-sandbox-action="scan"]', 'href');
    expect(scan).toContain('/sandbox/wechatpay/scan?code_url=weixin');
    const phone = await context.newPage();
    await phone.goto(scan!);
    await phone.click('[data-sandbox-action="pay"]');
    await page.waitForURL(`${shop.url}/done**`);
    expect(await status(p.id)).toBe('succeeded');
    await context.close();
  });
});
