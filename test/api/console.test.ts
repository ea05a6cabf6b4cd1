import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { sha256Hex } from '../../server/crypto.ts';
import { beijingDate } from '../../server/dashboard/format.ts';
import { ConsoleClient } from '../support/console.ts';
import { startAttempt } from '../../server/payments/service.ts';
import { findPaymentById } from '../../server/payments/repo.ts';

let g: TestGateway;
let other: CreatedApp;
let seq = 0;
const PASSWORD = 'a long enough passphrase';

async function apiAs(key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(g.url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function paidPayment(key: string, amount = 1000, notify = 'normal') {
  const p = (await apiAs(key, 'POST', '/v1/payments', { amount, subject: 'Console tea', out_trade_no: `con_${Date.now()}_${++seq}` })).body;
  const s = await apiAs(key, 'POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify });
  expect(s.status).toBe(200);
  return s.body;
}

async function loggedIn(email: string): Promise<ConsoleClient> {
  const c = new ConsoleClient(g.url);
  const res = await c.login(email, PASSWORD);
  expect(res.status).toBe(303);
  return c;
}

beforeAll(async () => {
  // No background workers: the reconciliation test needs a lost notify to stay lost.
  g = await startTestGateway({ workers: false });
  other = await createApp(g.deps.db, { name: 'Other Shop' });
  await createConsoleUser(g.deps.db, { email: 'owner@test.example', appId: g.app.app_id, password: PASSWORD });
  await createConsoleUser(g.deps.db, { email: 'owner@other.example', appId: other.app_id, password: PASSWORD });
});
afterAll(async () => {
  await g?.close();
});

describe('console login and sessions', () => {
  it('refuses wrong passwords and unknown emails with the same generic answer', async () => {
    const c = new ConsoleClient(g.url);
    const wrong = await c.login('owner@test.example', 'not the passphrase');
    const unknown = await c.login('nobody@test.example', PASSWORD);
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expect(res.text).toContain('Wrong email or password.');
      expect(c.cookies.has('__Host-checkstand_console')).toBe(false);
    }
  });

  it('logs in with a __Host- cookie (Secure, HttpOnly, SameSite=Lax, Path=/) whose id is stored only hashed', async () => {
    const c = new ConsoleClient(g.url);
    const res = await c.login('OWNER@test.example', PASSWORD);
    expect(res.status).toBe(303);
    expect(res.location).toBe('/console/payments');
    const cookie = c.lastSetCookies.find((s) => s.startsWith('__Host-checkstand_console='))!;
    expect(cookie).toBeDefined();
    const attrs = cookie.split(';').map((a) => a.trim());
    expect(attrs).toEqual(expect.arrayContaining(['Path=/', 'Secure', 'HttpOnly', 'SameSite=Lax']));
    expect(attrs.some((a) => a.startsWith('Domain'))).toBe(false);
    const id = c.cookies.get('__Host-checkstand_console')!;
    expect(Buffer.from(id, 'base64url')).toHaveLength(32);
    const rows = await g.deps.db('console_sessions').select('id_hash');
    expect(rows.map((r) => r.id_hash)).toContain(sha256Hex(id));
    expect(JSON.stringify(rows)).not.toContain(id);

    const page = await c.get('/console/payments');
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self' 'nonce-[^']+'/);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.text).toContain('owner@test.example');

    // Logout ends the session in the database, not only in the browser.
    const token = await c.tokenFrom('/console/payments');
    expect((await c.post('/console/logout', { _csrf: token })).status).toBe(303);
    expect(await g.deps.db('console_sessions').where({ id_hash: sha256Hex(id) }).first()).toBeUndefined();
    c.cookies.set('__Host-checkstand_console', id);
    const after = await c.get('/console/payments');
    expect(after.status).toBe(303);
    expect(after.location).toMatch(/^\/console\/login/);
  });

  it('sends visitors without a session to the login page and ends idle sessions', async () => {
    const anon = await new ConsoleClient(g.url).get('/console/payments?status=pending');
    expect(anon.status).toBe(303);
    expect(anon.location).toBe(`/console/login?next=${encodeURIComponent('/console/payments?status=pending')}`);
    const c = await loggedIn('owner@test.example');
    const hash = sha256Hex(c.cookies.get('__Host-checkstand_console')!);
    await g.deps.db('console_sessions').where({ id_hash: hash }).update({ last_seen_ms: Date.now() - 9 * 3600_000 });
    expect((await c.get('/console/payments')).status).toBe(303);
    expect(await g.deps.db('console_sessions').where({ id_hash: hash }).first()).toBeUndefined();
  });

  it('refuses forms without the token, with a wrong Origin or from another site', async () => {
    const c = await loggedIn('owner@test.example');
    const token = await c.tokenFrom('/console/payments');
    expect((await c.post('/console/mode', { mode: 'live' })).status).toBe(403);
    expect((await c.post('/console/mode', { mode: 'live', _csrf: 'x'.repeat(43) })).status).toBe(403);
    expect((await c.post('/console/mode', { mode: 'live', _csrf: token }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await c.post('/console/mode', { mode: 'live', _csrf: token }, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    // Another user's token is not this session's.
    const d = await loggedIn('owner@other.example');
    expect((await c.post('/console/mode', { mode: 'live', _csrf: await d.tokenFrom('/console/payments') })).status).toBe(403);
    expect((await g.deps.db('console_sessions').where({ id_hash: sha256Hex(c.cookies.get('__Host-checkstand_console')!) }).first()).livemode).toBeFalsy();
    const ok = await c.post('/console/mode', { mode: 'live', _csrf: token, return_to: '/console/refunds' });
    expect(ok.status).toBe(303);
    expect(ok.location).toBe('/console/refunds');
    expect((await c.get('/console/payments')).text).toContain('data-mode="live"');

    // The login form too (login CSRF): token bound to its cookie, and the Origin.
    const fresh = new ConsoleClient(g.url);
    const loginToken = await fresh.tokenFrom('/console/login');
    expect((await fresh.post('/console/login', { email: 'owner@test.example', password: PASSWORD })).status).toBe(403);
    expect((await fresh.post('/console/login', { _csrf: loginToken, email: 'owner@test.example', password: PASSWORD }, { origin: 'https://evil.example' })).status).toBe(403);
    const stranger = new ConsoleClient(g.url);
    stranger.cookies.set('__Host-checkstand_console_login', crypto.randomBytes(32).toString('base64url'));
    expect((await stranger.post('/console/login', { _csrf: loginToken, email: 'owner@test.example', password: PASSWORD })).status).toBe(403);
    expect((await fresh.post('/console/login', { _csrf: loginToken, email: 'owner@test.example', password: PASSWORD })).status).toBe(303);
  });

  it('limits failed logins per IP and email to 10 in 15 minutes', async () => {
    await createConsoleUser(g.deps.db, { email: 'limited@test.example', appId: g.app.app_id, password: PASSWORD });
    const c = new ConsoleClient(g.url);
    for (let i = 0; i < 10; i++) expect((await c.login('limited@test.example', `wrong guess ${i}`)).status).toBe(401);
    const blocked = await c.login('limited@test.example', PASSWORD);
    expect(blocked.status).toBe(429);
    expect(blocked.text).toContain('Too many failed attempts');
    expect(c.cookies.has('__Host-checkstand_console')).toBe(false);
    // Other accounts from the same address still sign in.
    expect((await c.login('owner@test.example', PASSWORD)).status).toBe(303);
  });

  it('never redirects a login to another site', async () => {
    const c = new ConsoleClient(g.url);
    const token = await c.tokenFrom('/console/login');
    const res = await c.post('/console/login', { _csrf: token, email: 'owner@test.example', password: PASSWORD, next: '//evil.example/console' });
    expect(res.location).toBe('/console/payments');
  });
});

describe('console payments', () => {
  it('closes a pending payment (its channel order first), once; a paid one offers no close', async () => {
    const p = (await apiAs(g.app.secret_key, 'POST', '/v1/payments', { amount: 800, subject: 'Console close', out_trade_no: `close_${Date.now()}`, channel: 'alipay_qr' })).body;
    expect(p.next_action).not.toBeNull();
    const c = await loggedIn('owner@test.example');
    const detail = await c.get(`/console/payments/${p.id}`);
    expect(detail.text).toContain(`/console/payments/${p.id}/close`);
    expect(detail.text).toContain('(CN¥8.00)');
    const token = await c.tokenFrom(`/console/payments/${p.id}`);
    const res = await c.post(`/console/payments/${p.id}/close`, { _csrf: token });
    expect(res.status).toBe(303);
    expect(res.location).toBe(`/console/payments/${p.id}?closed=1`);
    expect((await c.get(res.location!)).text).toContain('data-closed');
    expect((await g.deps.db('payments').where({ id: p.id }).first()).status).toBe('closed');
    const attempts = await g.deps.db('payment_attempts').where({ payment_id: p.id });
    expect(attempts.map((a) => a.status)).toEqual(['closed']);
    const closedEvents = () => g.deps.db('events').where({ object_id: p.id, type: 'payment.closed' });
    expect(await closedEvents()).toHaveLength(1);
    // Again: refused on the page, nothing changes.
    const again = await c.post(`/console/payments/${p.id}/close`, { _csrf: token });
    expect(again.status).toBe(400);
    expect(again.text).toContain('This payment is closed and cannot be closed.');
    expect(await closedEvents()).toHaveLength(1);
    // A paid payment has no close form.
    const paid = await paidPayment(g.app.secret_key, 500);
    expect((await c.get(`/console/payments/${paid.id}`)).text).not.toContain('/close"');
    expect((await c.post(`/console/payments/${paid.id}/close`, { _csrf: token })).status).toBe(400);
    expect((await g.deps.db('payments').where({ id: paid.id }).first()).status).toBe('succeeded');
  });

  it("finds payments by out_trade_no and by the channel's numbers, and never shows another app's", async () => {
    const p = await paidPayment(g.app.secret_key, 4200);
    expect(p.channel_trade_no).toBeTruthy();
    const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
    const c = await loggedIn('owner@test.example');
    for (const q of [p.out_trade_no, p.channel_trade_no, attempt.channel_order_no, p.id]) {
      const res = await c.get(`/console/payments?q=${encodeURIComponent(q)}`);
      expect(res.status).toBe(200);
      expect(res.text).toContain(`data-payment-id="${p.id}"`);
      expect(res.text.match(/data-payment-id=/g)).toHaveLength(1);
    }
    expect((await c.get('/console/payments?q=nothing_like_it')).text).toContain('data-empty');
    const list = await c.get('/console/payments?status=succeeded&channel=alipay_pc');
    expect(list.text).toContain(`data-payment-id="${p.id}"`);
    expect((await c.get('/console/payments?status=closed')).text).not.toContain(`data-payment-id="${p.id}"`);

    const detail = await c.get(`/console/payments/${p.id}`);
    expect(detail.status).toBe(200);
    expect(detail.text).toContain(p.channel_trade_no);
    expect(detail.text).toContain(attempt.channel_order_no);
    expect(detail.text).toContain('payment.succeeded');
    expect(detail.text).toContain('¥42.00');

    // Another app's payment: 404 on its page, nothing in a search.
    const theirs = await paidPayment(other.secret_key, 777);
    expect((await c.get(`/console/payments/${theirs.id}`)).status).toBe(404);
    expect((await c.get(`/console/payments?q=${theirs.out_trade_no}`)).text).not.toContain(theirs.id);
    expect((await c.get(`/console/payments?q=${theirs.channel_trade_no}`)).text).not.toContain(theirs.id);
    const token = await c.tokenFrom(`/console/payments/${p.id}`);
    expect((await c.post(`/console/payments/${theirs.id}/refunds`, { _csrf: token, amount: '1.00' })).status).toBe(404);
    expect((await apiAs(other.secret_key, 'GET', `/v1/payments/${theirs.id}`)).body.amount_refunded).toBe(0);
  });

  it('pages through payments with a cursor', async () => {
    const app = await createApp(g.deps.db, { name: 'Pager Shop' });
    await createConsoleUser(g.deps.db, { email: 'pager@test.example', appId: app.app_id, password: PASSWORD });
    const ids: string[] = [];
    for (let i = 0; i < 27; i++) ids.push((await apiAs(app.secret_key, 'POST', '/v1/payments', { amount: 100 + i, subject: 'p', out_trade_no: `pg_${i}` })).body.id);
    const c = await loggedIn('pager@test.example');
    const first = await c.get('/console/payments');
    const shown = (t: string) => [...t.matchAll(/data-payment-id="([^"]+)"/g)].map((m) => m[1]);
    expect(shown(first.text)).toHaveLength(25);
    const older = /href="(\?starting_after=[^"]+)"/.exec(first.text)![1];
    const second = await c.get(`/console/payments${older.replace(/&amp;/g, '&')}`);
    expect([...shown(first.text), ...shown(second.text)].sort()).toEqual([...ids].sort());
    expect((await c.get('/console/payments?starting_after=pay_unknown')).status).toBe(400);
  });

  it('shows the last failure of a payment whose tries failed, and refunded and partially refunded ones', async () => {
    const app = await createApp(g.deps.db, { name: 'States Shop' });
    await createConsoleUser(g.deps.db, { email: 'states@test.example', appId: app.app_id, password: PASSWORD });
    const create = async (amount: number) => (await apiAs(app.secret_key, 'POST', '/v1/payments', { amount, subject: 'p', out_trade_no: `st_${++seq}` })).body;
    const untouched = await create(100);
    const failed = await create(200);
    expect((await apiAs(app.secret_key, 'POST', `/v1/test_helpers/payments/${failed.id}/simulate`, { channel: 'alipay_pc', outcome: 'fail' })).status).toBe(200);
    const attempt = await g.deps.db('payment_attempts').where({ payment_id: failed.id }).first();
    expect(attempt.status).toBe('failed');
    const full = await paidPayment(app.secret_key, 300);
    const partial = await paidPayment(app.secret_key, 400);
    expect((await apiAs(app.secret_key, 'POST', `/v1/payments/${full.id}/refunds`, {})).body.status).toBe('succeeded');
    expect((await apiAs(app.secret_key, 'POST', `/v1/payments/${partial.id}/refunds`, { amount: 150 })).body.status).toBe('succeeded');

    const c = await loggedIn('states@test.example');
    const list = (await c.get('/console/payments')).text;
    const row = (id: string) => new RegExp(`<tr data-payment-id="${id}">([\\s\\S]*?)</tr>`).exec(list)![1];
    expect(row(failed.id)).toContain('data-last-failure');
    expect(row(failed.id)).toContain('alipay_pc');
    expect(row(failed.id)).toContain(attempt.failure_message ?? attempt.failure_code);
    expect(row(full.id)).toContain('data-refund-state="refunded"');
    expect(row(partial.id)).toContain('data-refund-state="partially_refunded"');
    expect(row(untouched.id)).not.toContain('data-last-failure');
    expect(row(untouched.id)).not.toContain('data-refund-state');
    expect(row(full.id)).not.toContain('data-last-failure');
    expect(row(failed.id)).not.toContain('data-refund-state');
    // A new try after the failure (the customer picks a channel on the cashier again): in progress, not failed.
    await startAttempt(g.deps, (await findPaymentById(g.deps.db, failed.id))!, 'alipay_pc', {});
    const again = (await c.get('/console/payments')).text;
    expect(new RegExp(`<tr data-payment-id="${failed.id}">([\\s\\S]*?)</tr>`).exec(again)![1]).not.toContain('data-last-failure');
  });

  it('refunds from the payment page', async () => {
    const p = await paidPayment(g.app.secret_key, 1000);
    const c = await loggedIn('owner@test.example');
    const token = await c.tokenFrom(`/console/payments/${p.id}`);
    const bad = await c.post(`/console/payments/${p.id}/refunds`, { _csrf: token, amount: '3.001' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('data-error');
    const tooMuch = await c.post(`/console/payments/${p.id}/refunds`, { _csrf: token, amount: '10.01' });
    expect(tooMuch.status).toBe(400);
    expect(tooMuch.text).toContain('greater than what is left');
    const res = await c.post(`/console/payments/${p.id}/refunds`, { _csrf: token, amount: '3.00', reason: 'damaged box' });
    expect(res.status).toBe(303);
    const refundId = new URL(res.location!, g.url).searchParams.get('refunded')!;
    expect(refundId).toMatch(/^re_/);
    expect((await apiAs(g.app.secret_key, 'GET', `/v1/refunds/${refundId}`)).body).toMatchObject({ amount: 300, status: 'succeeded', reason: 'damaged box' });
    expect((await apiAs(g.app.secret_key, 'GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(300);
    const page = await c.get(res.location!);
    expect(page.text).toContain(`data-refund-id="${refundId}"`);
    expect(page.text).toContain('refund.succeeded');
    // The rest, with an empty amount.
    await c.post(`/console/payments/${p.id}/refunds`, { _csrf: token, amount: '' });
    expect((await apiAs(g.app.secret_key, 'GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(1000);
    expect((await c.get('/console/refunds')).text).toContain(`data-refund-id="${refundId}"`);
  });

  it('a refund form sent twice (a double click, a resend after a slow answer) refunds once', async () => {
    const p = await paidPayment(g.app.secret_key, 1000);
    const c = await loggedIn('owner@test.example');
    const page = await c.get(`/console/payments/${p.id}`);
    const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(page.text)![1];
    const form = { _csrf: field('_csrf'), refund_key: field('refund_key'), amount: '3.00', reason: 'twice' };
    const both = await Promise.all([c.post(`/console/payments/${p.id}/refunds`, form), c.post(`/console/payments/${p.id}/refunds`, form)]);
    const again = await c.post(`/console/payments/${p.id}/refunds`, form);
    const refunds = await g.deps.db('refunds').where({ payment_id: p.id });
    expect(refunds).toHaveLength(1);
    expect((await apiAs(g.app.secret_key, 'GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(300);
    // Each answer leads to that one refund.
    for (const res of [...both, again]) {
      expect(res.status).toBe(303);
      expect(new URL(res.location!, g.url).searchParams.get('refunded')).toBe(refunds[0].id);
    }
    // The page after it carries a new key: the next refund is a new one.
    const next = await c.get(again.location!);
    expect(/name="refund_key" value="([^"]+)"/.exec(next.text)![1]).not.toBe(form.refund_key);
  });
});

describe('console webhooks, keys and channels', () => {
  it('creates an endpoint showing its secret once, lists deliveries with attempts, warns about failing ones, deletes', async () => {
    const c = await loggedIn('owner@test.example');
    const token = await c.tokenFrom('/console/webhooks');
    const created = await c.post('/console/webhooks', { _csrf: token, url: 'http://127.0.0.1:9/hook', events: ['payment.succeeded', 'refund.succeeded'] });
    expect(created.status).toBe(201);
    const secret = /value="(whsec_[^"]+)"/.exec(created.text)![1];
    expect(secret).toMatch(/^whsec_/);
    const endpointId = /data-created-endpoint="([^"]+)"/.exec(created.text)![1];
    const list = await c.get('/console/webhooks');
    expect(list.text).toContain('http://127.0.0.1:9/hook');
    expect(list.text).not.toContain(secret);
    expect((await c.post('/console/webhooks', { _csrf: token, url: 'ftp://x' })).status).toBe(400);

    // A payment queues a delivery; one failed attempt is recorded as the worker would.
    await paidPayment(g.app.secret_key, 500);
    const delivery = await g.deps.db('webhook_deliveries').where({ endpoint_id: endpointId }).first();
    await g.deps.db('webhook_attempts').insert({ delivery_id: delivery.id, attempted_at_ms: Date.now(), status_code: 503, latency_ms: 1234, response_excerpt: '<b>upstream down</b>', error: null });
    const detail = await c.get(`/console/webhooks/${endpointId}`);
    expect(detail.text).toContain(`data-delivery-id="${delivery.id}"`);
    expect(detail.text).toContain('503');
    expect(detail.text).toContain('1234 ms');
    expect(detail.text).toContain('&lt;b&gt;upstream down&lt;/b&gt;');

    // Disabled or failing endpoints head every page.
    await g.deps.db('webhook_endpoints').where({ id: endpointId }).update({ status: 'disabled', disabled_reason: 'The endpoint answered 410 Gone.' });
    for (const path of ['/console/payments', '/console/keys', '/console/reconciliation']) {
      const page = await c.get(path);
      expect(page.text).toContain(`data-endpoint-alert="${endpointId}"`);
      expect(page.text).toContain('The endpoint answered 410 Gone.');
    }
    const del = await c.post(`/console/webhooks/${endpointId}/delete`, { _csrf: token });
    expect(del.status).toBe(303);
    expect((await c.get('/console/payments')).text).not.toContain('data-endpoint-alert');
    expect((await c.get('/console/webhooks')).text).not.toContain('http://127.0.0.1:9/hook');
  });

  it('shows key hints and edits origins', async () => {
    const c = await loggedIn('owner@test.example');
    const page = await c.get('/console/keys');
    expect(page.text).toContain(g.app.secret_key.slice(0, 12));
    expect(page.text).not.toContain(g.app.secret_key);
    expect(page.text).not.toContain(g.app.live_secret_key);
    const token = await c.tokenFrom('/console/keys');
    expect((await c.post('/console/keys/origins', { _csrf: token, origins: 'https://shop.example/path' })).status).toBe(400);
    const ok = await c.post('/console/keys/origins', { _csrf: token, origins: 'https://shop.example\nhttp://127.0.0.1:4000\n' });
    expect(ok.status).toBe(303);
    const app = await g.deps.db('apps').where({ id: g.app.app_id }).first();
    expect(JSON.parse(app.allowed_origins)).toEqual(['https://shop.example', 'http://127.0.0.1:4000']);
  });

  it('refuses an origin that is not a URL as a form error naming the line, and changes nothing', async () => {
    const c = await loggedIn('owner@test.example');
    const token = await c.tokenFrom('/console/keys');
    const before = (await g.deps.db('apps').where({ id: g.app.app_id }).first()).allowed_origins;
    for (const bad of ['not a url', 'http://[::1', 'null', 'https://', 'https:/shop.example']) {
      const res = await c.post('/console/keys/origins', { _csrf: token, origins: `https://shop.example\n\n${bad}\n` });
      expect(res.status).toBe(400);
      const error = /data-error>([^<]*)</.exec(res.text)?.[1] ?? '';
      expect(error).toContain(`Line 3: &#34;${bad}&#34; is not an origin`);
      expect(error).toContain('such as https://shop.example.com');
      // The textarea keeps what was typed, so the line can be fixed.
      expect(res.text).toContain(`${bad}\n</textarea>`);
    }
    expect((await g.deps.db('apps').where({ id: g.app.app_id }).first()).allowed_origins).toBe(before);
  });

  it('answers text with a NUL character and malformed escapes with a 400 page, changing nothing', async () => {
    const p = await paidPayment(g.app.secret_key, 1000);
    const c = await loggedIn('owner@test.example');
    const token = await c.tokenFrom(`/console/payments/${p.id}`);
    const refund = await c.post(`/console/payments/${p.id}/refunds`, { _csrf: token, amount: '1.00', reason: 'box\u0000' });
    expect(refund.status).toBe(400);
    expect(refund.text).toContain('reason');
    expect(await g.deps.db('refunds').where({ payment_id: p.id })).toHaveLength(0);
    expect((await c.get('/console/payments?q=%00')).status).toBe(400);
    for (const path of ['/console/payments/%E0%A4%A', '/console/webhooks/%E0%A4%A']) expect((await c.get(path)).status).toBe(400);
  });

  it('stores channel credentials write-only: key material never appears on any page', async () => {
    const c = await loggedIn('owner@test.example');
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const keyBody = pem.split('\n')[5];
    const config = JSON.stringify({ app_id: '2021000000000042', private_key: pem, alipay_public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    const token = await c.tokenFrom('/console/channels');

    // Refused configs are not echoed back either.
    const notJson = await c.post('/console/channels', { _csrf: token, provider: 'alipay', mode: 'live', config: `{"private_key": "${pem}` });
    expect(notJson.status).toBe(400);
    const badKey = await c.post('/console/channels', { _csrf: token, provider: 'alipay', mode: 'live', config: JSON.stringify({ app_id: '2021000000000042', private_key: pem.slice(0, 200), alipay_public_key: 'nope' }) });
    expect(badKey.status).toBe(400);
    expect(badKey.text).toContain('private_key');
    for (const res of [notJson, badKey]) {
      expect(res.text).not.toContain('PRIVATE KEY');
      expect(res.text).not.toContain(pem.split('\n')[1]);
    }

    const saved = await c.post('/console/channels', { _csrf: token, provider: 'alipay', mode: 'live', config });
    expect(saved.status).toBe(303);
    const channels = await c.get('/console/channels');
    expect(channels.text).toMatch(/<td data-mode="live">configured \(live\), updated \d{4}-\d{2}-\d{2}/);
    const payment = await paidPayment(g.app.secret_key, 100);
    for (const path of ['/console/channels', '/console/keys', '/console/payments', `/console/payments/${payment.id}`, '/console/webhooks', '/console/refunds', '/console/reconciliation']) {
      const page = await c.get(path);
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('PRIVATE KEY');
      expect(page.text).not.toContain(keyBody);
      expect(page.text).not.toContain('2021000000000042');
    }
  });
});

describe('console reconciliation', () => {
  it('sums succeeded payments and refunds per channel, finds mismatches with the channel, exports CSV', async () => {
    const app = await createApp(g.deps.db, { name: 'Books Shop' });
    await createConsoleUser(g.deps.db, { email: 'books@test.example', appId: app.app_id, password: PASSWORD });
    const a = await paidPayment(app.secret_key, 1000);
    const b = await paidPayment(app.secret_key, 2500);
    expect((await apiAs(app.secret_key, 'POST', `/v1/payments/${a.id}/refunds`, { amount: 300, reason: '=HYPERLINK("x")' })).body.status).toBe('succeeded');
    const lost = await paidPayment(app.secret_key, 800, 'drop');
    expect(lost.status).toBe('pending');

    const c = await loggedIn('books@test.example');
    const today = beijingDate(Date.now());
    const page = await c.get(`/console/reconciliation?from=${today}&to=${today}`);
    expect(page.status).toBe(200);
    const row = /<tr data-channel="alipay_pc" data-currency="CNY">([\s\S]*?)<\/tr>/.exec(page.text)![1];
    expect(row).toMatch(/data-payments-count>2</);
    expect(row).toContain('data-payments-sum="3500"');
    expect(row).toMatch(/data-refunds-count>1</);
    expect(row).toContain('data-refunds-sum="300"');
    expect(row).toContain('data-net="3200"');
    // Without dates the page opens on the week up to the latest day with a payment: today's, here.
    const opened = (await c.get('/console/reconciliation')).text;
    expect(opened).not.toContain('data-empty');
    expect(opened).toContain(`name="to" type="date" value="${today}"`);

    const csv = await c.get(`/console/reconciliation/transactions.csv?from=${today}&to=${today}`);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toContain(`checkstand-test-${today}.csv`);
    const lines = csv.text.replace(/^\uFEFF/, '').trim().split('\r\n');
    expect(lines[0]).toBe('type,id,time_beijing,channel,payment_id,out_trade_no,channel_order_no,channel_trade_no,amount,amount_minor,currency,automatic,reason');
    expect(lines).toHaveLength(4);
    expect(lines.filter((l) => l.startsWith('payment,')).map((l) => l.split(',')[8]).sort()).toEqual(['10.00', '25.00']);
    const refundLine = lines.find((l) => l.startsWith('refund,'))!;
    expect(refundLine).toContain(',-3.00,-300,CNY,false,');
    // A formula from a customer's order is neutralised for spreadsheets.
    expect(refundLine).toContain(`"'=HYPERLINK(""x"")"`);
    expect(csv.text).toContain(b.channel_trade_no);

    // Check with the channel: the lost notify, and an amount that differs.
    await g.deps.db('payments').where({ id: b.id }).update({ amount: 2400 });
    const token = await c.tokenFrom(`/console/reconciliation?from=${today}&to=${today}`);
    const check = await c.post('/console/reconciliation/check', { _csrf: token, from: today, to: today });
    expect(check.status).toBe(200);
    expect(check.text).toContain('data-check-report');
    const kinds = [...check.text.matchAll(/data-mismatch="([^"]+)" data-payment-id="([^"]+)"/g)].map((m) => [m[1], m[2]]);
    expect(kinds).toEqual(expect.arrayContaining([['paid_at_channel', lost.id], ['amount_differs', b.id]]));
    expect(kinds).toHaveLength(2);
    expect(check.text).toContain('Checked 3 channel orders');

    expect((await c.get('/console/reconciliation?from=2025-02-30')).status).toBe(400);
    expect((await c.get('/console/reconciliation?from=2025-01-01&to=2025-06-01')).status).toBe(400); // over a quarter
    expect((await c.get('/console/reconciliation?from=2025-01-01&to=2025-03-31')).status).toBe(200);
    expect((await c.get('/console/reconciliation/transactions.csv?from=2025-01-01&to=2025-12-31')).status).toBe(200); // the CSV streams any range
  });
});
