/**
 * The console's flows of issue 16 ("Tests"), each clicked through in Chromium: find and refund a
 * payment and see refund.succeeded; roll an API key with an overlap, then revoke the old one; a
 * viewer cannot refund, not even with a forged form; the channel credential form never echoes a
 * secret; a cross-site form POST is refused; a locked-out sign-in. One browser for the file.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { haveChromium, launchBrowser } from '../support/browser.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { LOCK_AFTER } from '../../server/dashboard/lockout.ts';

const PASSWORD = 'a long enough passphrase';
const OWNER = 'owner@flows.example';
const VIEWER = 'viewer@flows.example';
const KEYS_OWNER = 'owner@keys-flow.example';
const LOCKED = 'locked@flows.example';
const SESSION = '__Host-checkstand_console';

describe.skipIf(!haveChromium)('console flows in Chromium (issue 16)', () => {
  let g: TestGateway;
  let keysApp: CreatedApp;
  let browser: Browser;
  /** The attacker's site: a page that submits a form to the console as soon as it loads. */
  let attacker: http.Server;
  let attackerPort: number;

  beforeAll(async () => {
    g = await startTestGateway({ workers: false });
    // The key flow rolls and revokes its app's test key: an app of its own, so g.api keeps working.
    keysApp = await createApp(g.deps.db, { name: 'Key Roll Shop' });
    await Promise.all([
      createConsoleUser(g.deps.db, { email: OWNER, appId: g.app.app_id, password: PASSWORD }),
      createConsoleUser(g.deps.db, { email: VIEWER, appId: g.app.app_id, password: PASSWORD, role: 'viewer' }),
      createConsoleUser(g.deps.db, { email: KEYS_OWNER, appId: keysApp.app_id, password: PASSWORD }),
      createConsoleUser(g.deps.db, { email: LOCKED, appId: g.app.app_id, password: PASSWORD }),
    ]);
    attacker = http.createServer((req, res) => {
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      const fields = JSON.parse(q.get('fields') ?? '{}') as Record<string, string>;
      const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><title>Win a prize</title><form method="post" action="${esc(q.get('action') ?? '')}">${
        Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('')
      }</form><script>document.forms[0].submit()</script>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, resolve));
    attackerPort = (attacker.address() as AddressInfo).port;
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => attacker?.close(resolve));
    await g?.close();
  });

  async function paidPayment(amount: number): Promise<{ id: string; out_trade_no: string; channel_trade_no: string }> {
    const created = (await g.api('POST', '/v1/payments', { amount, subject: 'Oolong 乌龙茶', out_trade_no: `flow_${crypto.randomBytes(6).toString('hex')}` })).body;
    const paid = (await g.api('POST', `/v1/test_helpers/payments/${created.id}/simulate`, { channel: 'alipay_pc' })).body;
    expect(paid.status).toBe('succeeded');
    return paid;
  }

  async function signIn(email: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    await page.goto(`${g.url}/console/login`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await Promise.all([page.waitForURL(/\/console\/payments$/), page.getByRole('button', { name: 'Sign in' }).click()]);
    return { context, page };
  }

  /** Clicks a submit button and answers the navigation's main response. */
  async function submit(page: Page, click: () => Promise<void>, path: RegExp) {
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && path.test(new URL(r.url()).pathname)),
      click(),
    ]);
    await page.waitForLoadState('load');
    return response;
  }

  it('finds a payment by search and status filter, refunds it after a confirmation naming the amount, and shows refund.succeeded', async () => {
    const paid = await paidPayment(4200);
    // A pending payment with the same subject: the status filter leaves it out.
    const pending = (await g.api('POST', '/v1/payments', { amount: 4200, subject: 'Oolong 乌龙茶', out_trade_no: `${paid.out_trade_no}_b` })).body;
    const { context, page } = await signIn(OWNER);

    await page.getByLabel('Find a payment').fill(paid.out_trade_no);
    await page.getByLabel('Status').selectOption('succeeded');
    await Promise.all([page.waitForURL(/q=.*status=succeeded/), page.getByRole('button', { name: 'Search' }).click()]);
    const rows = page.locator('[data-payment-id]');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-payment-id')).toBe(paid.id);
    expect(await page.locator(`[data-payment-id="${pending.id}"]`).count()).toBe(0);

    await Promise.all([page.waitForURL(new RegExp(`/console/payments/${paid.id}$`)), page.getByRole('link', { name: paid.out_trade_no }).click()]);
    // An amount typed in: the confirmation names that amount; declined, nothing is refunded.
    await page.getByLabel(/^Amount in CNY/).fill(' 12.50 ');
    const declined = new Promise<string>((resolve) => page.once('dialog', (d) => {
      resolve(d.message());
      void d.dismiss();
    }));
    await page.getByRole('button', { name: 'Refund' }).click();
    expect(await declined).toBe(`Refund ${paid.out_trade_no}: 12.50 CNY?`);
    expect(page.url()).toMatch(new RegExp(`/console/payments/${paid.id}$`));
    expect((await g.api('GET', `/v1/payments/${paid.id}`)).body).toMatchObject({ amount_refunded: 0 });
    await page.getByLabel(/^Amount in CNY/).fill('');
    // The amount left empty refunds all that is left: the confirmation names it.
    let question = '';
    page.once('dialog', (d) => {
      question = d.message();
      void d.accept();
    });
    await Promise.all([page.waitForURL(/refunded=re_/), page.getByRole('button', { name: 'Refund' }).click()]);
    expect(question).toContain(paid.out_trade_no);
    expect(question).toContain('42.00');
    expect(question).toContain('all that is left');
    const refundId = new URL(page.url()).searchParams.get('refunded')!;
    await page.waitForSelector('[data-refund-created]');
    expect(await page.locator(`[data-refund-id="${refundId}"]`).textContent()).toContain('succeeded');

    const events = page.locator('section[aria-labelledby="events-title"] tbody tr', { hasText: 'refund.succeeded' });
    expect(await events.count()).toBe(1);
    const timelineEvent = page.locator('[data-timeline] [data-kind="event"]', { hasText: 'refund.succeeded' });
    expect(await timelineEvent.count()).toBe(1);
    expect(await page.locator(`[data-timeline] [data-kind="refund"][data-id="${refundId}"]`).getAttribute('data-status')).toBe('succeeded');

    const stored = await g.deps.db('events').where({ app_id: g.app.app_id, type: 'refund.succeeded' }).select('id', 'data');
    const ofRefund = stored.filter((e) => String(e.data).includes(refundId));
    expect(ofRefund).toHaveLength(1);
    expect(await events.locator('code').textContent()).toBe(ofRefund[0].id);
    expect((await g.api('GET', `/v1/payments/${paid.id}`)).body).toMatchObject({ amount_refunded: 4200 });
    await context.close();
  }, 40_000);

  it('rolls an API key with a 1 hour overlap (both keys work), then revokes the old one (only the new works)', async () => {
    const call = (key: string) => fetch(`${g.url}/v1/payments`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
    const oldId = (await g.deps.db('api_keys').where({ app_id: keysApp.app_id, livemode: false }).whereNull('revoked_at').first('id')).id as string;
    expect(await call(keysApp.secret_key)).toBe(200);
    const { context, page } = await signIn(KEYS_OWNER);
    await page.goto(`${g.url}/console/keys`);
    const oldRow = page.locator(`tr[data-key="${oldId}"]`);
    expect(await oldRow.getAttribute('data-status')).toBe('active');

    await oldRow.getByLabel('Old key works for').selectOption({ label: '1 hour' });
    const rolled = await submit(page, () => oldRow.getByRole('button', { name: 'Roll' }).click(), /\/roll$/);
    expect(rolled.status()).toBe(200);
    const secret = (await page.locator('[data-new-key] [data-secret]').textContent())!.trim();
    expect(secret).toMatch(/^sk_test_/);
    expect(await page.locator('[data-new-key]').textContent()).toContain('keeps working until');
    expect(await oldRow.getAttribute('data-status')).toBe('expiring');
    expect(await call(keysApp.secret_key)).toBe(200);
    expect(await call(secret)).toBe(200);

    // Shown once: the page read again carries neither secret.
    await page.goto(`${g.url}/console/keys`);
    const html = await page.content();
    expect(html).not.toContain(secret);
    expect(html).not.toContain(keysApp.secret_key);

    // The overlap ended early: the old key revoked from its row (a tick and a confirmation).
    await oldRow.getByLabel('I understand').check();
    page.once('dialog', (d) => void d.accept());
    const revoked = await submit(page, () => oldRow.getByRole('button', { name: 'Revoke' }).click(), /\/revoke$/);
    expect(revoked.status()).toBe(200);
    expect(await oldRow.getAttribute('data-status')).toBe('revoked');
    expect(await call(keysApp.secret_key)).toBe(401);
    expect(await call(secret)).toBe(200);
    await context.close();
  }, 30_000);

  it('a viewer sees a payment without a refund form; a refund forged from the page with its form token gets the 403 page', async () => {
    const paid = await paidPayment(1800);
    const { context, page } = await signIn(VIEWER);
    await page.goto(`${g.url}/console/payments/${paid.id}`);
    await page.waitForSelector(`[data-payment="${paid.id}"]`);
    expect(await page.textContent('main')).toContain(paid.channel_trade_no);
    expect(await page.locator('[data-role-refused]').textContent()).toContain('viewer');
    expect(await page.locator('form[action$="/refunds"]').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Refund' }).count()).toBe(0);

    // The session's real form token, from the page's own forms (mode switch, sign out).
    const forged = await submit(page, () => page.evaluate((action) => {
      const token = (document.querySelector('input[name="_csrf"]') as HTMLInputElement).value;
      const form = document.createElement('form');
      form.method = 'post';
      form.action = action;
      for (const [name, value] of Object.entries({ _csrf: token, amount: '18.00', refund_key: 'console-AAAAAAAAAAAAAAAAAAAAAAAA' })) {
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = name;
        input.value = value;
        form.append(input);
      }
      document.body.append(form);
      form.submit();
    }, `/console/payments/${paid.id}/refunds`), /\/refunds$/);
    expect(forged.status()).toBe(403);
    expect(await page.locator('h1').textContent()).toBe('Not allowed');
    expect(await page.locator('[data-error]').textContent()).toContain('your role in this app is viewer');
    expect(await g.deps.db('refunds').where({ payment_id: paid.id })).toHaveLength(0);
    expect((await g.api('GET', `/v1/payments/${paid.id}`)).body.amount_refunded).toBe(0);
    await context.close();
  }, 30_000);

  it('the channel credential form never echoes a secret: not after a refusal, not after a save', async () => {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const keyLines = pem.split('\n').slice(1, -2);
    const good = { app_id: '2021000000000077', private_key: pem, alipay_public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
    const { context, page } = await signIn(OWNER);
    await page.goto(`${g.url}/console/channels`);

    const noSecretIn = async (text: string) => {
      expect(text).not.toContain('PRIVATE KEY');
      for (const line of keyLines) expect(text).not.toContain(line);
    };
    // Refused: not JSON (its parse error would quote the key), a key cut short, a misspelt key name.
    for (const config of [
      `{"private_key": "${pem}`,
      JSON.stringify({ ...good, private_key: pem.slice(0, 300) }),
      JSON.stringify({ ...good, private_kye: pem }),
    ]) {
      await page.getByLabel('Channel', { exact: true }).selectOption('alipay');
      await page.getByLabel('Mode').selectOption('live');
      await page.getByLabel('Configuration (JSON)').fill(config);
      const refused = await submit(page, () => page.getByRole('button', { name: 'Save credentials' }).click(), /\/console\/channels$/);
      expect(refused.status()).toBe(400);
      await noSecretIn(await refused.text());
      await noSecretIn(await page.content());
      const error = await page.locator('[role="alert"][data-error]').textContent();
      expect(error!.length).toBeGreaterThan(0);
      await noSecretIn(error!);
      expect(await page.getByLabel('Configuration (JSON)').inputValue()).toBe('');
      // The choices are kept, so only the configuration needs pasting again.
      expect(await page.getByLabel('Mode').inputValue()).toBe('live');
    }
    expect(await g.deps.db('channel_configs').where({ app_id: g.app.app_id, provider: 'alipay', livemode: true })).toHaveLength(0);

    await page.getByLabel('Channel', { exact: true }).selectOption('alipay');
    await page.getByLabel('Mode').selectOption('live');
    await page.getByLabel('Configuration (JSON)').fill(JSON.stringify(good));
    await Promise.all([page.waitForURL(/saved=alipay-live/), page.getByRole('button', { name: 'Save credentials' }).click()]);
    expect(await page.locator('[data-saved]').textContent()).toContain('alipay live');
    expect(await page.locator('[data-provider="alipay"] [data-mode="live"]').textContent()).toMatch(/^configured \(live\)/);
    const html = await page.content();
    await noSecretIn(html);
    expect(html).not.toContain(good.app_id);
    expect(await page.getByLabel('Configuration (JSON)').inputValue()).toBe('');
    expect(await g.deps.db('channel_configs').where({ app_id: g.app.app_id, provider: 'alipay', livemode: true })).toHaveLength(1);
    await context.close();
  }, 30_000);

  it('a form POST from another site is refused: without the cookie (SameSite) from a cross-site page, 403 from a same-site other origin', async () => {
    const paid = await paidPayment(2600);
    const { context, page } = await signIn(OWNER);
    const keyCount = async () => (await g.deps.db('api_keys').where({ app_id: g.app.app_id })).length;
    const keysBefore = await keyCount();
    // The victim's real form token, as if it had leaked: the origin checks alone must refuse.
    await page.goto(`${g.url}/console/payments/${paid.id}`);
    const token = await page.locator('form[action$="/refunds"] input[name="_csrf"]').inputValue();
    const refundKey = await page.locator('input[name="refund_key"]').inputValue();
    const forge = (host: string, action: string, fields: Record<string, string>) =>
      `http://${host}:${attackerPort}/?action=${encodeURIComponent(g.url + action)}&fields=${encodeURIComponent(JSON.stringify(fields))}`;
    const visit = async (url: string, path: RegExp) => {
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && path.test(new URL(r.url()).pathname)),
        page.goto(url),
      ]);
      await page.waitForURL((u) => u.port !== String(attackerPort));
      await page.waitForLoadState('load');
      return response;
    };
    const refundAction = `/console/payments/${paid.id}/refunds`;

    // 127.0.0.1 is another site than localhost: the SameSite=Lax cookie stays home, so the POST has
    // no session and is sent to the sign-in page (whose top-level GET has the cookie again, and
    // goes on to the payments list).
    const crossSite = await visit(forge('127.0.0.1', refundAction, { _csrf: token, refund_key: refundKey, amount: '26.00' }), /\/refunds$/);
    expect((await crossSite.request().allHeaders()).cookie ?? '').not.toContain(SESSION);
    expect(crossSite.status()).toBe(303);
    expect(crossSite.headers().location).toBe('/console/login');
    expect(page.url()).not.toContain('refunded=');

    // Another port of localhost is the same site (the cookie goes along) but another origin: 403.
    for (const [action, fields] of [
      [refundAction, { _csrf: token, refund_key: refundKey, amount: '26.00' }],
      [refundAction, { amount: '26.00' }],
      ['/console/keys/create', { _csrf: token, mode: 'test' }],
    ] as const) {
      const sameSite = await visit(forge('localhost', action, fields), new RegExp(`${action}$`));
      expect((await sameSite.request().allHeaders()).cookie ?? '').toContain(SESSION);
      expect(sameSite.status(), action).toBe(403);
      expect(await page.locator('h1').textContent()).toBe('Form refused');
    }

    expect(await g.deps.db('refunds').where({ payment_id: paid.id })).toHaveLength(0);
    expect(await keyCount()).toBe(keysBefore);
    // The victim's session is untouched and its own form still works.
    await page.goto(`${g.url}/console/payments/${paid.id}`);
    expect(await page.locator('form[action$="/refunds"]').count()).toBe(1);
    await context.close();
  }, 30_000);

  it(`locks an email after ${LOCK_AFTER} failed sign-ins: the right password is refused with the lockout message, in a second process too`, async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    const attempt = async (password: string) => {
      await page.getByLabel('Email').fill(LOCKED);
      await page.getByLabel('Password').fill(password);
      const response = await submit(page, () => page.getByRole('button', { name: 'Sign in' }).click(), /\/console\/login$/);
      return { status: response.status(), error: await page.locator('[data-error]').textContent() };
    };
    await page.goto(`${g.url}/console/login`);
    for (let i = 0; i < LOCK_AFTER; i++) expect(await attempt(`wrong guess ${i}`)).toEqual({ status: 401, error: 'Wrong email or password.' });
    expect(await attempt(PASSWORD)).toEqual({ status: 429, error: 'Too many failed attempts. Wait 15 minutes and try again.' });
    expect(new URL(page.url()).pathname).toBe('/console/login');
    expect((await context.cookies()).some((c) => c.name === SESSION)).toBe(false);

    // Here the per-process rate limit answered first; a second process behind the same PUBLIC_URL
    // has no count of its own, so its refusal is the account lockout, kept in the database.
    const g2 = await startTestGateway({ workers: false, sameDatabaseAs: g });
    try {
      const publicOrigin = new URL(g.deps.config.publicUrl).origin;
      // Behind a balancer both processes have one origin; here the second has a port of its own, so
      // its sign-in POST is sent with the public origin (by Playwright, with the context's cookies).
      await page.route(`${g2.url}/console/login`, async (route) => {
        if (route.request().method() !== 'POST') return route.continue();
        const { cookie: _cookie, ...headers } = await route.request().allHeaders();
        await route.fulfill({ response: await route.fetch({ headers: { ...headers, origin: publicOrigin }, maxRedirects: 0 }) });
      });
      await page.goto(`${g2.url}/console/login`);
      expect(await attempt(PASSWORD)).toEqual({ status: 429, error: 'Too many failed attempts. Wait 15 minutes and try again.' });
      expect((await context.cookies()).some((c) => c.name === SESSION)).toBe(false);
    } finally {
      await g2.close();
    }
    // Another account signs in as usual.
    await (await signIn(OWNER)).context.close();
    await context.close();
  }, 40_000);
});
