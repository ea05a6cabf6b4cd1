import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { haveChromium, launchBrowser } from '../support/browser.ts';
import { OPERATIONS } from '../../server/openapi/operations.ts';
import { knownEventTypes } from '../../server/webhooks/service.ts';

let g: TestGateway;
let browser: Browser;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  if (haveChromium) browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await g?.close();
});

describe.skipIf(!haveChromium)('/docs', () => {
  it('renders every operation from the gateway alone, within its CSP', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    // Anything bound elsewhere is refused here, and stays in `requests` to fail the check below.
    await page.route((url) => url.origin !== new URL(g.url).origin, (route) => route.abort());
    const res = await page.goto(`${g.url}/docs`);
    expect(res!.status()).toBe(200);
    const csp = res!.headers()['content-security-policy'];
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe');
    await page.locator('.opblock').first().waitFor();
    // One block per operation and one per webhook event type.
    expect(await page.locator('.opblock').count()).toBe(OPERATIONS.length + knownEventTypes.length);
    const summaries = await page.locator('.opblock-summary-description').allInnerTexts();
    expect(summaries).toEqual(expect.arrayContaining(['Create a payment', 'Refund a succeeded payment', 'List events']));
    // Opening an operation shows its parameters, read from the document.
    await page.locator('#operations-Payments-createPayment .opblock-summary').click();
    await page.locator('#operations-Payments-createPayment .opblock-body').waitFor();
    expect(await page.locator('#operations-Payments-createPayment').innerText()).toContain('Idempotency-Key');
    expect(requests.filter((u) => new URL(u).origin !== new URL(g.url).origin)).toEqual([]);
    expect(requests).toContain(`${g.url}/v1/openapi.json`);
    expect(problems).toEqual([]);
    await page.close();
  });
});
