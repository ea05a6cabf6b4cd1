import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { ConsoleClient } from '../support/console.ts';
import { newCustomer, topUp, tradeNo } from '../support/accounts.ts';

const PASSWORD = 'a long enough passphrase';
let g: TestGateway;
let other: CreatedApp;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  other = await createApp(g.deps.db, { name: 'Other Shop' });
  await createConsoleUser(g.deps.db, { email: 'owner@accounts.example', appId: g.app.app_id, password: PASSWORD });
});
afterAll(() => g?.close());

async function loggedIn(): Promise<ConsoleClient> {
  const c = new ConsoleClient(g.url);
  expect((await c.login('owner@accounts.example', PASSWORD)).status).toBe(303);
  return c;
}

describe('console: customers, their ledger and coupons', () => {
  it('are behind the login, linked from the navigation, under the console CSP', async () => {
    const anon = new ConsoleClient(g.url);
    for (const path of ['/console/customers', '/console/coupons']) {
      const res = await anon.get(path);
      expect(res.status).toBe(303);
      expect(res.location).toBe(`/console/login?next=${encodeURIComponent(path)}`);
    }
    const c = await loggedIn();
    const page = await c.get('/console/customers');
    expect(page.status).toBe(200);
    expect(page.text).toContain('href="/console/customers" aria-current="page"');
    expect(page.text).toContain('href="/console/coupons"');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self' 'nonce-[^']+'; .*object-src 'none'/);
    expect(page.headers.get('cache-control')).toBe('no-store');
  });

  it('lists customers with balances, shows one with its ledger, finds by out_user_id; another app’s is a 404', async () => {
    const cust = await newCustomer(g, { out_user_id: 'console_user_1', name: 'Zhang <b>San</b>' });
    const top = await topUp(g, cust.id, 2000);
    const spend = (await g.api('POST', '/v1/payments', { amount: 500, subject: 'Console spend', out_trade_no: tradeNo('cs'), customer: cust.id, channel: 'balance' })).body;
    const c = await loggedIn();
    const list = await c.get('/console/customers');
    expect(list.text).toContain(`data-customer-id="${cust.id}"`);
    expect(list.text).toContain('data-balance="1500"');
    expect(list.text).not.toContain('<b>San</b>');
    expect((await c.get('/console/customers?q=console_user_1')).text).toContain(`data-customer-id="${cust.id}"`);
    expect((await c.get('/console/customers?q=nobody')).text).toContain('data-empty');
    const detail = await c.get(`/console/customers/${cust.id}`);
    expect(detail.status).toBe(200);
    expect(detail.text).toContain('Zhang &lt;b&gt;San&lt;/b&gt;');
    expect(detail.text).toMatch(/data-type="payment"[\s\S]*data-type="top_up"/);
    expect(detail.text).toContain(`href="/console/payments/${spend.id}"`);
    expect(detail.text).toContain(`href="/console/payments/${top.id}"`);
    const theirs = await (await fetch(`${g.url}/v1/customers`, { method: 'POST', headers: { authorization: `Bearer ${other.secret_key}`, 'content-type': 'application/json' }, body: '{}' })).json() as any;
    expect((await c.get(`/console/customers/${theirs.id}`)).status).toBe(404);
    expect((await c.get('/console/customers/../payments')).status).not.toBe(500);
  });

  it('lists coupons with their use', async () => {
    const coupon = (await g.api('POST', '/v1/coupons', { code: 'CONSOLE10', percent_off: 10, max_redemptions: 3 })).body;
    await g.api('POST', '/v1/payments', { amount: 1000, subject: 'x', out_trade_no: tradeNo('cc'), coupon: 'console10' });
    const c = await loggedIn();
    const page = await c.get('/console/coupons');
    expect(page.status).toBe(200);
    expect(page.text).toContain(`data-coupon-id="${coupon.id}"`);
    expect(page.text).toContain('data-times-redeemed="1"');
    expect(page.text).toContain('10% off');
  });
});
