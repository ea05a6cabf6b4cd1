import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Frame, Page } from 'playwright-core';
import { build } from 'vite';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { haveChromium, launchBrowser } from '../support/browser.ts';
import { createApp as createMerchantApp } from '../../server/apps/service.ts';
import { startShop, type Shop } from '../../examples/shop/server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

async function listen(app: http.RequestListener, port = 0): Promise<{ url: string; server: http.Server }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Stands in for the cashier (and, on a second port, for a hostile frame): logs what it receives. */
function stubCashierApp(log: Array<{ page: string; origin: string; data: any }>) {
  const app = express();
  app.get('/stub', (_req, res) => {
    res.type('html').send(`<!doctype html><title>Stub cashier</title><h1>Stub cashier</h1><button>Inside the frame</button>
<script>
  const parentOrigin = new URLSearchParams(location.search).get('parent_origin');
  window.received = [];
  addEventListener('message', (e) => {
    if (e.origin !== parentOrigin || e.source !== parent) return;
    received.push(e.data);
    fetch('/log', { method: 'POST', headers: { 'content-type': 'application/json' }, keepalive: true,
      body: JSON.stringify({ page: location.href, origin: e.origin, data: e.data }) });
  });
  window.send = (msg) => parent.postMessage({ source: 'checkstand', ...msg }, parentOrigin);
  window.sendAnywhere = (msg) => parent.postMessage({ source: 'checkstand', ...msg }, '*');
</script>`);
  });
  app.post('/log', express.json(), (req, res) => {
    log.push(req.body);
    res.status(204).end();
  });
  return app;
}

