/**
 * The channel onboarding page in Chromium: reached from the Channels page, Check credentials run
 * from its button against the simulator, a tick saved; no axe violations and no CSP refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { axeViolations, haveChromium, launchBrowser } from '../support/browser.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';

describe.skipIf(!haveChromium)('console channel onboarding in Chromium', () => {
  let g: TestGateway;
  let browser: Browser;

  beforeAll(async () => {
    g = await startTestGateway({ workers: false });
    await createConsoleUser(g.deps.db, { email: 'owner@onboarding.example', appId: g.app.app_id, password: 'a long enough passphrase' });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await g?.close();
  });

  const axe = axeViolations;

  it('checks the credentials and saves a tick from the page', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused/i.test(m.text())) cspErrors.push(m.text());
    });
    await page.goto(`${g.url}/console/login`);
    await page.getByLabel('Email').fill('owner@onboarding.example');
    await page.getByLabel('Password').fill('a long enough passphrase');
    await Promise.all([page.waitForURL(/\/console\/payments/), page.getByRole('button', { name: /sign in|log in/i }).click()]);

    await page.goto(`${g.url}/console/channels`);
    expect(await axe(page), '/console/channels').toEqual([]);
    await Promise.all([page.waitForURL(/\/console\/channels\/unionpay$/), page.locator('[data-provider="unionpay"] [data-onboarding-link]').click()]);
    expect(await axe(page)).toEqual([]);

    await Promise.all([page.waitForURL(/\/console\/channels\/unionpay\/check$/), page.getByRole('button', { name: 'Check credentials' }).click()]);
    await page.waitForSelector('[data-check-result="ok"]');
    expect(await page.locator('[data-step][data-status="ok"]').count()).toBe(4);
    expect(await axe(page)).toEqual([]);

    await page.getByLabel(/Complete 商户入网/).check();
    await Promise.all([page.waitForURL(/saved=1/), page.getByRole('button', { name: 'Save checklist' }).click()]);
    expect(await page.getByLabel(/Complete 商户入网/).isChecked()).toBe(true);
    expect(await axe(page)).toEqual([]);
    expect(cspErrors).toEqual([]);
    await context.close();
  }, 60_000);
});
