import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { axeViolations, haveChromium, launchBrowser } from '../support/browser.ts';
import { startReceiver } from '../support/receiver.ts';
import { readQrInPage } from '../support/qr.ts';

const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
const agents = {
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  wechat: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN',
  alipay: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Ariver/1.1.0 AliApp(AP/10.5.30.8000) Nebula WK RVKType(0) AlipayDefined(nt:WIFI,ws:390|844|3.0) AlipayClient/10.5.30.8000 Language/zh-Hans Region/CN NebulaX/1.0.0',
};

const axe = axeViolations;

describe.skipIf(!haveChromium)('one QR code for every wallet (聚合码)', () => {
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
    (await g.api('POST', '/v1/payments', { amount: 1800, subject: 'Pu-erh 普洱茶', out_trade_no: `agg_${Date.now()}_${++seq}`, return_url: `${shop.url}/done` })).body;
  const payment = async (id: string) => (await g.api('GET', `/v1/payments/${id}`)).body;
  const channelsOn = (page: Page) => page.locator('[data-channel]').evaluateAll((els) => els.map((e) => e.getAttribute('data-channel')));

  /** The desktop cashier with the aggregate QR code beside the choice; what a phone reads from it. */
  async function desktopCashier(context: BrowserContext, p: { checkout_url: string }, lang = 'en') {
    const page = await context.newPage();
    await page.goto(`${p.checkout_url}?lang=${lang}`);
    const figure = page.locator('[data-aggregate-qr]');
    await figure.waitFor();
    const scanned = await readQrInPage(page, { selector: '[data-aggregate-qr] img' });
    return { page, figure, scanned };
  }

  it('the desktop cashier shows the code beside the channel choice, with the line naming the wallets', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p = await create();
    const { page, figure, scanned } = await desktopCashier(context, p);
    expect(scanned).toBe(p.checkout_url);
    expect(await figure.locator('figcaption').textContent()).toBe('Scan with WeChat or Alipay');
    const qr = (await figure.locator('img').boundingBox())!;
    const buttons = (await page.locator('[data-channel]').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON()))) as DOMRect[];
    expect(buttons.length).toBeGreaterThan(1);
    // Beside: right of every button, level with the buttons, and a size a phone reads from a screen.
    for (const b of buttons) expect(qr.x).toBeGreaterThanOrEqual(b.x + b.width);
    expect(qr.y).toBeLessThan(buttons.at(-1)!.y + buttons.at(-1)!.height);
    expect(qr.y + qr.height).toBeGreaterThan(buttons[0].y);
    expect(qr.width).toBeGreaterThanOrEqual(128);
    expect(await page.evaluate(() => document.documentElement.scrollWidth - innerWidth)).toBeLessThanOrEqual(0);
    expect(await axe(page)).toEqual([]);
    await page.goto(`${p.checkout_url}?lang=zh-CN`);
    expect(await page.locator('[data-aggregate-qr] figcaption').textContent()).toBe('用微信或支付宝扫码');
    expect(await axe(page)).toEqual([]);
    await context.close();
  });

  it('scanned in WeChat: the cashier inside WeChat offers WeChat Pay only and pays by JSAPI; the desktop moves on too', async () => {
    const desktop = await browser.newContext();
    const p = await create();
    const { page, scanned } = await desktopCashier(desktop, p);
    const wechat = await browser.newContext({ ...phone, userAgent: agents.wechat });
    const inApp = await wechat.newPage();
    await inApp.goto(scanned!);
    expect(await channelsOn(inApp)).toEqual(['wechat_jsapi']);
    expect(await inApp.locator('[data-aggregate-qr]').count()).toBe(0);
    await inApp.click('[data-channel="wechat_jsapi"]');
    // Through the OAuth (the payer's openid) to the in-app page, whose sheet the simulator stands in for.
    await inApp.waitForSelector('[data-sandbox-action="inapp"]');
    expect(new URL(inApp.url()).pathname).toMatch(/\/authorized$/);
    await inApp.click('[data-sandbox-action="inapp"]');
    await Promise.all([inApp.waitForURL(`${shop.url}/done**`), inApp.click('[data-sandbox-action="pay"]')]);
    expect(new URL(inApp.url()).searchParams.get('payment_id')).toBe(p.id);
    expect(await payment(p.id)).toMatchObject({ status: 'succeeded', channel: 'wechat_jsapi' });
    // The desktop page that showed the code hears of the payment and goes on by itself.
    await page.waitForURL(`${shop.url}/done**`);
    await wechat.close();
    await desktop.close();
  }, 60_000);

  it('scanned in Alipay: the cashier inside Alipay offers Alipay WAP only and pays there; the desktop moves on too', async () => {
    const desktop = await browser.newContext();
    const p = await create();
    const { page, scanned } = await desktopCashier(desktop, p, 'zh-CN');
    const alipay = await browser.newContext({ ...phone, userAgent: agents.alipay });
    const inApp = await alipay.newPage();
    await inApp.goto(scanned!);
    expect(await channelsOn(inApp)).toEqual(['alipay_wap']);
    expect(await inApp.locator('[data-guide]').count()).toBe(0);
    expect(await inApp.locator('[data-aggregate-qr]').count()).toBe(0);
    await inApp.click('[data-channel="alipay_wap"]');
    await inApp.waitForSelector('[data-sandbox-action="pay"]');
    await Promise.all([inApp.waitForURL(`${shop.url}/done**`), inApp.click('[data-sandbox-action="pay"]')]);
    expect(new URL(inApp.url()).searchParams.get('payment_id')).toBe(p.id);
    expect(await payment(p.id)).toMatchObject({ status: 'succeeded', channel: 'alipay_wap' });
    await page.waitForURL(`${shop.url}/done**`);
    await alipay.close();
    await desktop.close();
  }, 60_000);

  it('not on a phone, and not fetched where a desktop window is phone-narrow', async () => {
    const p = await create();
    const iphone = await browser.newContext({ ...phone, userAgent: agents.iphone });
    const page = await iphone.newPage();
    await page.goto(p.checkout_url);
    expect(await channelsOn(page)).toContain('alipay_wap');
    expect(await page.locator('[data-aggregate-qr]').count()).toBe(0);
    await iphone.close();

    const narrow = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const small = await narrow.newPage();
    const requested: string[] = [];
    small.on('request', (r) => requested.push(new URL(r.url()).pathname));
    await small.goto(p.checkout_url);
    await small.waitForLoadState('networkidle');
    expect(await small.locator('[data-aggregate-qr]').isVisible()).toBe(false);
    expect(requested.filter((path) => path.endsWith('/qr.svg'))).toEqual([]);
    expect(await small.evaluate(() => document.documentElement.scrollWidth - innerWidth)).toBeLessThanOrEqual(0);
    // Widened to a desktop's size, the same page shows it.
    await small.setViewportSize({ width: 1024, height: 768 });
    await expect.poll(() => small.locator('[data-aggregate-qr] img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBeGreaterThan(0);
    expect(requested.filter((path) => path.endsWith('/qr.svg'))).toHaveLength(1);
    await narrow.close();
  });
});