describe.skipIf(!haveChromium)('checkout widget in Chromium', () => {
  let g: TestGateway;
  let browser: Browser;
  let widgetJs: string;
  let parent: { url: string; server: http.Server };
  let cashier: { url: string; server: http.Server };
  let evil: { url: string; server: http.Server };
  let merchant: { app_id: string; secret_key: string };
  const pages = new Map<string, string>();
  const stubLog: Array<{ page: string; origin: string; data: any }> = [];

  beforeAll(async () => {
    if (!fs.existsSync(path.join(ROOT, 'public/build/manifest.json'))) {
      await build({ root: ROOT, configFile: path.join(ROOT, 'vite.config.ts'), logLevel: 'warn' });
    }
    g = await startTestGateway();
    widgetJs = `${g.url}/widget.js`;
    const parentApp = express();
    parentApp.get('/:name', (req, res, next) => {
      const html = pages.get(req.params.name);
      if (html === undefined) return next();
      res.type('html').send(html);
    });
    parent = await listen(parentApp);
    cashier = await listen(stubCashierApp(stubLog));
    evil = await listen(stubCashierApp([]));
    // The parent page's origin is a registered origin of this app: the real cashier lets it frame.
    merchant = await createMerchantApp(g.deps.db, { name: 'Widget Shop', origins: [parent.url] });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    for (const s of [parent, cashier, evil]) s?.server.close();
    await g?.close();
  });

  /** A merchant page: the element (unless given none), event recording, and the classic script. */
  function merchantPage(name: string, opts: { url?: string; mode?: string; followReturn?: boolean; extra?: string } = {}): string {
    const el = opts.url
      ? `<checkstand-checkout id="pay" checkout-url="${opts.url}" mode="${opts.mode ?? 'auto'}"${opts.followReturn ? ' follow-return' : ''}>Pay ¥12.34</checkstand-checkout>`
      : '';
    pages.set(name, `<!doctype html><html lang="en"><title>Merchant</title>
<button id="before">Before</button> ${el} <button id="after">After</button>
${opts.extra ?? ''}
<script>
  window.events = [];
  for (const n of ['checkstand-success', 'checkstand-close', 'checkstand-error'])
    document.addEventListener(n, (e) => events.push({ type: n, detail: e.detail }));
</script>
<script src="${widgetJs}"></script></html>`);
    return `${parent.url}/${name}`;
  }

  async function createPayment(): Promise<{ id: string; checkout_url: string }> {
    const res = await fetch(`${g.url}/v1/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${merchant.secret_key}`, 'content-type': 'application/json', 'idempotency-key': crypto.randomUUID() },
      body: JSON.stringify({ amount: 1234, subject: 'Widget tea', out_trade_no: `w_${crypto.randomUUID()}` }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { id: string; checkout_url: string };
  }

  /** The element of the focused node, through shadow roots: "before", "pay:button", "pay:close-button", … */
  const focused = (page: Page) =>
    page.evaluate(() => {
      let el = document.activeElement;
      const path: string[] = [];
      while (el) {
        path.push(el.id || el.getAttribute('part') || el.tagName.toLowerCase());
        el = el.shadowRoot?.activeElement ?? null;
      }
      return path.join(':');
    });

  const events = (page: Page) => page.evaluate(() => (window as any).events as Array<{ type: string; detail: any }>);
  /** The cashier frame of a widget (the element #pay, or the one Checkstand.open added), once loaded. */
  async function widgetFrame(page: Page, host = 'checkstand-checkout'): Promise<Frame> {
    await page.waitForFunction((h) => !!document.querySelector(h)?.shadowRoot?.querySelector('iframe')?.src.includes('embed=1'), host);
    const frame = (await (await page.locator(`${host} iframe`).elementHandle())!.contentFrame())!;
    await frame.waitForFunction(() => Array.isArray((window as any).received) || !!document.querySelector('.merchant-name'));
    return frame;
  }

  it('opens the real cashier in a modal on desktop, closes on Escape and gives focus back', async () => {
    const payment = await createPayment();
    const page = await browser.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy|frame-ancestors/i.test(m.text())) cspErrors.push(m.text()); });
    await page.goto(merchantPage('desktop', { url: payment.checkout_url, mode: 'auto' }));
    await page.click('#pay');
    const dialog = page.getByRole('dialog');
    await expect(dialog.getAttribute('aria-modal')).resolves.toBe('true');
    await expect(dialog.getAttribute('aria-label')).resolves.toBe('Checkout');
    expect(await dialog.isVisible()).toBe(true);
    const frame = page.frameLocator('#pay iframe');
    // The cashier renders inside: its CSP frame-ancestors lists this page's origin.
    await expect(frame.locator('.merchant-name').textContent()).resolves.toContain('Widget Shop');
    const src = await page.locator('#pay iframe').getAttribute('src');
    expect(src).toBe(`${payment.checkout_url}?embed=1&parent_origin=${encodeURIComponent(parent.url)}`);
    expect(cspErrors).toEqual([]);

    expect(await focused(page)).toBe('pay:close-button');
    await page.keyboard.press('Escape');
    await page.locator('#pay dialog').waitFor({ state: 'hidden' });
    expect(await focused(page)).toBe('pay:button');
    expect(await events(page)).toEqual([{ type: 'checkstand-close', detail: {} }]);

    // Reopens with a fresh cashier; the close button works like Escape.
    await page.click('#pay');
    await expect(frame.locator('.merchant-name').textContent()).resolves.toContain('Widget Shop');
    await page.click('#pay [part=close-button]');
    await page.locator('#pay dialog').waitFor({ state: 'hidden' });
    expect(await focused(page)).toBe('pay:button');

    // Escape pressed inside the cashier never reaches this page: the cashier forwards it as 'close'.
    const cashierFrame = (await (await page.locator('#pay iframe').elementHandle())!.contentFrame())!;
    await cashierFrame.evaluate(() => ((window as any).stale = true));
    await page.click('#pay');
    await cashierFrame.waitForFunction(() => !(window as any).stale && document.readyState === 'complete' && location.href.includes('embed=1'));
    await frame.locator('.merchant-name').click();
    expect(await focused(page)).toBe('pay:frame');
    await page.keyboard.press('Escape');
    await page.locator('#pay dialog').waitFor({ state: 'hidden' });
    expect(await focused(page)).toBe('pay:button');
    expect((await events(page)).map((e) => e.type)).toEqual(['checkstand-close', 'checkstand-close', 'checkstand-close']);
    await page.close();
  });

  it('hears the real cashier: a QR payment made meanwhile closes the modal with checkstand-success', async () => {
    const payment = await createPayment();
    const page = await browser.newPage();
    await page.goto(merchantPage('real-success', { url: payment.checkout_url, mode: 'modal' }));
    await page.click('#pay');
    const cashierFrame = page.frameLocator('#pay iframe');
    await cashierFrame.locator('[data-channel="wechat_native"]').click();
    await cashierFrame.locator('[data-sandbox-action="scan"]').waitFor();
    // The customer's phone pays (the test helper drives the simulator and its real notify).
    const sim = await fetch(`${g.url}/v1/test_helpers/payments/${payment.id}/simulate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${merchant.secret_key}`, 'content-type': 'application/json', 'idempotency-key': crypto.randomUUID() },
      body: JSON.stringify({ channel: 'wechat_native' }),
    });
    expect(sim.status).toBe(200);
    await expect.poll(() => events(page), { timeout: 15_000 }).toEqual([{ type: 'checkstand-success', detail: { paymentId: payment.id, status: 'succeeded' } }]);
    await page.locator('#pay dialog').waitFor({ state: 'hidden' });
    expect(await focused(page)).toBe('pay:button');
    await page.close();
  });

  // The QR view is the tallest cashier page: all of it, down to "choose another method", must be
  // inside the frame without scrolling, in the desktop modal and at phone sizes.
  const sizes = [[1280, 720, 'en-US'], [1024, 640, 'zh-CN'], [320, 568, 'en-US'], [320, 568, 'zh-CN'], [375, 667, 'zh-CN'], [390, 844, 'en-US']] as const;
  for (const [width, height, locale] of sizes) {
    const viewport = { width, height };
    it(`the QR view fits the modal's frame at ${width}×${height} (${locale}), "choose another method" included`, async () => {
      const payment = await createPayment();
      const page = await browser.newPage({ viewport, locale });
      await page.goto(merchantPage(`qr-${width}-${height}-${locale}`, { url: payment.checkout_url, mode: 'modal' }));
      await page.click('#pay');
      const cashierFrame = page.frameLocator('#pay iframe');
      await cashierFrame.locator('[data-channel="wechat_native"]').click();
      await cashierFrame.locator('.qr-code svg').waitFor();
      const frameBox = (await page.locator('#pay iframe').boundingBox())!;
      for (const selector of ['.qr-code svg', '.amount', '[data-sandbox-action="scan"]', `a[href^="/pay/"]:not([data-sandbox-action])`]) {
        const box = (await cashierFrame.locator(selector).last().boundingBox())!;
        expect(box.y, selector).toBeGreaterThanOrEqual(frameBox.y);
        expect(box.y + box.height, selector).toBeLessThanOrEqual(frameBox.y + frameBox.height);
        expect(box.x + box.width, selector).toBeLessThanOrEqual(frameBox.x + frameBox.width);
      }
      // Still a code a phone scans from a screen.
      expect((await cashierFrame.locator('.qr-code svg').boundingBox())!.width).toBeGreaterThanOrEqual(128);
      // Nothing to scroll to: the page is no taller than the frame.
      const frame = (await (await page.locator('#pay iframe').elementHandle())!.contentFrame())!;
      expect(await frame.evaluate(() => document.documentElement.scrollHeight - innerHeight)).toBeLessThanOrEqual(0);
      expect(await frame.evaluate(() => document.documentElement.scrollWidth - innerWidth)).toBeLessThanOrEqual(0);
      await page.close();
    }, 60_000);
  }

  // The channel choice shows the aggregate QR code beside it where the frame has room (the desktop
  // modal), and not in the compact frame of a phone-sized screen.
  const choiceSizes = [[1280, 720, true], [1024, 640, true], [320, 568, false], [390, 844, false]] as const;
  for (const [width, height, shown] of choiceSizes) {
    it(`the channel choice in the modal at ${width}×${height} ${shown ? 'shows the aggregate QR code, all inside the frame' : 'has no aggregate QR code'}`, async () => {
      const payment = await createPayment();
      const page = await browser.newPage({ viewport: { width, height } });
      await page.goto(merchantPage(`choice-${width}-${height}`, { url: payment.checkout_url, mode: 'modal' }));
      await page.click('#pay');
      const cashierFrame = page.frameLocator('#pay iframe');
      await cashierFrame.locator('[data-channel]').first().waitFor();
      const qr = cashierFrame.locator('[data-aggregate-qr]');
      expect(await qr.isVisible()).toBe(shown);
      if (shown) {
        const frameBox = (await page.locator('#pay iframe').boundingBox())!;
        for (const selector of ['[data-aggregate-qr] img', '[data-aggregate-qr] figcaption', '[data-channel]']) {
          const box = (await cashierFrame.locator(selector).last().boundingBox())!;
          expect(box.y + box.height, selector).toBeLessThanOrEqual(frameBox.y + frameBox.height);
          expect(box.x + box.width, selector).toBeLessThanOrEqual(frameBox.x + frameBox.width);
        }
        expect((await cashierFrame.locator('[data-aggregate-qr] img').boundingBox())!.width).toBeGreaterThanOrEqual(128);
      }
      const frame = (await (await page.locator('#pay iframe').elementHandle())!.contentFrame())!;
      expect(await frame.evaluate(() => document.documentElement.scrollWidth - innerWidth)).toBeLessThanOrEqual(0);
      await page.close();
    }, 60_000);
  }

  it('traps focus in the modal and fills a 320 px wide screen', async () => {
    const page = await browser.newPage({ viewport: { width: 320, height: 640 } });
    await page.goto(merchantPage('narrow', { url: `${cashier.url}/stub`, mode: 'modal' }));
    await page.click('#pay');
    await (await widgetFrame(page, '#pay')).waitForFunction(() => (window as any).received.length > 0);
    // showModal() makes the rest of the page inert: Tab and Shift+Tab cycle through the close
    // button and the cashier, and past the ends only to the browser's own UI ("body" headless),
    // never to the page's controls.
    const seen = new Set<string>();
    for (const key of ['Tab', 'Tab', 'Tab', 'Tab', 'Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab']) {
      await page.keyboard.press(key);
      const where = await focused(page);
      seen.add(where.replace(/^pay:frame.*/, 'pay:frame'));
    }
    expect([...seen].sort()).toEqual(['body', 'pay:close-button', 'pay:frame']);
    const box = (await page.locator('#pay dialog').boundingBox())!;
    const frameBox = (await page.locator('#pay iframe').boundingBox())!;
    expect([box.x, box.y, box.width, box.height]).toEqual([0, 0, 320, 640]);
    expect(frameBox.width).toBe(320);
    expect(frameBox.height).toBeGreaterThan(560);
    await page.close();
  });

  it('Checkstand.open resolves on the cashier\'s success, after hello; the modal closes with closing', async () => {
    const page = await browser.newPage();
    await page.goto(merchantPage('open-success'));
    await page.focus('#before');
    const result = page.evaluate((url) => (window as any).Checkstand.open(url), `${cashier.url}/stub?lang=en`);
    const frame = await widgetFrame(page);
    expect(frame.url()).toBe(`${cashier.url}/stub?lang=en&embed=1&parent_origin=${encodeURIComponent(parent.url)}`);
    await frame.waitForFunction(() => (window as any).received.some((m: any) => m.type === 'hello'));
    expect(await frame.evaluate(() => (window as any).received)).toEqual([{ source: 'checkstand-widget', type: 'hello' }]);
    await frame.evaluate(() => (window as any).send({ type: 'ready' }));
    await frame.evaluate(() => (window as any).send({ type: 'success', paymentId: 'pay_123', status: 'succeeded' }));
    await expect(result).resolves.toEqual({ status: 'succeeded', paymentId: 'pay_123' });
    expect(await events(page)).toEqual([{ type: 'checkstand-success', detail: { paymentId: 'pay_123', status: 'succeeded' } }]);
    // After the success screen's moment the modal closes (no checkstand-close) and the element goes.
    await page.waitForFunction(() => !document.querySelector('checkstand-checkout'), undefined, { timeout: 5000 });
    expect(await focused(page)).toBe('before');
    expect((await events(page)).map((e) => e.type)).toEqual(['checkstand-success']);
    await expect.poll(() => stubLog.filter((l) => l.page.includes('lang=en')).map((l) => l.data.type)).toEqual(['hello', 'closing']);
    expect(stubLog.every((l) => l.origin === parent.url)).toBe(true);
    await page.close();
  });

  it('Checkstand.open resolves closed when the cashier closes, and rejects on its error', async () => {
    const page = await browser.newPage();
    await page.goto(merchantPage('open-close'));
    const closed = page.evaluate((url) => (window as any).Checkstand.open(url), `${cashier.url}/stub`);
    let frame = await widgetFrame(page);
    await frame.waitForFunction(() => (window as any).received.length > 0);
    await frame.evaluate(() => (window as any).send({ type: 'close' }));
    await expect(closed).resolves.toEqual({ status: 'closed' });
    await page.waitForFunction(() => !document.querySelector('checkstand-checkout'));

    const failed = page.evaluate((url) => (window as any).Checkstand.open(url).then(() => 'resolved', (e: Error) => e.message), `${cashier.url}/stub`);
    frame = await widgetFrame(page);
    await frame.waitForFunction(() => (window as any).received.length > 0);
    await frame.evaluate(() => (window as any).send({ type: 'error', message: 'This payment has expired' }));
    await expect(failed).resolves.toBe('This payment has expired');
    expect((await events(page)).at(-1)).toEqual({ type: 'checkstand-error', detail: { message: 'This payment has expired' } });

    await expect(page.evaluate(() => (window as any).Checkstand.open('javascript:alert(1)').catch((e: Error) => e.message))).resolves.toBe('Invalid checkout-url');
    await page.close();
  });

  it('ignores messages from another origin, another frame of the cashier\'s origin, or the page itself', async () => {
    const page = await browser.newPage();
    await page.goto(merchantPage('hostile', {
      url: `${cashier.url}/stub`,
      mode: 'modal',
      extra: `<iframe id="evil" src="${evil.url}/stub?parent_origin=${encodeURIComponent(parent.url)}"></iframe>
<iframe id="twin" name="twin" src="${cashier.url}/stub?parent_origin=${encodeURIComponent(parent.url)}"></iframe>`,
    }));
    await page.click('#pay');
    const frame = await widgetFrame(page, '#pay');
    await frame.waitForFunction(() => (window as any).received.length > 0);
    const evilFrame = page.frames().find((f) => f.url().startsWith(evil.url))!;
    const twin = page.frames().find((f) => f.name() === 'twin')!;
    // A page on another origin (the port differs), posting to any origin or exactly to ours.
    await evilFrame.evaluate(() => (window as any).sendAnywhere({ type: 'success', paymentId: 'pay_forged' }));
    await evilFrame.evaluate(() => (window as any).send({ type: 'success', paymentId: 'pay_forged' }));
    // The cashier's own origin, but not the window the widget framed.
    await twin.evaluate(() => (window as any).send({ type: 'success', paymentId: 'pay_twin' }));
    // The merchant page itself (any script on it, a third-party one included).
    await page.evaluate(() => window.postMessage({ source: 'checkstand', type: 'success', paymentId: 'pay_self' }, '*'));
    await page.waitForTimeout(400);
    expect(await events(page)).toEqual([]);
    expect(await page.locator('#pay dialog').isVisible()).toBe(true);

    // The framed cashier is heard: the listener was live all along.
    await frame.evaluate(() => (window as any).send({ type: 'success', paymentId: 'pay_real' }));
    await expect.poll(() => events(page)).toEqual([{ type: 'checkstand-success', detail: { paymentId: 'pay_real', status: 'succeeded' } }]);
    await page.close();
  });

  it('follows the return_url after a success when told to', async () => {
    const page = await browser.newPage();
    pages.set('thanks', '<!doctype html><title>Thanks</title><h1 id="thanks">Thanks</h1>');
    await page.goto(merchantPage('follow', { url: `${cashier.url}/stub`, mode: 'modal', followReturn: true }));
    await page.click('#pay');
    const frame = await widgetFrame(page, '#pay');
    await frame.waitForFunction(() => (window as any).received.length > 0);
    await Promise.all([
      page.waitForURL(`${parent.url}/thanks`),
      frame.evaluate((u) => (window as any).send({ type: 'success', paymentId: 'pay_1', returnUrl: u }), `${parent.url}/thanks`),
    ]);
    await page.close();
  });

  it('mode=redirect navigates the top level to the checkout URL', async () => {
    const page = await browser.newPage();
    await page.goto(merchantPage('redirect', { url: `${cashier.url}/stub?x=1`, mode: 'redirect' }));
    await Promise.all([page.waitForURL(`${cashier.url}/stub?x=1`), page.click('#pay')]);
    await page.close();
  });

  it('mode=auto redirects on an iPhone', async () => {
    const context = await browser.newContext({ userAgent: IPHONE, viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    await page.goto(merchantPage('iphone', { url: `${cashier.url}/stub`, mode: 'auto' }));
    await Promise.all([page.waitForURL(`${cashier.url}/stub`), page.click('#pay')]);
    await context.close();
  });
});

