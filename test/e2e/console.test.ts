import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { axeViolations, haveChromium, launchBrowser } from '../support/browser.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { beijingDay, signedAgreement } from '../support/subscriptions.ts';

describe.skipIf(!haveChromium)('merchant console in Chromium', () => {
  let g: TestGateway;
  let browser: Browser;

  beforeAll(async () => {
    g = await startTestGateway({ workers: false });
    await createConsoleUser(g.deps.db, { email: 'owner@shop.example', appId: g.app.app_id, password: 'a long enough passphrase' });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await g?.close();
  });

  const axe = axeViolations;

  it('logs in over http://localhost, finds a payment by its channel trade number, with no axe violations', async () => {
    const created = (await g.api('POST', '/v1/payments', { amount: 4200, subject: 'Oolong 乌龙茶', out_trade_no: `e2e_${Date.now()}` })).body;
    const paid = (await g.api('POST', `/v1/test_helpers/payments/${created.id}/simulate`, { channel: 'alipay_pc' })).body;
    expect(paid.status).toBe('succeeded');

    const context = await browser.newContext();
    const page = await context.newPage();
    const cspErrors: string[] = [];
    // Inline scripts, styles or handlers would show up here as CSP refusals.
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused/i.test(m.text())) cspErrors.push(m.text());
    });
    await page.goto(`${g.url}/console/payments`);
    await page.waitForURL(/\/console\/login/);
    expect(await axe(page)).toEqual([]);
    await page.getByLabel('Email').fill('owner@shop.example');
    await page.getByLabel('Password').fill('a long enough passphrase');
    await Promise.all([page.waitForURL(/\/console\/payments$/), page.getByRole('button', { name: 'Sign in' }).click()]);
    // Chromium keeps the __Host- Secure cookie on http://localhost (a potentially trustworthy origin).
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === '__Host-checkstand_console')).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax', path: '/' });

    await page.getByLabel('Find a payment').fill(paid.channel_trade_no);
    await Promise.all([page.waitForURL(/q=/), page.getByRole('button', { name: 'Search' }).click()]);
    const rows = page.locator('[data-payment-id]');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-payment-id')).toBe(created.id);
    expect(await axe(page)).toEqual([]);

    await Promise.all([page.waitForURL(new RegExp(`/console/payments/${created.id}$`)), page.getByRole('link', { name: created.out_trade_no }).click()]);
    await page.waitForSelector(`[data-payment="${created.id}"]`);
    expect(await page.textContent('main')).toContain(paid.channel_trade_no);
    expect(await axe(page)).toEqual([]);

    // The refund form asks for confirmation (console.js) and then refunds.
    page.once('dialog', (d) => d.accept());
    await page.getByLabel(/^Amount in CNY/).fill('1.50');
    await Promise.all([page.waitForURL(/refunded=re_/), page.getByRole('button', { name: 'Refund' }).click()]);
    expect((await g.api('GET', `/v1/payments/${created.id}`)).body.amount_refunded).toBe(150);

    for (const path of ['/console/refunds', '/console/webhooks', '/console/keys', '/console/channels', '/console/reconciliation']) {
      await page.goto(g.url + path);
      expect(await axe(page), path).toEqual([]);
    }
    expect(cspErrors).toEqual([]);
    await context.close();
    // Nine axe runs, a login's scrypt and a refund: 25–32 s on a 2-core machine, the default's edge.
  }, 90_000);

  it('agreement and subscription pages from the navigation, with no axe violations; cancel at period end asks first', async () => {
    const day = beijingDay(3);
    const { agreement } = await signedAgreement(g, { period_type: 'MONTH', period: 1, execute_time: day.slice(8, 10) > '28' ? `${day.slice(0, 8)}28` : day });
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 990, subject: 'Tea club', interval: 'month' })).body;

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${g.url}/console/login`);
    await page.getByLabel('Email').fill('owner@shop.example');
    await page.getByLabel('Password').fill('a long enough passphrase');
    await Promise.all([page.waitForURL(/\/console\/payments$/), page.getByRole('button', { name: 'Sign in' }).click()]);

    await Promise.all([page.waitForURL(/\/console\/agreements$/), page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Agreements' }).click()]);
    expect(await axe(page)).toEqual([]);
    await Promise.all([page.waitForURL(new RegExp(`/console/agreements/${agreement.id}$`)), page.getByRole('link', { name: agreement.id }).click()]);
    expect(await axe(page)).toEqual([]);
    await Promise.all([page.waitForURL(new RegExp(`/console/subscriptions/${s.id}$`)), page.getByRole('link', { name: 'Tea club' }).click()]);
    expect(await axe(page)).toEqual([]);
    // The confirmation (console.js) comes first: dismissed, nothing changes.
    page.once('dialog', (d) => d.dismiss());
    await page.getByRole('button', { name: 'Cancel at period end' }).click();
    expect((await g.api('GET', `/v1/subscriptions/${s.id}`)).body.cancel_at_period_end).toBe(false);
    page.once('dialog', (d) => d.accept());
    await Promise.all([page.waitForURL(/done=cancel/), page.getByRole('button', { name: 'Cancel at period end' }).click()]);
    expect((await g.api('GET', `/v1/subscriptions/${s.id}`)).body).toMatchObject({ status: 'active', cancel_at_period_end: true });
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Subscriptions' }).click();
    await page.waitForURL(/\/console\/subscriptions$/);
    expect(await axe(page)).toEqual([]);
    await context.close();
  }, 90_000);
});
