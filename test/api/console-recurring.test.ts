/**
 * The console's agreement and subscription pages: lists with filters, each object's page, and
 * the actions the API has — terminate an agreement, cancel a subscription now or at the period's
 * end, and in test mode advance its test clock — through the same services, behind CSRF, scoped
 * to the console user's app and mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { ConsoleClient } from '../support/console.ts';
import { newCustomer } from '../support/accounts.ts';
import { beijingDay, signedAgreement } from '../support/subscriptions.ts';

const PASSWORD = 'a long enough passphrase';
let g: TestGateway;
let other: CreatedApp;
/** The other app, driven through the same helpers with its own key. */
let theirs: TestGateway;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  other = await createApp(g.deps.db, { name: 'Other Shop' });
  theirs = {
    ...g,
    app: other,
    async api(method, p, body, headers = {}) {
      const res = await fetch(g.url + p, { method, headers: { authorization: `Bearer ${other.secret_key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: await res.json(), headers: res.headers };
    },
  };
  await createConsoleUser(g.deps.db, { email: 'owner@recurring.example', appId: g.app.app_id, password: PASSWORD });
});
afterAll(() => g?.close());

async function loggedIn(): Promise<ConsoleClient> {
  const c = new ConsoleClient(g.url);
  expect((await c.login('owner@recurring.example', PASSWORD)).status).toBe(303);
  return c;
}

/** A monthly rule on a day 1–28, `days` from now. */
const monthly = (days: number) => {
  const d = beijingDay(days);
  return { period_type: 'MONTH', period: 1, execute_time: d.slice(8, 10) > '28' ? `${d.slice(0, 8)}28` : d };
};
const field = (html: string, name: string) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1] ?? '';

async function newSubscription(days = 3, subject = 'Gold plan') {
  const { agreement, customer } = await signedAgreement(g, monthly(days));
  const res = await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 2500, subject, interval: 'month' });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return { agreement, customer, subscription: res.body };
}

describe('console: agreements and subscriptions', () => {
  it('are behind the login and in the navigation, empty at first', async () => {
    const anon = new ConsoleClient(g.url);
    for (const path of ['/console/agreements', '/console/subscriptions', '/console/agreements/agr_x', '/console/subscriptions/sub_x']) {
      const res = await anon.get(path);
      expect(res.status).toBe(303);
      expect(res.location).toBe(`/console/login?next=${encodeURIComponent(path)}`);
    }
    const c = await loggedIn();
    const agreements = await c.get('/console/agreements');
    expect(agreements.status).toBe(200);
    expect(agreements.text).toContain('href="/console/agreements" aria-current="page"');
    expect(agreements.text).toContain('href="/console/subscriptions"');
    expect(agreements.text).toContain('data-empty');
    const subscriptions = await c.get('/console/subscriptions');
    expect(subscriptions.text).toContain('href="/console/subscriptions" aria-current="page"');
    expect(subscriptions.text).toContain('data-empty');
    expect(subscriptions.headers.get('cache-control')).toBe('no-store');
    // Every other page has them in its navigation too.
    expect((await c.get('/console/payments')).text).toMatch(/href="\/console\/agreements"[\s\S]*href="\/console\/subscriptions"/);
  });

  it('an agreement made through the API is listed, filtered, and shown on its page', async () => {
    const customer = await newCustomer(g, { out_user_id: 'agr_user_1', name: 'Wang <i>Wu</i>' });
    const created = await g.api('POST', '/v1/agreements', { customer: customer.id, channel: 'alipay', period_rule: monthly(5), single_amount_max: 4321, metadata: { plan: '<b>gold</b>' } });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const a = created.body;
    const c = await loggedIn();
    const list = await c.get('/console/agreements');
    expect(list.text).toContain(`data-agreement-id="${a.id}"`);
    expect(list.text).toContain(`href="/console/agreements/${a.id}"`);
    expect(list.text).toContain('status-pending');
    expect(list.text).toContain('¥43.21');
    expect((await c.get('/console/agreements?status=pending&channel=alipay')).text).toContain(`data-agreement-id="${a.id}"`);
    expect((await c.get('/console/agreements?status=active')).text).not.toContain(`data-agreement-id="${a.id}"`);
    expect((await c.get('/console/agreements?channel=wechatpay')).text).toContain('data-empty');
    // Values that are not a status or a channel are ignored; a cursor of no such object is a 400.
    for (const q of ['status=bogus', 'channel=%3Cscript%3E', 'status[]=x&channel=', 'starting_after=%27%3B--']) {
      const res = await c.get(`/console/agreements?${q}`);
      expect(res.status, q).toBe(200);
      expect(res.text).toContain(`data-agreement-id="${a.id}"`);
      expect(res.text).not.toContain('<script>');
    }
    expect((await c.get('/console/agreements?starting_after=agr_nosuchone')).status).toBe(400);
    expect((await c.get('/console/subscriptions?status=%00')).status).toBe(400);
    expect((await c.get('/console/subscriptions?status=bogus')).status).toBe(200);

    const page = await c.get(`/console/agreements/${a.id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`data-agreement="${a.id}"`);
    expect(page.text).toContain(`href="/console/customers/${customer.id}"`);
    expect(page.text).toContain(a.external_agreement_no ?? '');
    expect(page.text).toContain(`first deduction ${a.period_rule.execute_time}`);
    expect(page.text).toContain('¥43.21');
    expect(page.text).toContain('&lt;b&gt;gold&lt;/b&gt;');
    expect(page.text).not.toContain('<b>gold</b>');
    expect(page.text).toMatch(/data-signed>—/);
    expect(page.text).toContain('data-terminate');
    expect(page.text).toMatch(/data-confirm="Terminate agreement/);
    const stored = await g.deps.db('agreements').where({ id: a.id }).first();
    expect(page.text).toContain(stored.external_agreement_no);
  });

  it('terminate from the console: a form without the token is refused; with it the agreement ends, agreement.terminated is written and its subscription ends', async () => {
    const { agreement, subscription } = await newSubscription(4, 'Ends with its agreement');
    const c = await loggedIn();
    const page = await c.get(`/console/agreements/${agreement.id}`);
    expect(page.text).toContain(`data-subscription-id="${subscription.id}"`);
    expect(page.text).toContain(`href="/console/subscriptions/${subscription.id}"`);
    expect(page.text).not.toMatch(/data-signed>—/);
    const token = field(page.text, '_csrf');

    const refused = await c.post(`/console/agreements/${agreement.id}/terminate`, {});
    expect(refused.status).toBe(403);
    expect((await c.post(`/console/agreements/${agreement.id}/terminate`, { _csrf: token }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await g.api('GET', `/v1/agreements/${agreement.id}`)).body.status).toBe('active');

    const res = await c.post(`/console/agreements/${agreement.id}/terminate`, { _csrf: token });
    expect(res.status, res.text.slice(0, 300)).toBe(303);
    expect(res.location).toBe(`/console/agreements/${agreement.id}?done=terminate`);
    expect((await g.api('GET', `/v1/agreements/${agreement.id}`)).body).toMatchObject({ status: 'terminated', terminated_reason: 'merchant' });
    const events = await g.deps.db('events').where({ object_id: agreement.id }).orderBy('created').orderBy('id').select('type');
    expect(events.map((e) => e.type)).toEqual(['agreement.active', 'agreement.terminated']);
    expect((await g.api('GET', `/v1/subscriptions/${subscription.id}`)).body).toMatchObject({ status: 'canceled', cancellation_reason: 'agreement_terminated' });
    const stored = await g.deps.db('sandbox_agreements').where({ agreement_no: agreement.channel_agreement_no }).first();
    expect(stored.status).toBe('UNSIGN');

    const after = await c.get(res.location!);
    expect(after.text).toContain('data-terminated');
    expect(after.text).toContain('status-terminated');
    expect(after.text).not.toContain('data-terminate>');
    expect(after.text).not.toContain(`/agreements/${agreement.id}/terminate`);
    expect(after.text).not.toMatch(/data-terminated-at>—/);
    // Sent again (a second tab), it stays terminated with one event.
    expect((await c.post(`/console/agreements/${agreement.id}/terminate`, { _csrf: token })).status).toBe(303);
    expect(await g.deps.db('events').where({ object_id: agreement.id, type: 'agreement.terminated' }).count({ n: '*' }).then((r) => Number(r[0].n))).toBe(1);
    expect((await c.get('/console/agreements?status=terminated')).text).toContain(`data-agreement-id="${agreement.id}"`);
  });

  it("a subscription's page lists its charges after an advance of its test clock, each linked to its payment", async () => {
    const { agreement, customer, subscription: s } = await newSubscription(3, 'Monthly <em>box</em>');
    const c = await loggedIn();
    const list = await c.get('/console/subscriptions?status=active');
    expect(list.text).toContain(`data-subscription-id="${s.id}"`);
    expect(list.text).toContain('Monthly &lt;em&gt;box&lt;/em&gt;');
    expect((await c.get('/console/subscriptions?status=canceled')).text).not.toContain(`data-subscription-id="${s.id}"`);

    const page = await c.get(`/console/subscriptions/${s.id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`data-subscription="${s.id}"`);
    expect(page.text).toContain('¥25.00 every 1 month');
    expect(page.text).toContain(`href="/console/customers/${customer.id}"`);
    expect(page.text).toContain(`href="/console/agreements/${agreement.id}"`);
    expect(page.text).toMatch(new RegExp(`data-next-charge>${agreement.period_rule.execute_time}`));
    expect(page.text).toContain('data-cancel-at-period-end="false"');
    expect(page.text).toContain('data-test-clock-form');
    expect(page.text).toMatch(/Charges<\/h2>\s*<p class="empty" data-empty>/);
    const token = field(page.text, '_csrf');

    // A time the form cannot read, or one before the clock, is shown on the page; nothing moves.
    const bad = await c.post(`/console/subscriptions/${s.id}/advance`, { _csrf: token, to: 'tomorrow' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('data-error');
    const back = await c.post(`/console/subscriptions/${s.id}/advance`, { _csrf: token, to: '2020-01-01T00:00' });
    expect(back.status).toBe(400);
    expect(back.text).toContain('never go back');
    expect((await c.post(`/console/subscriptions/${s.id}/advance`, { to: `${agreement.period_rule.execute_time}T12:00` })).status).toBe(403);

    const res = await c.post(`/console/subscriptions/${s.id}/advance`, { _csrf: token, to: `${agreement.period_rule.execute_time}T12:00` });
    expect(res.status, res.text.slice(0, 300)).toBe(303);
    expect(res.location).toBe(`/console/subscriptions/${s.id}?done=advance`);
    const payments = (await g.api('GET', `/v1/payments?subscription=${s.id}`)).body.data;
    expect(payments).toHaveLength(1);
    expect(payments[0]).toMatchObject({ status: 'succeeded', amount: 2500 });
    const after = await c.get(res.location!);
    expect(after.text).toContain('data-advanced');
    expect(after.text).toContain(`data-charge="${payments[0].id}"`);
    expect(after.text).toContain(`href="/console/payments/${payments[0].id}"`);
    expect(after.text).toMatch(new RegExp(`data-charge="${payments[0].id}"[\\s\\S]*status-succeeded`));
    expect(after.text).toContain('data-test-clock');
    expect(after.text).toContain('subscription.renewed');
    expect((await c.get(`/console/payments/${payments[0].id}`)).status).toBe(200);
    expect((await g.api('GET', `/v1/subscriptions/${s.id}`)).body).toMatchObject({ status: 'active', latest_payment: payments[0].id });
  });

  it('cancel at period end, then cancel now, behind confirmations; an unknown choice is refused', async () => {
    const { subscription: s } = await newSubscription(6, 'Cancel me');
    const c = await loggedIn();
    const page = await c.get(`/console/subscriptions/${s.id}`);
    expect(page.text).toMatch(/data-confirm="Cancel Cancel me \(CN¥25.00\) now\?/);
    expect(page.text).toMatch(/data-confirm="Cancel Cancel me at the end of the current period/);
    const token = field(page.text, '_csrf');

    const odd = await c.post(`/console/subscriptions/${s.id}/cancel`, { _csrf: token, when: 'someday' });
    expect(odd.status).toBe(400);
    expect(odd.text).toContain('data-error');
    expect((await c.post(`/console/subscriptions/${s.id}/cancel`, { when: 'now' })).status).toBe(403);
    expect((await g.api('GET', `/v1/subscriptions/${s.id}`)).body).toMatchObject({ status: 'active', cancel_at_period_end: false });

    const later = await c.post(`/console/subscriptions/${s.id}/cancel`, { _csrf: token, when: 'period_end' });
    expect(later.status).toBe(303);
    expect((await g.api('GET', `/v1/subscriptions/${s.id}`)).body).toMatchObject({ status: 'active', cancel_at_period_end: true });
    const pending = await c.get(later.location!);
    expect(pending.text).toContain('data-canceled');
    expect(pending.text).toContain('data-cancel-at-period-end="true"');
    expect(pending.text).toMatch(/data-next-charge>none: it ends/);
    expect(pending.text).not.toContain('value="period_end"');
    expect(pending.text).toContain('value="now"');

    const now = await c.post(`/console/subscriptions/${s.id}/cancel`, { _csrf: token, when: 'now' });
    expect(now.status).toBe(303);
    expect((await g.api('GET', `/v1/subscriptions/${s.id}`)).body).toMatchObject({ status: 'canceled', cancellation_reason: 'requested' });
    expect(await g.deps.db('events').where({ object_id: s.id, type: 'subscription.canceled' }).count({ n: '*' }).then((r) => Number(r[0].n))).toBe(1);
    const ended = await c.get(now.location!);
    expect(ended.text).toContain('status-canceled');
    expect(ended.text).not.toContain('data-cancel>');
    expect(ended.text).not.toContain('value="now"');
    expect((await c.get('/console/subscriptions?status=canceled')).text).toContain(`data-subscription-id="${s.id}"`);
  });

  it("another app's agreement and subscription are 404, and so are this app's in live mode; live mode has no test clock", async () => {
    const mine = await newSubscription(7, 'Mine');
    const { agreement: a, subscription: theirSub } = await (async () => {
      const { agreement } = await signedAgreement(theirs, monthly(8));
      const res = await theirs.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 100, subject: 'Theirs', interval: 'month' });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return { agreement, subscription: res.body };
    })();
    const c = await loggedIn();
    expect((await c.get(`/console/agreements/${a.id}`)).status).toBe(404);
    expect((await c.get(`/console/subscriptions/${theirSub.id}`)).status).toBe(404);
    expect((await c.get('/console/agreements')).text).not.toContain(a.id);
    expect((await c.get('/console/subscriptions')).text).not.toContain(theirSub.id);
    const token = await c.tokenFrom('/console/agreements');
    expect((await c.post(`/console/agreements/${a.id}/terminate`, { _csrf: token })).status).toBe(404);
    expect((await c.post(`/console/subscriptions/${theirSub.id}/cancel`, { _csrf: token, when: 'now' })).status).toBe(404);
    expect((await c.post(`/console/subscriptions/${theirSub.id}/advance`, { _csrf: token, to: '2030-01-01T00:00' })).status).toBe(404);
    expect((await theirs.api('GET', `/v1/agreements/${a.id}`)).body.status).toBe('active');
    expect((await theirs.api('GET', `/v1/subscriptions/${theirSub.id}`)).body.status).toBe('active');
    for (const path of ['/console/agreements/agr_', '/console/agreements/..%2Fpayments', '/console/subscriptions/sub_%3Cb%3E', '/console/subscriptions/pay_abc']) {
      expect((await c.get(path)).status, path).toBe(404);
    }

    // Live mode: the test-mode objects are not there, and neither is the test clock.
    expect((await c.post('/console/mode', { _csrf: token, mode: 'live', return_to: `/console/subscriptions/${mine.subscription.id}` })).location).toBe('/console/subscriptions');
    expect((await c.get(`/console/subscriptions/${mine.subscription.id}`)).status).toBe(404);
    expect((await c.get(`/console/agreements/${mine.agreement.id}`)).status).toBe(404);
    expect((await c.get('/console/subscriptions')).text).toContain('data-empty');
    expect((await c.post(`/console/subscriptions/${mine.subscription.id}/advance`, { _csrf: token, to: '2030-01-01T00:00' })).status).toBe(404);
    expect((await g.api('GET', `/v1/subscriptions/${mine.subscription.id}`)).body.test_clock).toBeNull();
  });
});
