/**
 * WeChat Pay 委托代扣 agreements through the API: signed on the simulator's entrustweb page, a
 * subscription charged on schedule by the test clock (pre-deduction notice, the waiting day, the
 * deduction, the PAP result), a failed charge retried inside the deduction days, the user's
 * own 解约 terminating the agreement and ending the subscription, and bad input.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { newCustomer } from '../support/accounts.ts';
import { beijingDay, until } from '../support/subscriptions.ts';

let g: TestGateway;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(() => g?.close());

const count = async (table: string) => Number((await g.deps.db(table).count({ n: '*' }))[0].n);
const eventsOf = async (id: string) => (await g.deps.db('events').where('data', 'like', `%"id":"${id}"%`).orderBy('created').orderBy('id')).map((e) => e.type);
const monthlyFrom = (date: string) => ({ period_type: 'MONTH', period: 1, execute_time: date.slice(8, 10) > '28' ? `${date.slice(0, 8)}28` : date });
const unix = (date: string, hh = 0) => Math.floor((Date.parse(`${date}T00:00:00Z`) - 8 * 3600_000) / 1000) + hh * 3600;
const addMonths = (d: string, n: number) => new Date(Date.UTC(Number(d.slice(0, 4)), Number(d.slice(5, 7)) - 1 + n, Number(d.slice(8, 10)))).toISOString().slice(0, 10);

async function openPage(url: string) {
  const res = await fetch(url);
  const html = await res.text();
  expect(res.status, html.slice(0, 300)).toBe(200);
  const field = (name: string) => html.match(new RegExp(`name="${name}" value="([^"]+)"`))?.[1] ?? '';
  return { mch_id: field('mch_id'), contract_code: field('contract_code'), t: field('t') };
}

async function wechatUser(form: Record<string, string>, action: 'sign' | 'refuse' | 'cancel') {
  const res = await fetch(`${g.url}/sandbox/wechatpay/papay/action`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ ...form, action }) });
  return (await res.json()) as any;
}

async function newAgreement(body: Record<string, unknown> = {}) {
  const c = await newCustomer(g, { out_user_id: `u_${crypto.randomBytes(4).toString('hex')}` });
  const res = await g.api('POST', '/v1/agreements', { customer: c.id, channel: 'wechatpay', period_rule: monthlyFrom(beijingDay(5)), single_amount_max: 3000, ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

async function signed(body: Record<string, unknown> = {}) {
  const a = await newAgreement(body);
  const form = await openPage(a.next_action.redirect_url ?? a.next_action.qr_code_url);
  expect((await wechatUser(form, 'sign')).status).toBe('SIGNED');
  const active = await until(async () => (await g.api('GET', `/v1/agreements/${a.id}`)).body, (x) => x.status === 'active', 'agreement.active');
  return { a: active, form };
}

describe('WeChat Pay 委托代扣 agreements', () => {
  it('signed on the entrustweb page: pending → active by the verified ADD notify (agreement.active); QR hands out the same page', async () => {
    const a = await newAgreement();
    expect(a).toMatchObject({ object: 'agreement', channel: 'wechatpay', status: 'pending', channel_agreement_no: null, next_action: { type: 'redirect' } });
    const url = new URL(a.next_action.redirect_url);
    expect(url.pathname).toBe('/sandbox/wechatpay/papay/entrustweb');
    expect(url.searchParams.get('contract_code')).toMatch(/^CS/);
    expect(url.searchParams.get('notify_url')).toBe(`${g.url}/notify/wechatpay/${g.app.app_id}`);
    const form = await openPage(a.next_action.redirect_url);
    expect((await wechatUser(form, 'refuse')).status).toBe('SIGNING');
    expect((await g.api('GET', `/v1/agreements/${a.id}`)).body.status).toBe('pending');
    expect((await wechatUser(form, 'sign')).status).toBe('SIGNED');
    const active = await until(async () => (await g.api('GET', `/v1/agreements/${a.id}`)).body, (x) => x.status === 'active', 'active');
    expect(active.channel_agreement_no).toMatch(/^2\d{20}$/);
    expect(active.next_action).toBeNull();
    expect(await eventsOf(a.id)).toEqual(['agreement.active']);
    const qr = await newAgreement({ sign_method: 'qr' });
    expect(new URL(qr.next_action.qr_code_url).pathname).toBe('/sandbox/wechatpay/papay/entrustweb');
  });

  it('a forged contract notify is refused and changes nothing', async () => {
    const { a } = await signed();
    const xml = `<xml><return_code>SUCCESS</return_code><result_code>SUCCESS</result_code><mch_id>1900000001</mch_id><change_type>DELETE</change_type><contract_id>${a.channel_agreement_no}</contract_id><sign>0123456789ABCDEF0123456789ABCDEF</sign></xml>`;
    const res = await fetch(`${g.url}/notify/wechatpay/${g.app.app_id}`, { method: 'POST', headers: { 'content-type': 'text/xml' }, body: xml });
    expect(res.status).toBe(500);
    expect(await res.text()).toContain('FAIL');
    expect((await g.api('GET', `/v1/agreements/${a.id}`)).body.status).toBe('active');
  });

  it('a subscription charged on schedule: notice two days before, the deduction on the date, renewed; a failed charge retried', async () => {
    const { a } = await signed({ single_amount_max: 5000 });
    const d = a.period_rule.execute_time as string;
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: a.id, amount: 2500, subject: 'Monthly', interval: 'month' })).body;
    expect(s.status, JSON.stringify(s)).toBe('active');
    const period = await g.deps.db('subscription_periods').where({ subscription_id: s.id }).first();
    // The period starts with its notice: Beijing 10:00 two days before the date.
    expect(Number(period.next_try_at_ms)).toBe((unix(d) - 2 * 86400 + 10 * 3600) * 1000);
    const adv = await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(d, 12) });
    expect(adv.status, JSON.stringify(adv.body)).toBe(200);
    expect(adv.body).toMatchObject({ status: 'active', current_period_start: unix(d) });
    const after = await g.deps.db('subscription_periods').where({ subscription_id: s.id, period_index: 0 }).first();
    expect([after.status, Number(after.notice_at_ms)]).toEqual(['succeeded', (unix(d) - 2 * 86400 + 10 * 3600) * 1000]);
    const payments = (await g.api('GET', `/v1/payments?subscription=${s.id}`)).body.data;
    expect(payments).toHaveLength(1);
    expect(payments[0]).toMatchObject({ status: 'succeeded', channel: 'wechat_papay', amount: 2500, subscription: s.id });
    const orders = await g.deps.db('sandbox_papay_orders').where({ contract_id: a.channel_agreement_no });
    expect(orders.map((o: any) => o.trade_state)).toEqual(['SUCCESS']);
    // A year: 12 renewals, each after its own notice.
    const year = await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(addMonths(d, 11), 12) });
    expect(year.body.current_period_start).toBe(unix(addMonths(d, 11)));
    expect((await g.deps.db('sandbox_papay_orders').where({ contract_id: a.channel_agreement_no, trade_state: 'SUCCESS' })).length).toBe(12);
    const types = await eventsOf(s.id);
    expect(types.filter((t) => t === 'subscription.renewed')).toHaveLength(12);
  });

  it('insufficient funds: payment_failed, retried inside the deduction days, then past_due', async () => {
    const { a } = await signed();
    const d = a.period_rule.execute_time as string;
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: a.id, amount: 1051, subject: 'Short', interval: 'month' })).body;
    const adv = await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(d, 0) + 3 * 86400 });
    expect(adv.body.status).toBe('past_due');
    const payments = (await g.api('GET', `/v1/payments?subscription=${s.id}`)).body.data;
    expect(payments.map((p: any) => p.status)).toEqual(['closed', 'closed', 'closed']);
    const types = await eventsOf(s.id);
    expect(types.filter((t) => t === 'subscription.payment_failed')).toHaveLength(3);
    expect(types).toContain('subscription.past_due');
  });

  it("the user's own 解约 in WeChat terminates the agreement (customer) and ends its subscription", async () => {
    const { a, form } = await signed();
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: a.id, amount: 2000, subject: 'Gold', interval: 'month' })).body;
    expect((await wechatUser(form, 'cancel')).status).toBe('TERMINATED');
    const ended = await until(async () => (await g.api('GET', `/v1/agreements/${a.id}`)).body, (x) => x.status === 'terminated', 'terminated');
    expect(ended.terminated_reason).toBe('customer');
    expect((await g.api('GET', `/v1/subscriptions/${s.id}`)).body).toMatchObject({ status: 'canceled', cancellation_reason: 'agreement_terminated' });
    expect(await eventsOf(a.id)).toEqual(['agreement.active', 'agreement.terminated']);
    expect((await eventsOf(s.id)).slice(-1)).toEqual(['subscription.canceled']);
  });

  it('the merchant terminates: deletecontract at WeChat, one agreement.terminated even when the DELETE notify follows', async () => {
    const { a } = await signed();
    expect((await g.api('POST', `/v1/agreements/${a.id}/terminate`)).body).toMatchObject({ status: 'terminated', terminated_reason: 'merchant' });
    const stored = await g.deps.db('sandbox_agreements').where({ provider: 'wechatpay', agreement_no: a.channel_agreement_no }).first();
    expect(stored.status).toBe('TERMINATED');
    await new Promise((r) => setTimeout(r, 300));
    expect(await eventsOf(a.id)).toEqual(['agreement.active', 'agreement.terminated']);
  });

  it('bad input: a subscription on a terminated agreement, or above its limit, is a 4xx naming the parameter and stores nothing', async () => {
    const { a } = await signed();
    const before = await count('subscriptions');
    const over = await g.api('POST', '/v1/subscriptions', { agreement: a.id, amount: 3001, subject: 'Too much', interval: 'month' });
    expect([over.status, over.body.error.param, over.body.error.code]).toEqual([400, 'amount', 'amount_over_agreement_limit']);
    await g.api('POST', `/v1/agreements/${a.id}/terminate`);
    const ended = await g.api('POST', '/v1/subscriptions', { agreement: a.id, amount: 100, subject: 'Late', interval: 'month' });
    expect([ended.status, ended.body.error.param, ended.body.error.code]).toEqual([400, 'agreement', 'agreement_terminated']);
    expect(await count('subscriptions')).toBe(before);
  });
});
