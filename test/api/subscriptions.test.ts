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

  it('a trial: trialing until trial_end, the first charge on the agreement\'s first scheduled date after it', async () => {
    const { agreement } = await signedAgreement(g, monthlyFrom(beijingDay(20)));
    const d = agreement.period_rule.execute_time;
    const trialEnd = unix(beijingDay(10), 12);
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 1000, subject: 'Trial', interval: 'month', trial_end: trialEnd })).body;
    expect(s).toMatchObject({ status: 'trialing', trial_end: trialEnd, current_period_end: unix(d) });
    expect((await g.deps.db('subscription_periods').where({ subscription_id: s.id }).first()).scheduled_date).toBe(d);
    // Alipay deducts execute_time first: a trial ending after it would skip a date Alipay then waits on.
    const after = await signedAgreement(g, monthlyFrom(beijingDay(3)));
    const refused = await g.api('POST', '/v1/subscriptions', { agreement: after.agreement.id, amount: 1000, subject: 'Trial', interval: 'month', trial_end: unix(beijingDay(20)) });
    expect([refused.status, refused.body.error.param]).toEqual([400, 'trial_end']);
    // One subscription charges one agreement.
    const second = await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 1000, subject: 'Again', interval: 'month' });
    expect([second.status, second.body.error.param]).toEqual([400, 'agreement']);
  });

  it('advance a year: 12 renewals, 12 succeeded payments with subscription set, charged at the simulator 12 times', async () => {
    const { agreement } = await signedAgreement(g, monthlyFrom(beijingDay(3)));
    const d = agreement.period_rule.execute_time as string;
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 2500, subject: 'Monthly', interval: 'month' })).body;
    const eleventh = new Date(Date.UTC(Number(d.slice(0, 4)), Number(d.slice(5, 7)) - 1 + 11, Number(d.slice(8, 10)))).toISOString().slice(0, 10);
    const t0 = Date.now();
    const res = await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(eleventh) + 3600 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(res.body).toMatchObject({ status: 'active', test_clock: unix(eleventh) + 3600, current_period_start: unix(eleventh) });
    const payments = (await g.api('GET', `/v1/payments?subscription=${s.id}&limit=100`)).body.data;
    expect(payments).toHaveLength(12);
    expect(payments.every((p: any) => p.status === 'succeeded' && p.subscription === s.id && p.channel === 'alipay_agreement' && p.amount === 2500 && p.customer === s.customer)).toBe(true);
    expect(res.body.latest_payment).toBe(payments[0].id);
    const events = await eventsOf(s.id);
    expect(events.filter((e) => e === 'subscription.renewed')).toHaveLength(12);
    expect(events.filter((e) => e !== 'subscription.renewed')).toEqual(['subscription.created']);
    const charged = await g.deps.db('sandbox_agreement_deductions').where({ agreement_no: agreement.channel_agreement_no });
    expect(charged).toHaveLength(12);
    expect((await g.deps.db('payment_attempts').whereIn('payment_id', payments.map((p: any) => p.id))).length).toBe(12);
    // Never back; at most 5 years ahead.
    const back = await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(eleventh) });
    expect([back.status, back.body.error.param]).toEqual([400, 'to']);
    const far = await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(eleventh) + 6 * 366 * 86400 });
    expect([far.status, far.body.error.param]).toEqual([400, 'to']);
    // The background scheduler leaves a subscription on a test clock alone.
    expect(await g.deps.db('subscription_periods').where({ subscription_id: s.id, status: 'pending', clocked: false }).first()).toBeUndefined();
  });

  it('insufficient funds: retried inside the window, then past_due, then canceled', async () => {
    const { agreement } = await signedAgreement(g, monthlyFrom(beijingDay(3)));
    const d = agreement.period_rule.execute_time as string;
    // The simulator declines amounts ending in 51 fen with ACQ.BUYER_BALANCE_NOT_ENOUGH.
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 1051, subject: 'Poor', interval: 'month' })).body;
    const afterFirst = await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(d) + 86400 });
    expect(afterFirst.body.status).toBe('past_due');
    const tried = await g.deps.db('payments').where({ subscription_id: s.id }).orderBy('created');
    expect(tried.map((p) => [p.status, Number(p.created)])).toEqual([
      ['closed', unix(d) - 2 * 86400 + 10 * 3600], ['closed', unix(d) - 86400 + 10 * 3600], ['closed', unix(d) + 10 * 3600],
    ]);
    const failed = (await g.api('GET', `/v1/payments/${tried[2].id}`)).body;
    expect(failed.last_attempt_error).toMatchObject({ channel: 'alipay_agreement', code: 'ACQ.BUYER_BALANCE_NOT_ENOUGH' });
    const end = await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(d) + 40 * 86400 });
    expect(end.body).toMatchObject({ status: 'canceled', cancellation_reason: 'payment_failed' });
    expect(await eventsOf(s.id)).toEqual([
      'subscription.created',
      'subscription.payment_failed', 'subscription.payment_failed', 'subscription.payment_failed', 'subscription.past_due',
      'subscription.payment_failed', 'subscription.payment_failed', 'subscription.payment_failed', 'subscription.canceled',
    ]);
    expect(await g.deps.db('payments').where({ subscription_id: s.id, status: 'succeeded' })).toHaveLength(0);
    expect(await g.deps.db('sandbox_agreement_deductions').where({ agreement_no: agreement.channel_agreement_no })).toHaveLength(0);
  });

  it('an unknown answer is queried, never sent under a new number: the period is charged once', async () => {
    const { agreement } = await signedAgreement(g, monthlyFrom(beijingDay(3)));
    const d = agreement.period_rule.execute_time as string;
    // Amounts ending in 52 fen: the simulator charges, then answers 20000 (unknown).
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 1052, subject: 'Lost answer', interval: 'month' })).body;
    const res = await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(d) + 86400 });
    expect(res.body.status).toBe('active');
    const payments = await g.deps.db('payments').where({ subscription_id: s.id });
    expect(payments.map((p) => p.status)).toEqual(['succeeded']);
    const attempts = await g.deps.db('payment_attempts').where({ payment_id: payments[0].id });
    expect(attempts).toHaveLength(1);
    const charged = await g.deps.db('sandbox_agreement_deductions').where({ agreement_no: agreement.channel_agreement_no });
    expect(charged.map((c) => c.out_trade_no)).toEqual([attempts[0].channel_order_no]);
    expect((await eventsOf(s.id)).filter((e) => e === 'subscription.renewed')).toHaveLength(1);
  });

  it('cancel at period end: the next period is not charged, and it ends when the period ends', async () => {
    const { agreement } = await signedAgreement(g, monthlyFrom(beijingDay(3)));
    const d = agreement.period_rule.execute_time as string;
    const s = (await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 900, subject: 'Short', interval: 'month' })).body;
    const paid = (await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: unix(d) + 3600 })).body;
    expect(paid.status).toBe('active');
    const end = paid.current_period_end;
    expect((await g.api('POST', `/v1/subscriptions/${s.id}/cancel`, { at_period_end: true })).body.cancel_at_period_end).toBe(true);
    const before = (await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: end - 3600 })).body;
    expect(before.status).toBe('active');
    const after = (await g.api('POST', `/v1/test_helpers/subscriptions/${s.id}/advance`, { to: end + 3600 })).body;
    expect(after).toMatchObject({ status: 'canceled', cancellation_reason: 'period_end', canceled_at: end });
    expect(await g.deps.db('payments').where({ subscription_id: s.id })).toHaveLength(1);
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
