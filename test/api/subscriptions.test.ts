import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { beijingDay, signedAgreement, until, walletAct } from '../support/subscriptions.ts';

let g: TestGateway;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(() => g?.close());

const count = async (table: string) => Number((await g.deps.db(table).count({ n: '*' }))[0].n);
const eventsOf = async (id: string) => (await g.deps.db('events').where('type', 'like', 'subscription.%').where('data', 'like', `%"id":"${id}"%`).orderBy('created').orderBy('id')).map((e) => e.type);
/** A monthly rule on a day 1–28, a few days from now. */
const monthlyFrom = (date: string) => ({ period_type: 'MONTH', period: 1, execute_time: date.slice(8, 10) > '28' ? `${date.slice(0, 8)}28` : date });
const unix = (date: string, hh = 0) => Math.floor((Date.parse(`${date}T00:00:00Z`) - 8 * 3600_000) / 1000) + hh * 3600;

describe('subscriptions on Alipay 周期扣款 agreements', () => {
  it('creates on an active agreement, on its schedule, with subscription.created', async () => {
    const day = beijingDay(10);
    const { agreement, customer } = await signedAgreement(g, monthlyFrom(day));
    const res = await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 2500, subject: 'Gold plan', interval: 'month', interval_count: 1, metadata: { plan: 'gold' } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const s = res.body;
    expect(s).toMatchObject({
      object: 'subscription', livemode: false, customer: customer.id, agreement: agreement.id, amount: 2500, currency: 'CNY', subject: 'Gold plan',
      interval: 'month', interval_count: 1, trial_end: null, status: 'active', cancel_at_period_end: false, canceled_at: null, latest_payment: null, metadata: { plan: 'gold' },
    });
    expect(s.id).toMatch(/^sub_/);
    // Before the first scheduled date: a lead-in up to it, uncharged.
    expect(s.current_period_end).toBe(unix(agreement.period_rule.execute_time));
    expect(await eventsOf(s.id)).toEqual(['subscription.created']);
    const period = await g.deps.db('subscription_periods').where({ subscription_id: s.id }).first();
    expect(period).toMatchObject({ period_index: 0, scheduled_date: agreement.period_rule.execute_time, status: 'pending' });
    // First try: Beijing 10:00 two days before the scheduled date.
    expect(Number(period.next_try_at_ms)).toBe((unix(agreement.period_rule.execute_time) - 2 * 86400 + 10 * 3600) * 1000);
    expect((await g.api('GET', `/v1/subscriptions/${s.id}`)).body).toEqual(s);
    expect((await g.api('GET', `/v1/subscriptions?agreement=${agreement.id}`)).body.data.map((x: any) => x.id)).toEqual([s.id]);
    expect((await g.api('GET', `/v1/subscriptions?customer=${customer.id}&status=active`)).body.data.map((x: any) => x.id)).toEqual([s.id]);
    expect((await g.api('GET', `/v1/subscriptions?customer=${customer.id}&status=canceled`)).body.data).toEqual([]);
    // A yearly rule may be said as month × 12 or year × 1; a 14-day one as day × 14 or week × 2.
    const yearly = await signedAgreement(g, { period_type: 'MONTH', period: 12, execute_time: monthlyFrom(day).execute_time });
    expect((await g.api('POST', '/v1/subscriptions', { agreement: yearly.agreement.id, amount: 100, subject: 'Y', interval: 'year', interval_count: 1 })).status).toBe(200);
    const fortnightly = await signedAgreement(g, { period_type: 'DAY', period: 14, execute_time: day });
    expect((await g.api('POST', '/v1/subscriptions', { agreement: fortnightly.agreement.id, amount: 100, subject: 'W', interval: 'week', interval_count: 2 })).status).toBe(200);
  });

  it('a trial: trialing until trial_end, the first charge on the first scheduled date on or after it', async () => {
    const { agreement } = await signedAgreement(g, monthlyFrom(beijingDay(3)));
    const trialEnd = unix(beijingDay(20), 12);
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 1000, subject: 'Trial', interval: 'month', trial_end: trialEnd })).body;
    expect(s.status).toBe('trialing');
    expect(s.trial_end).toBe(trialEnd);
    const period = await g.deps.db('subscription_periods').where({ subscription_id: s.id }).first();
    expect(period.scheduled_date > beijingDay(20)).toBe(true);
    expect(s.current_period_end).toBe(unix(period.scheduled_date));
  });

  it('cancel now and at period end', async () => {
    const { agreement } = await signedAgreement(g, monthlyFrom(beijingDay(10)));
    const a = (await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 1000, subject: 'A', interval: 'month' })).body;
    const later = await g.api('POST', `/v1/subscriptions/${a.id}/cancel`, { at_period_end: true });
    expect(later.body).toMatchObject({ status: 'active', cancel_at_period_end: true });
    const now = await g.api('POST', `/v1/subscriptions/${a.id}/cancel`, {});
    expect(now.body).toMatchObject({ status: 'canceled', cancellation_reason: 'requested' });
    expect(now.body.canceled_at).toBeGreaterThan(0);
    expect((await g.deps.db('subscription_periods').where({ subscription_id: a.id }).first()).status).toBe('canceled');
    expect(await eventsOf(a.id)).toEqual(['subscription.created', 'subscription.canceled']);
    expect((await g.api('POST', `/v1/subscriptions/${a.id}/cancel`, { at_period_end: 'yes' })).body.error.param).toBe('at_period_end');
  });

  it("the wallet user's cancellation of the agreement cancels its subscriptions in the same transaction", async () => {
    const { agreement, form } = await signedAgreement(g, monthlyFrom(beijingDay(10)));
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 1000, subject: 'A', interval: 'month' })).body;
    expect((await walletAct(g, form, 'unsign')).body.status).toBe('UNSIGN');
    const ended = await until(async () => (await g.api('GET', `/v1/subscriptions/${s.id}`)).body, (x) => x.status === 'canceled', 'subscription canceled');
    expect(ended.cancellation_reason).toBe('agreement_terminated');
    const [agreementEvent] = await g.deps.db('events').where({ type: 'agreement.terminated' }).where('data', 'like', `%${agreement.id}%`);
    const [subEvent] = await g.deps.db('events').where({ type: 'subscription.canceled' }).where('data', 'like', `%"id":"${s.id}"%`);
    expect(agreementEvent && subEvent).toBeTruthy();
  });

  it('bad input is a 4xx naming the parameter, and stores nothing', async () => {
    const { agreement } = await signedAgreement(g, monthlyFrom(beijingDay(10)), 3000);
    const ended = await signedAgreement(g, monthlyFrom(beijingDay(10)));
    expect((await g.api('POST', `/v1/agreements/${ended.agreement.id}/terminate`)).body.status).toBe('terminated');
    const weekly = await signedAgreement(g, { period_type: 'DAY', period: 7, execute_time: beijingDay(5) });
    const base = { agreement: agreement.id, amount: 1000, subject: 'Plan', interval: 'month', interval_count: 1 };
    const before = [await count('subscriptions'), await count('subscription_periods'), await count('payments')];
    // A day 29–31 Alipay never deducts on monthly: an anchor there, or on another day than the schedule's.
    const d = agreement.period_rule.execute_time as string;
    const next31 = (() => { for (let i = 0; i < 62; i++) { const x = beijingDay(i); if (x.endsWith('-31')) return x; } throw new Error('no 31st'); })();
    for (const [body, param] of [
      [{ ...base, interval_count: 0 }, 'interval_count'],
      [{ ...base, interval_count: 13 }, 'interval_count'],
      [{ ...base, interval: 'day', interval_count: 400 }, 'interval_count'],
      [{ ...base, interval: 'year', interval_count: 2 }, 'interval_count'],
      [{ ...base, interval: 'fortnight' }, 'interval'],
      [{ ...base, interval_count: 2 }, 'interval'],
      [{ ...base, interval: 'week' }, 'interval'],
      [{ ...base, agreement: weekly.agreement.id, interval: 'day', interval_count: 3 }, 'interval'],
      [{ ...base, amount: 3001 }, 'amount'],
      [{ ...base, amount: 0 }, 'amount'],
      [{ ...base, amount: 10.5 }, 'amount'],
      [{ ...base, billing_cycle_anchor: unix(next31) }, 'billing_cycle_anchor'],
      [{ ...base, billing_cycle_anchor: unix(d) + 86400 }, 'billing_cycle_anchor'],
      [{ ...base, trial_end: Math.floor(Date.now() / 1000) - 10 }, 'trial_end'],
      [{ ...base, trial_end: Math.floor(Date.now() / 1000) + 3 * 366 * 86400 }, 'trial_end'],
      [{ ...base, agreement: ended.agreement.id }, 'agreement'],
      [{ ...base, agreement: 'agr_nope' }, 'agreement'],
      [{ ...base, subject: '' }, 'subject'],
      [{ ...base, currency: 'USD' }, 'currency'],
    ] as const) {
      const res = await g.api('POST', '/v1/subscriptions', body);
      expect(res.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body.error.param, JSON.stringify(res.body)).toBe(param);
    }
    // A pending (unsigned) agreement cannot be charged either.
    const pending = await g.api('POST', '/v1/agreements', { customer: agreement.customer, channel: 'alipay', period_rule: agreement.period_rule, single_amount_max: 3000 });
    const refused = await g.api('POST', '/v1/subscriptions', { ...base, agreement: pending.body.id });
    expect([refused.status, refused.body.error.param]).toEqual([400, 'agreement']);
    expect([await count('subscriptions'), await count('subscription_periods'), await count('payments')]).toEqual(before);
    expect((await g.api('GET', '/v1/subscriptions/sub_nope')).status).toBe(404);
  });

  it('alipay_agreement is charged by subscriptions only: refused by create and confirm', async () => {
    const created = await g.api('POST', '/v1/payments', { amount: 100, subject: 'X', out_trade_no: `agr_${Date.now()}`, channel: 'alipay_agreement' });
    expect([created.status, created.body.error.param]).toEqual([400, 'channel']);
    expect(created.body.error.message).toContain('subscriptions only');
    const p = (await g.api('POST', '/v1/payments', { amount: 100, subject: 'X', out_trade_no: `agr2_${Date.now()}` })).body;
    expect(p.subscription).toBeNull();
    const confirmed = await g.api('POST', `/v1/payments/${p.id}/confirm`, { channel: 'alipay_agreement' });
    expect([confirmed.status, confirmed.body.error.param]).toEqual([400, 'channel']);
    const page = await fetch(p.checkout_url);
    expect(await page.text()).not.toContain('alipay_agreement');
  });
});
