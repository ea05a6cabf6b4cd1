/**
 * Stripe through the whole gateway: the wallet used is recorded on the attempt and shown in the
 * console; the cashier offers Apple Pay only to Apple browsers, and card everywhere; the return
 * page reads the session (a forged success URL changes nothing); a framed cashier opens a placed
 * card step in the top window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { ConsoleClient } from '../support/console.ts';

const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1';
const MAC_SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const MAC_CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

let g: TestGateway;
let seq = 0;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  await createConsoleUser(g.deps.db, { email: 'stripe@test.example', appId: g.app.app_id, password: 'a long enough passphrase' });
});
afterAll(() => g?.close());

const create = async (over: Record<string, unknown> = {}) =>
  (await g.api('POST', '/v1/payments', { amount: 2500, subject: 'Stripe tea', out_trade_no: `st_${Date.now()}_${++seq}`, ...over })).body;

describe('wallet', () => {
  it('apple_pay: the Apple Pay wallet is recorded on the attempt and shown in the console; card shows card', async () => {
    const a = await create();
    expect((await g.api('POST', `/v1/test_helpers/payments/${a.id}/simulate`, { channel: 'apple_pay' })).body).toMatchObject({ status: 'succeeded', channel: 'apple_pay' });
    const b = await create();
    expect((await g.api('POST', `/v1/test_helpers/payments/${b.id}/simulate`, { channel: 'card', notify: 'drop' })).body.status).toBe('pending');
    // The lost webhook is found by retrieval (the worker's query), wallet included.
    const attemptB = await g.deps.db('payment_attempts').where({ payment_id: b.id }).first();
    const { refreshAttempt } = await import('../../server/payments/service.ts');
    const { attemptFromRow } = await import('../../server/payments/repo.ts');
    await refreshAttempt(g.deps, attemptFromRow(attemptB));
    expect((await g.api('GET', `/v1/payments/${b.id}`)).body.status).toBe('succeeded');
    expect((await g.deps.db('payment_attempts').where({ payment_id: a.id }).first()).wallet).toBe('apple_pay');
    expect((await g.deps.db('payment_attempts').where({ payment_id: b.id }).first()).wallet).toBe('card');
    const c = new ConsoleClient(g.url);
    expect((await c.login('stripe@test.example', 'a long enough passphrase')).status).toBe(303);
    expect((await c.get(`/console/payments/${a.id}`)).text).toContain('data-wallet="apple_pay"');
    expect((await c.get(`/console/payments/${b.id}`)).text).toContain('data-wallet="card"');
  });
});

describe('cashier', () => {
  const page = async (token: string, ua: string) => (await fetch(`${g.url}/pay/${token}`, { headers: { 'user-agent': ua } })).text();
  const tokenOf = (p: { checkout_url: string }) => p.checkout_url.split('/pay/')[1]!;

  it('offers card everywhere and Apple Pay (hidden until ApplePaySession says yes) on Apple browsers only', async () => {
    const token = tokenOf(await create());
    for (const ua of [IPHONE, MAC_SAFARI]) {
      const html = await page(token, ua);
      expect(html).toContain('data-channel="card"');
      expect(html).toMatch(/data-channel="apple_pay"[^>]*hidden data-needs-apple-pay/);
    }
    // The choice form's redirect leads to Stripe's hosted page: CSP form-action governs it too.
    const csp = (await fetch(`${g.url}/pay/${token}`)).headers.get('content-security-policy')!;
    expect(/form-action [^;]*https:\/\/checkout\.stripe\.com/.test(csp)).toBe(true);
    for (const ua of [CHROME, MAC_CHROME]) {
      const html = await page(token, ua);
      expect(html).toContain('data-channel="card"');
      expect(html).not.toContain('data-channel="apple_pay"');
    }
  });

  it('choosing card redirects to the hosted page; the return page asks Stripe and a forged success URL changes nothing', async () => {
    const p = await create({ return_url: 'https://shop.example/done' });
    const token = tokenOf(p);
    const html = await page(token, CHROME);
    const formToken = /name="form_token" value="([^"]+)"/.exec(html)![1]!;
    const chosen = await fetch(`${g.url}/pay/${token}/channel`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: g.url, 'user-agent': CHROME },
      body: new URLSearchParams({ form_token: formToken, channel: 'card' }),
    });
    expect(chosen.status).toBe(303);
    const hosted = chosen.headers.get('location')!;
    expect(hosted).toMatch(/\/sandbox\/stripe\/pay\/cs_test_/);
    const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
    // Someone opens the success URL without paying: the session says open, so still pending.
    const forged = await fetch(`${g.url}/pay/${token}/return?out_trade_no=${attempt.channel_order_no}&session_id=${attempt.channel_ref}`, { redirect: 'manual' });
    expect(forged.status).toBeLessThan(400);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('pending');
    // The payer pays with the webhook lost: the success redirect itself settles nothing, the return page's query does.
    const paid = await fetch(hosted, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ action: 'pay', notify: 'drop' }) });
    expect(paid.status).toBe(303);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('pending');
    const back = await fetch(paid.headers.get('location')!.replace(g.deps.config.publicUrl, g.url), { redirect: 'manual' });
    expect(back.status).toBe(303);
    expect(back.headers.get('location')).toContain('https://shop.example/done');
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body).toMatchObject({ status: 'succeeded', channel: 'card' });
  });

  it('a placed card step opens at once top level, and in a frame as a button that targets the top window', async () => {
    const p = await create({ channel: 'card' });
    expect(p.next_action).toMatchObject({ type: 'redirect_to_url' });
    const token = tokenOf(p);
    const top = await fetch(`${g.url}/pay/${token}`, { redirect: 'manual', headers: { 'user-agent': CHROME } });
    expect(top.status).toBe(303);
    const framed = await fetch(`${g.url}/pay/${token}`, { redirect: 'manual', headers: { 'user-agent': CHROME, 'sec-fetch-dest': 'iframe' } });
    expect(framed.status).toBe(200);
    expect(await framed.text()).toMatch(/<a class="button" href="[^"]*\/sandbox\/stripe\/pay\/cs_test_[^"]*" target="_top" data-channel="card"/);
  });
});
