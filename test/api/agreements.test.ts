import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { newCustomer } from '../support/accounts.ts';
import { signNotify } from '../../server/channels/alipay/sign.ts';
import { nowBeijing } from '../../server/channels/alipay/transform.ts';

let g: TestGateway;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(() => g?.close());

const count = async (table: string) => Number((await g.deps.db(table).count({ n: '*' }))[0].n);
const eventsOf = async (id: string) => (await g.deps.db('events').where('data', 'like', `%${id}%`).orderBy('created')).map((e) => e.type);
const monthly = { period_type: 'MONTH', period: 1, execute_time: '2027-01-15' };

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Opens the signing page as the customer's browser would, and reads its form. */
async function openSignPage(url: string) {
  const res = await fetch(url);
  const html = await res.text();
  expect(res.status, html.slice(0, 400)).toBe(200);
  const field = (name: string) => html.match(new RegExp(`name="${name}" value="([^"]+)"`))?.[1] ?? '';
  return { html, app_id: field('app_id'), external_agreement_no: field('external_agreement_no'), t: field('t') };
}

async function walletAct(form: { app_id: string; external_agreement_no: string; t: string }, action: 'sign' | 'refuse' | 'unsign') {
  const res = await fetch(`${g.url}/sandbox/alipay/agreement/action`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ ...form, action }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function newAgreement(body: Record<string, unknown> = {}) {
  const c = await newCustomer(g, { out_user_id: `u_${crypto.randomBytes(4).toString('hex')}` });
  const res = await g.api('POST', '/v1/agreements', { customer: c.id, channel: 'alipay', period_rule: monthly, single_amount_max: 3000, ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

async function signed() {
  const a = await newAgreement();
  const form = await openSignPage(a.next_action.redirect_url);
  expect((await walletAct(form, 'sign')).body.status).toBe('NORMAL');
  const active = await until(async () => (await g.api('GET', `/v1/agreements/${a.id}`)).body, (x) => x.status === 'active', 'agreement.active');
  return { a: active, form };
}

describe('Alipay 周期扣款 agreements', () => {
  it('a signing page the customer signs: pending → active by the signed dut_user_sign notify, with agreement.active', async () => {
    const a = await newAgreement({ metadata: { plan: 'gold' } });
    expect(a).toMatchObject({ object: 'agreement', channel: 'alipay', status: 'pending', single_amount_max: 3000, currency: 'CNY', period_rule: monthly, channel_agreement_no: null, metadata: { plan: 'gold' } });
    expect(a.id).toMatch(/^agr_/);
    const url = new URL(a.next_action.redirect_url);
    expect(url.searchParams.get('method')).toBe('alipay.user.agreement.page.sign');
    const biz = JSON.parse(url.searchParams.get('biz_content')!);
    expect(biz).toMatchObject({ personal_product_code: 'CYCLE_PAY_AUTH_P', access_params: { channel: 'ALIPAYAPP' }, period_rule_params: { period_type: 'MONTH', period: 1, execute_time: '2027-01-15', single_amount: '30.00' } });
    expect(biz.sign_scene).not.toBe('DEFAULT|DEFAULT');
    expect(a.next_action.wallet_url).toMatch(/^https:\/\/d\.alipay\.com\/i\/index\.htm\?iframeSrc=alipays/);

    const form = await openSignPage(a.next_action.redirect_url);
    expect(form.html).toContain('¥30.00');
    expect(form.external_agreement_no).toBe(biz.external_agreement_no);
    // Refusing leaves it pending and notifies nothing.
    expect((await walletAct(form, 'refuse')).body.status).toBe('TEMP');
    expect((await g.api('GET', `/v1/agreements/${a.id}`)).body.status).toBe('pending');
    expect((await walletAct(form, 'sign')).body.status).toBe('NORMAL');
    const active = await until(async () => (await g.api('GET', `/v1/agreements/${a.id}`)).body, (x) => x.status === 'active', 'active');
    expect(active.channel_agreement_no).toMatch(/^\d{20,}$/);
    expect(active.next_action).toBeNull();
    expect(await eventsOf(a.id)).toEqual(['agreement.active']);
    // The page of a signed mandate is refused.
    const again = await fetch(a.next_action.redirect_url);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('USER_AGREEMENT_ALREADY_EXIST');
    const listed = await g.api('GET', `/v1/agreements?customer=${a.customer}`);
    expect(listed.body.data.map((x: any) => x.id)).toEqual([a.id]);
  });

  it('a QR sign method hands out the page to render as a QR code', async () => {
    const a = await newAgreement({ sign_method: 'qr' });
    expect(a.next_action.type).toBe('qr');
    expect(JSON.parse(new URL(a.next_action.qr_code_url).searchParams.get('biz_content')!).access_params.channel).toBe('QRCODE');
  });

  it("the wallet user's own cancellation, unasked, on the app's notify URL terminates it (reason customer)", async () => {
    const { a, form } = await signed();
    expect((await walletAct(form, 'unsign')).body.status).toBe('UNSIGN');
    const ended = await until(async () => (await g.api('GET', `/v1/agreements/${a.id}`)).body, (x) => x.status === 'terminated', 'terminated');
    expect(ended.terminated_reason).toBe('customer');
    expect(await eventsOf(a.id)).toEqual(['agreement.active', 'agreement.terminated']);
  });

  it('the merchant terminates: unsigned at Alipay, one agreement.terminated even when the unsign notify follows', async () => {
    const { a } = await signed();
    const t = await g.api('POST', `/v1/agreements/${a.id}/terminate`);
    expect(t.body).toMatchObject({ status: 'terminated', terminated_reason: 'merchant' });
    const stored = await g.deps.db('sandbox_agreements').where({ agreement_no: a.channel_agreement_no }).first();
    expect(stored.status).toBe('UNSIGN');
    await new Promise((r) => setTimeout(r, 300)); // the unsign notify goes out after the answer
    expect((await g.api('POST', `/v1/agreements/${a.id}/terminate`)).body.status).toBe('terminated');
    expect(await eventsOf(a.id)).toEqual(['agreement.active', 'agreement.terminated']);
  });

  it('a pending agreement terminated before signing ends without a channel call; a late signature is unsigned', async () => {
    const a = await newAgreement();
    const form = await openSignPage(a.next_action.redirect_url);
    expect((await g.api('POST', `/v1/agreements/${a.id}/terminate`)).body.status).toBe('terminated');
    await walletAct(form, 'sign');
    await until(async () => (await g.deps.db('sandbox_agreements').where({ external_agreement_no: form.external_agreement_no }).first()).status, (s) => s === 'UNSIGN', 'late unsign');
    expect((await g.api('GET', `/v1/agreements/${a.id}`)).body.status).toBe('terminated');
  });

  it('forged or foreign mandate notifies are refused and change nothing', async () => {
    const { a } = await signed();
    const params: Record<string, string> = {
      notify_type: 'dut_user_unsign', notify_id: crypto.randomBytes(16).toString('hex'), notify_time: nowBeijing(), app_id: '',
      charset: 'utf-8', version: '1.0', sign_type: 'RSA2', status: 'UNSIGN', agreement_no: a.channel_agreement_no, personal_product_code: 'CYCLE_PAY_AUTH_P',
    };
    const stored = await g.deps.db('sandbox_agreements').where({ agreement_no: a.channel_agreement_no }).first();
    params.app_id = stored.merchant_id;
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    params.sign = signNotify(params, privateKey);
    const post = (p: Record<string, string>) => fetch(`${g.url}/notify/alipay/${g.app.app_id}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(p).toString() });
    const forged = await post(params);
    expect(forged.status).toBe(400);
    expect(await forged.text()).toBe('fail');
    const genuine = await g.api('GET', `/v1/agreements/${a.id}`);
    expect(genuine.body.status).toBe('active');
    expect(await eventsOf(a.id)).toEqual(['agreement.active']);
  });

  it('bad input is a 4xx naming the parameter, and stores nothing', async () => {
    const c = await newCustomer(g, {});
    const before = await count('agreements');
    const base = { customer: c.id, channel: 'alipay', period_rule: monthly, single_amount_max: 3000 };
    for (const [body, param] of [
      [{ ...base, period_rule: { ...monthly, period: 0 } }, 'period_rule[period]'],
      [{ ...base, period_rule: { ...monthly, period: 13 } }, 'period_rule[period]'],
      [{ ...base, period_rule: { period_type: 'DAY', period: 400, execute_time: '2027-01-15' } }, 'period_rule[period]'],
      [{ ...base, period_rule: { period_type: 'DAY', period: 3, execute_time: '2027-01-15' } }, 'period_rule[period]'],
      [{ ...base, period_rule: { ...monthly, execute_time: '2027-01-29' } }, 'period_rule[execute_time]'],
      [{ ...base, period_rule: { ...monthly, execute_time: '2027-02-30' } }, 'period_rule[execute_time]'],
      [{ ...base, period_rule: { ...monthly, period_type: 'WEEK' } }, 'period_rule[period_type]'],
      [{ ...base, single_amount_max: 0 }, 'single_amount_max'],
      [{ ...base, channel: 'unionpay' }, 'channel'],
      [{ ...base, customer: 'cus_missing' }, 'customer'],
      [{ ...base, sign_method: 'sms' }, 'sign_method'],
    ] as const) {
      const res = await g.api('POST', '/v1/agreements', body);
      expect(res.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body.error.param, JSON.stringify(res.body)).toBe(param);
    }
    expect(await count('agreements')).toBe(before);
    expect((await g.api('GET', '/v1/agreements/agr_nope')).status).toBe(404);
  });
});
