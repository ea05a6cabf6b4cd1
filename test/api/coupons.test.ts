import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { newCustomer, topUp, tradeNo } from '../support/accounts.ts';
import { closePayment } from '../../server/payments/close.ts';
import { findPaymentById } from '../../server/payments/repo.ts';

let g: TestGateway;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(() => g?.close());

let codes = 0;
const code = (p = 'SAVE') => `${p}${Date.now().toString(36).toUpperCase()}${++codes}`;
async function newCoupon(body: Record<string, unknown>) {
  const res = await g.api('POST', '/v1/coupons', { code: code(), ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}
const pay = (body: Record<string, unknown>) => g.api('POST', '/v1/payments', { amount: 1000, subject: 'Coupon tea', out_trade_no: tradeNo('cpn'), ...body });
const count = async (table: string) => Number((await g.deps.db(table).count({ n: '*' }))[0].n);

describe('coupons', () => {
  it('create, retrieve, update (deactivate) and list; the code is unique per app whatever its case', async () => {
    const c = await newCoupon({ code: 'Spring-2026', amount_off: 500, currency: 'cny', min_amount: 2000, max_redemptions: 10, metadata: { campaign: 'spring' } });
    expect(c).toMatchObject({
      object: 'coupon', code: 'Spring-2026', amount_off: 500, percent_off: null, currency: 'CNY', min_amount: 2000, max_discount: null,
      max_redemptions: 10, per_customer_limit: null, valid_from: null, expires_at: null, times_redeemed: 0, active: true, livemode: false,
    });
    expect(c.id).toMatch(/^cpn_/);
    expect((await g.api('GET', `/v1/coupons/${c.id}`)).body).toEqual(c);
    const dup = await g.api('POST', '/v1/coupons', { code: 'SPRING-2026', percent_off: 10 });
    expect(dup.body.error).toMatchObject({ code: 'coupon_code_taken', param: 'code' });
    const off = await g.api('POST', `/v1/coupons/${c.id}`, { active: false, expires_at: 4_000_000_000 });
    expect(off.body).toMatchObject({ active: false, expires_at: 4_000_000_000 });
    expect((await g.api('GET', '/v1/coupons?code=spring-2026')).body.data.map((x: any) => x.id)).toEqual([c.id]);
    expect((await g.api('GET', '/v1/coupons?active=false&limit=100')).body.data.map((x: any) => x.id)).toContain(c.id);
    expect((await g.api('GET', '/v1/coupons/cpn_nope')).status).toBe(404);
  });

  it('bad coupon input is a 400 naming the parameter, and stores nothing', async () => {
    const before = await count('coupons');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ code: 'HAS SPACE', percent_off: 10 }, 'code'],
      [{ code: 'X'.repeat(65), percent_off: 10 }, 'code'],
      [{ code: 'cpn_abc', percent_off: 10 }, 'code'],
      [{ percent_off: 10 }, 'code'],
      [{ code: code(), percent_off: 0 }, 'percent_off'],
      [{ code: code(), percent_off: 101 }, 'percent_off'],
      [{ code: code(), percent_off: 12.5 }, 'percent_off'],
      [{ code: code(), amount_off: 100, percent_off: 10, currency: 'CNY' }, 'percent_off'],
      [{ code: code() }, 'amount_off'],
      [{ code: code(), amount_off: 100 }, 'currency'],
      [{ code: code(), amount_off: -1, currency: 'CNY' }, 'amount_off'],
      [{ code: code(), percent_off: 10, max_discount: 100 }, 'currency'],
      [{ code: code(), amount_off: 100, currency: 'CNY', max_discount: 100 }, 'max_discount'],
      [{ code: code(), percent_off: 10, valid_from: 2_000_000_000, expires_at: 1_900_000_000 }, 'expires_at'],
      [{ code: code(), percent_off: 10, max_redemptions: 0 }, 'max_redemptions'],
    ];
    for (const [body, param] of cases) {
      const res = await g.api('POST', '/v1/coupons', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.param, JSON.stringify(body)).toBe(param);
    }
    expect(await count('coupons')).toBe(before);
  });

  it('amount_off and percent_off (rounded half up), max_discount, by code in any case or by id; the payment shows it', async () => {
    const fixed = await newCoupon({ amount_off: 300, currency: 'CNY' });
    const p1 = await pay({ coupon: fixed.code.toLowerCase() });
    expect(p1.body).toMatchObject({ amount: 700, amount_original: 1000, amount_discount: 300, coupon: fixed.id });
    const pct = await newCoupon({ percent_off: 15 });
    // 15% of 1,003 is 150.45 → 150; of 1,010 it is 151.5 → 152.
    expect((await pay({ amount: 1003, coupon: pct.id })).body).toMatchObject({ amount: 853, amount_discount: 150 });
    expect((await pay({ amount: 1010, coupon: pct.code })).body).toMatchObject({ amount: 858, amount_discount: 152 });
    const capped = await newCoupon({ percent_off: 50, currency: 'CNY', max_discount: 200 });
    expect((await pay({ coupon: capped.code })).body).toMatchObject({ amount: 800, amount_discount: 200 });
    // A discount never takes the whole amount: one minor unit is left to pay.
    const all = await newCoupon({ amount_off: 5000, currency: 'CNY' });
    expect((await pay({ coupon: all.code })).body).toMatchObject({ amount: 1, amount_discount: 999 });
    expect((await pay({})).body).toMatchObject({ coupon: null, amount_original: 1000, amount_discount: 0 });
    expect((await g.api('GET', `/v1/coupons/${pct.id}`)).body.times_redeemed).toBe(2);
  });

  it('expired, not yet valid, inactive, another currency, below its minimum, unknown: a 4xx naming coupon, nothing stored', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await newCoupon({ percent_off: 10, expires_at: now - 10 });
    const future = await newCoupon({ percent_off: 10, valid_from: now + 3600 });
    const inactive = await newCoupon({ percent_off: 10, active: false });
    const usd = await newCoupon({ amount_off: 100, currency: 'USD' });
    const min = await newCoupon({ amount_off: 100, currency: 'CNY', min_amount: 5000 });
    const before = await count('payments');
    for (const [coupon, errCode] of [
      [expired.code, 'coupon_expired'], [future.code, 'coupon_not_yet_valid'], [inactive.code, 'coupon_inactive'],
      [usd.code, 'coupon_currency_mismatch'], [min.code, 'coupon_min_amount'], ['NOSUCHCODE', 'resource_missing'], ['bad code!', 'parameter_invalid'],
    ]) {
      const res = await pay({ coupon });
      expect(res.status, coupon).toBeGreaterThanOrEqual(400);
      expect(res.status, coupon).toBeLessThan(500);
      expect(res.body.error, coupon).toMatchObject({ code: errCode, param: 'coupon' });
    }
    expect(await count('payments')).toBe(before);
    expect((await pay({ coupon: 'x', purpose: 'balance_top_up', customer: (await newCustomer(g)).id })).body.error.param).toBe('coupon');
  });

  it('a payment closed unpaid gives its use back, in the close; a paid one keeps it', async () => {
    const c = await newCoupon({ percent_off: 10, max_redemptions: 1 });
    const p = (await pay({ coupon: c.code })).body;
    expect((await pay({ coupon: c.code })).body.error.code).toBe('coupon_exhausted');
    await g.api('POST', `/v1/payments/${p.id}/close`);
    expect((await g.api('GET', `/v1/coupons/${c.id}`)).body.times_redeemed).toBe(0);
    const q = (await pay({ coupon: c.code })).body;
    expect(q.amount).toBe(900);
    await g.api('POST', `/v1/test_helpers/payments/${q.id}/simulate`, { channel: 'alipay_pc' });
    await closePayment(g.deps, (await findPaymentById(g.deps.db, q.id))!);
    expect((await g.api('GET', `/v1/coupons/${c.id}`)).body.times_redeemed).toBe(1);
  });

  it('refunds never exceed what was paid after the discount', async () => {
    const c = await newCoupon({ amount_off: 400, currency: 'CNY' });
    const p = (await pay({ coupon: c.code })).body;
    await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' });
    const tooMuch = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 601 });
    expect(tooMuch.body.error).toMatchObject({ code: 'amount_too_large', param: 'amount' });
    const all = await g.api('POST', `/v1/payments/${p.id}/refunds`, {});
    expect(all.body.amount).toBe(600);
  });

  it('per_customer_limit: a payment needs a customer, and a customer gets the coupon that many times', async () => {
    const c = await newCoupon({ percent_off: 10, per_customer_limit: 2 });
    expect((await pay({ coupon: c.code })).body.error.param).toBe('customer');
    const a = await newCustomer(g);
    const b = await newCustomer(g);
    expect((await pay({ coupon: c.code, customer: a.id })).status).toBe(200);
    expect((await pay({ coupon: c.code, customer: a.id })).status).toBe(200);
    const third = await pay({ coupon: c.code, customer: a.id });
    expect(third.body.error).toMatchObject({ code: 'coupon_customer_limit', param: 'coupon' });
    expect((await pay({ coupon: c.code, customer: b.id })).status).toBe(200);
    expect((await g.api('GET', `/v1/coupons/${c.id}`)).body.times_redeemed).toBe(3);
  });

  it('a coupon with a balance payment: the balance is debited the discounted amount', async () => {
    const cust = await newCustomer(g);
    await topUp(g, cust.id, 1000);
    const c = await newCoupon({ amount_off: 250, currency: 'CNY' });
    const p = await pay({ coupon: c.code, customer: cust.id, channel: 'balance' });
    expect(p.body).toMatchObject({ status: 'succeeded', amount: 750, amount_discount: 250 });
    expect((await g.api('GET', `/v1/customers/${cust.id}`)).body.balance).toBe(250);
    // A refused balance payment counts no use.
    const limited = await newCoupon({ amount_off: 1, currency: 'CNY', max_redemptions: 1 });
    expect((await pay({ coupon: limited.code, customer: cust.id, channel: 'balance' })).status).toBe(402);
    expect((await g.api('GET', `/v1/coupons/${limited.id}`)).body.times_redeemed).toBe(0);
  });
});
