import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { haveChromium, launchBrowser } from '../support/browser.ts';
import { startReceiver } from '../support/receiver.ts';
import crypto from 'node:crypto';
import { AlipaySdk } from 'alipay-sdk';
import { unseal } from '../../server/crypto.ts';

// The foundation story: API → cashier → Alipay sandbox → signed notify → succeeded → webhook → return_url.
describe.skipIf(!haveChromium)('first payment, end to end in Chromium', () => {
  let g: TestGateway;
  let browser: Browser;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    g = await startTestGateway();
    receiver = await startReceiver();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
    await g?.close();
  });

  it('pays with Alipay PC through the sandbox and tells the merchant', async () => {
    const ep = await g.api('POST', '/v1/webhook_endpoints', { url: `${receiver.url}/webhooks`, enabled_events: ['payment.succeeded'] });
    expect(ep.status).toBe(200);
    expect(ep.body.secret).toMatch(/^whsec_/);
    receiver.setSecret(ep.body.secret);

    const created = await g.api('POST', '/v1/payments', { amount: 1234, subject: '测试商品 Tea', out_trade_no: `e2e_${Date.now()}`, return_url: `${receiver.url}/done` });
    expect(created.status).toBe(200);
    const payment = created.body;

    const page = await browser.newPage();
    const gatewayRequests: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/sandbox/alipay/gateway.do')) gatewayRequests.push(r.url());
    });
    await page.goto(payment.checkout_url);
    await expect(page.locator('.merchant-name').textContent()).resolves.toContain('Test Shop');
    await expect(page.locator('.amount').textContent()).resolves.toContain('12.34');
    await expect(page.locator('.subject').textContent()).resolves.toContain('测试商品 Tea');

    await page.click('[data-channel="alipay_pc"]');
    await page.waitForSelector('[data-sandbox-action="pay"]');
    // The browser carried a correctly RSA2-signed alipay.trade.page.pay request to the gateway.
    expect(gatewayRequests.length).toBeGreaterThan(0);
    const params = Object.fromEntries(new URL(gatewayRequests[0]).searchParams);
    expect(params.method).toBe('alipay.trade.page.pay');
    expect(params.sign_type).toBe('RSA2');
    const row = await g.deps.db('channel_configs').where({ app_id: g.app.app_id, provider: 'alipay' }).first();
    expect(row.config_sealed).not.toContain('PRIVATE KEY');
    const cred = JSON.parse(unseal(g.deps.config.masterKeyBytes, row.config_sealed, `channel:${g.app.app_id}:alipay:test`));
    const appPublicKey = crypto.createPublicKey(cred.private_key).export({ type: 'spki', format: 'pem' }).toString();
    // The official SDK, given the app's public key, verifies the request the browser carried.
    const reference = new AlipaySdk({ appId: cred.app_id, privateKey: cred.private_key, alipayPublicKey: appPublicKey });
    expect(reference.checkNotifySignV2(params)).toBe(true);
    expect(reference.checkNotifySignV2({ ...params, biz_content: params.biz_content.replace('12.34', '0.01') })).toBe(false);
    expect(JSON.parse(params.biz_content)).toMatchObject({ total_amount: '12.34', product_code: 'FAST_INSTANT_TRADE_PAY' });

    await Promise.all([page.waitForURL(`${receiver.url}/done**`), page.click('[data-sandbox-action="pay"]')]);
    const back = new URL(page.url());
    expect(back.searchParams.get('payment_id')).toBe(payment.id);
    await expect(page.locator('#thanks').textContent()).resolves.toContain('Thanks');

    const after = await g.api('GET', `/v1/payments/${payment.id}`);
    expect(after.body).toMatchObject({ status: 'succeeded', channel: 'alipay_pc' });
    expect(after.body.channel_trade_no).toMatch(/^\d{20,}$/);
    expect(after.body.paid_at).toEqual(expect.any(Number));

    const hook = await receiver.waitFor((w) => w.payload?.type === 'payment.succeeded' && w.payload.data.object.id === payment.id);
    expect(hook.verified).toBe(true);
    expect(hook.payload.data.object).toMatchObject({ status: 'succeeded', amount: 1234 });
    expect(hook.id).toBe(hook.payload.id);
    await page.close();
  });
});