describe.skipIf(!haveChromium)('demo shop in Chromium', () => {
  let g: TestGateway;
  let browser: Browser;
  let shop: Shop;
  let shopKey: string;

  beforeAll(async () => {
    if (!fs.existsSync(path.join(ROOT, 'public/build/manifest.json'))) {
      await build({ root: ROOT, configFile: path.join(ROOT, 'vite.config.ts'), logLevel: 'warn' });
    }
    g = await startTestGateway();
    // The shop's origin must be registered before it starts (it registers its webhook with the
    // app's key), so pick a free port first.
    const probe = await listen(() => undefined);
    const port = Number(new URL(probe.url).port);
    await new Promise((r) => probe.server.close(r));
    const app = await createMerchantApp(g.deps.db, { name: 'Teahouse', origins: [`http://127.0.0.1:${port}`] });
    shopKey = app.secret_key;
    shop = await startShop({ gatewayUrl: g.url, secretKey: shopKey, port });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await shop?.close();
    await g?.close();
  });

  it('the whole desktop story: modal, WeChat QR, sandbox scan, success closes the modal, the order turns paid by webhook', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(shop.url);
    await Promise.all([page.waitForURL(/\/orders\/ord_/), page.click('[data-buy="sample"]')]);
    await page.waitForFunction(() => !!customElements.get('checkstand-checkout'));
    await page.evaluate(() => {
      (window as any).__events = [];
      for (const type of ['checkstand-success', 'checkstand-close', 'checkstand-error']) {
        document.addEventListener(type, (e) => (window as any).__events.push(type + ':' + JSON.stringify((e as CustomEvent).detail ?? null)));
      }
    });
    await page.click('checkstand-checkout');
    const cashierFrame = page.frameLocator('checkstand-checkout iframe');
    await cashierFrame.locator('[data-channel="wechat_native"]').click();
    await cashierFrame.locator('.qr-code svg').waitFor();
    const scan = await cashierFrame.locator('[data-sandbox-action="scan"]').getAttribute('href');
    // The customer's phone scans the code: the WeChat simulator's payer page.
    const phone = await context.newPage();
    await phone.goto(scan!);
    await phone.click('[data-sandbox-action="pay"]');
    await page.locator('checkstand-checkout dialog').waitFor({ state: 'hidden', timeout: 20_000 });
    const events: string[] = await page.evaluate(() => (window as any).__events);
    expect(events.some((e) => e.startsWith('checkstand-success:'))).toBe(true);
    await page.locator('#order-status[data-status="paid"]').waitFor({ timeout: 20_000 });
    const order = [...shop.orders.values()].at(-1)!;
    expect((await (await fetch(`${g.url}/v1/payments/${order.paymentId}`, { headers: { authorization: `Bearer ${shopKey}` } })).json())).toMatchObject({ status: 'succeeded', channel: 'wechat_native' });
    await context.close();
  });

  it('embeds the pinned widget under its CSP, and marks the order paid from the verified webhook', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(shop.url);
    await Promise.all([page.waitForURL(/\/orders\/ord_/), page.click('[data-buy="sample"]')]);
    const script = page.locator('script[integrity]');
    expect(await script.getAttribute('src')).toMatch(/\/widget\/\d+\.\d+\.\d+-[0-9a-f]+\/widget\.js$/);
    expect(await script.getAttribute('integrity')).toMatch(/^sha384-/);
    // The integrity check passed: the element is defined.
    await page.waitForFunction(() => !!customElements.get('checkstand-checkout'));
    await page.click('checkstand-checkout');
    await expect(page.frameLocator('checkstand-checkout iframe').locator('.merchant-name').textContent()).resolves.toContain('Teahouse');
    await page.keyboard.press('Escape');
    await page.locator('checkstand-checkout dialog').waitFor({ state: 'hidden' });
    expect(problems).toEqual([]);
    expect(await page.locator('#order-status').getAttribute('data-status')).toBe('pending');

    // The customer pays (the test helper drives the sandbox channel and its real notify); only
    // the verified payment.succeeded webhook turns the order paid, and the page's poll shows it.
    const order = [...shop.orders.values()].at(-1)!;
    const sim = await fetch(`${g.url}/v1/test_helpers/payments/${order.paymentId}/simulate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${shopKey}`, 'content-type': 'application/json', 'idempotency-key': crypto.randomUUID() },
      body: JSON.stringify({ channel: 'alipay_pc' }),
    });
    expect(sim.status).toBe(200);
    await page.locator('#order-status[data-status="paid"]').waitFor({ timeout: 20_000 });
    expect(await page.locator('#order-status').textContent()).toBe('Paid');
    expect(await page.locator('checkstand-checkout').count()).toBe(0);
    await page.close();
  });
});
