import express from 'express';
import QRCode from 'qrcode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { haveChromium, launchBrowser } from '../support/browser.ts';
import { readQrInPage, svgModules } from '../support/qr.ts';
import { createCheckoutRoutes } from '../../server/checkout/routes.ts';
import { cashierRateLimit } from '../../server/http/rate-limit.ts';

let g: TestGateway;
let seq = 0;
const agents = {
  desktop: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  wechat: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN',
  alipay: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Ariver/1.1.0 AliApp(AP/10.5.30.8000) Nebula WK RVKType(0) AlipayDefined(nt:WIFI,ws:390|844|3.0) AlipayClient/10.5.30.8000 Language/zh-Hans Region/CN NebulaX/1.0.0',
};

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(async () => {
  await g?.close();
});

const create = async (extra: Record<string, unknown> = {}) =>
  (await g.api('POST', '/v1/payments', { amount: 2500, subject: 'Jasmine tea 茉莉花茶', out_trade_no: `aq_${Date.now()}_${++seq}`, ...extra })).body;
const qrOf = (p: { checkout_url: string }) => fetch(`${p.checkout_url}/qr.svg`);

describe('GET /pay/:token/qr.svg, the aggregate QR code', () => {
  it('is an SVG of exactly the checkout URL: the same modules the encoder makes for it', async () => {
    const p = await create();
    const res = await qrOf(p);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
    const svg = await res.text();
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" [^>]*viewBox="0 0 \d+ \d+"[^>]*>[\s\S]*<\/svg>\s*$/);
    expect(svg).not.toMatch(/<script|\son[a-z]+=/i);
    const modules = svgModules(svg, 2);
    const expected = QRCode.create(p.checkout_url, { errorCorrectionLevel: 'M' }).modules;
    expect(modules.length).toBe(expected.size);
    const rows = Array.from({ length: expected.size }, (_, y) => Array.from({ length: expected.size }, (_, x) => (expected.get(y, x) ? 1 : 0)));
    expect(modules).toEqual(rows);
    // The comparison tells URLs apart: a URL one character off has other modules.
    const other = QRCode.create(p.checkout_url.replace(/.$/, (c: string) => (c === 'A' ? 'B' : 'A')), { errorCorrectionLevel: 'M' }).modules;
    expect(Array.from(other.data)).not.toEqual(rows.flat());
  });

  it('carries the cashier\'s security headers, and cache headers for bytes that never change until the payment expires', async () => {
    const p = await create({ expires_in: 3600 });
    const res = await qrOf(p);
    const page = await fetch(p.checkout_url);
    for (const name of ['content-security-policy', 'x-content-type-options', 'cross-origin-resource-policy', 'referrer-policy', 'strict-transport-security', 'cross-origin-opener-policy']) {
      expect(res.headers.get(name), name).toBeTruthy();
      expect(res.headers.get(name)?.replace(/'nonce-[^']+'/g, ''), name).toBe(page.headers.get(name)?.replace(/'nonce-[^']+'/g, '').replace(/frame-ancestors [^;]*/, "frame-ancestors 'none'"));
    }
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self' 'nonce-");
    const cache = res.headers.get('cache-control')!;
    const maxAge = Number(/^public, max-age=(\d+), immutable$/.exec(cache)?.[1]);
    expect(maxAge).toBeGreaterThan(3500);
    expect(maxAge).toBeLessThanOrEqual(3600);
    expect(res.headers.get('set-cookie')).toBeNull();
    // A HEAD says the same without the body.
    const head = await fetch(`${p.checkout_url}/qr.svg`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
  });

  it('answers 404 for an unknown or malformed token, never cached', async () => {
    for (const t of ['A'.repeat(32), 'short', '..%2F..%2Fetc']) {
      const res = await fetch(`${g.url}/pay/${t}/qr.svg`);
      expect(res.status, t).toBe(404);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(await res.text()).not.toContain('<svg');
    }
  });

  it('answers 410 once the payment can no longer be paid: paid, closed or expired', async () => {
    const paid = await create();
    expect((await g.api('POST', `/v1/test_helpers/payments/${paid.id}/simulate`, { channel: 'alipay_pc', outcome: 'pay', notify: 'normal' })).status).toBe(200);
    await expect.poll(async () => (await g.api('GET', `/v1/payments/${paid.id}`)).body.status).toBe('succeeded');
    const closed = await create();
    expect((await g.api('POST', `/v1/payments/${closed.id}/close`, {})).status).toBe(200);
    const expired = await create();
    expect((await qrOf(expired)).status).toBe(200);
    await g.deps.db('payments').where({ id: expired.id }).update({ expires_at: Math.floor(Date.now() / 1000) - 1 });
    for (const p of [paid, closed, expired]) {
      // The page cache forgets a payment at its status change, or within a second.
      await expect.poll(async () => (await qrOf(p)).status, { timeout: 5000 }).toBe(410);
      const res = await qrOf(p);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.text()).not.toContain('<svg');
    }
  });

  it('is rate limited per IP like the cashier, on a budget of its own', async () => {
    const app = express();
    app.use('/pay', createCheckoutRoutes(g.deps, cashierRateLimit(100), cashierRateLimit(3)));
    const server = app.listen(0);
    await new Promise((r) => server.once('listening', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as any).port}`;
      const path = new URL((await create()).checkout_url).pathname;
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await fetch(`${base}${path}/qr.svg`)).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      // The steps that reach a channel still have their budget.
      expect((await fetch(`${base}${path}/return`, { redirect: 'manual' })).status).not.toBe(429);
    } finally {
      server.close();
    }
  });
});

describe.skipIf(!haveChromium)('the aggregate QR code read from the screen', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('Chromium renders qr.svg and a QR decoder reads the checkout URL from its pixels', async () => {
    const page = await browser.newPage();
    const [a, b] = [await create(), await create()];
    // A page of the gateway's origin, so the image is same-origin and its pixels readable.
    await page.goto(`${g.url}/`);
    expect(await readQrInPage(page, { src: new URL(`${a.checkout_url}/qr.svg`).pathname })).toBe(a.checkout_url);
    expect(await readQrInPage(page, { src: new URL(`${b.checkout_url}/qr.svg`).pathname })).toBe(b.checkout_url);
    // At the size the cashier shows it (9rem) it still reads.
    expect(await readQrInPage(page, { src: new URL(`${a.checkout_url}/qr.svg`).pathname }, 144 / 256)).toBe(a.checkout_url);
    await page.close();
  });
});

describe('the desktop cashier shows it beside the channel choice', () => {
  const cashier = async (p: { checkout_url: string }, ua: string, lang = 'en') =>
    (await fetch(`${p.checkout_url}?lang=${lang}`, { headers: { 'user-agent': ua } })).text();
  const figure = (html: string) => /<figure class="wallet-qr" data-aggregate-qr>([\s\S]*?)<\/figure>/.exec(html)?.[1];

  it('on a desktop, in both languages, naming both wallets', async () => {
    const p = await create();
    const token = new URL(p.checkout_url).pathname.split('/')[2];
    const en = figure(await cashier(p, agents.desktop, 'en'))!;
    expect(en).toContain(`<img src="/pay/${token}/qr.svg" alt="Payment QR code"`);
    expect(en).toContain('<figcaption>Scan with WeChat or Alipay</figcaption>');
    const zh = figure(await cashier(p, agents.desktop, 'zh-CN'))!;
    expect(zh).toContain('alt="付款二维码"');
    expect(zh).toContain('<figcaption>用微信或支付宝扫码</figcaption>');
    // Beside the choice: in the same row as the channel form.
    expect(await cashier(p, agents.desktop)).toMatch(/<div class="choice">\s*<form [^>]*class="channels">[\s\S]*<\/form>\s*<figure class="wallet-qr"/);
  });

  it('not on a phone, nor inside WeChat or Alipay (a phone cannot scan its own screen)', async () => {
    const p = await create();
    for (const ua of [agents.iphone, agents.wechat, agents.alipay]) {
      const html = await cashier(p, ua);
      expect(html).toContain('data-channel=');
      expect(figure(html)).toBeUndefined();
    }
  });

  it('not once the payment can no longer be paid', async () => {
    const p = await create();
    await g.api('POST', `/v1/payments/${p.id}/close`, {});
    await expect.poll(async () => cashier(p, agents.desktop), { timeout: 5000 }).toContain('data-result="closed"');
    expect(figure(await cashier(p, agents.desktop))).toBeUndefined();
  });
});
