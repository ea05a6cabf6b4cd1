/**
 * Installments (分期, DESIGN §2.5): POST /v1/payments with installments {count, fee_payer} on an
 * Alipay code places an order whose signed biz_content carries extend_params.hb_fq_*, the
 * simulator takes it and the payment object shows it; bad input is a 400 naming the parameter with
 * nothing stored; the cashier of such a payment offers Alipay only and shows every period.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { findOrder as findAlipayOrder } from '../../server/sandbox/alipay/store.ts';
import { verifyRequest } from '../../server/channels/alipay/sign.ts';
import { paymentObjectSchema } from '../../server/payments/service.ts';
import { installmentPlan } from '../../server/payments/installments.ts';
import type { AlipayCredentials } from '../../server/channels/alipay/index.ts';
import { findMerchant } from '../../server/sandbox/alipay/store.ts';

let g: TestGateway;
let seq = 0;
const tradeNo = () => `fq_${Date.now()}_${++seq}`;
const desktop = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
const iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1';
const wechat = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN';

beforeAll(async () => {
  g = await startTestGateway();
});
afterAll(async () => {
  await g?.close();
});

const alipayCred = async () => (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
const attemptsOf = (paymentId: string) => g.deps.db('payment_attempts').where({ payment_id: paymentId }).orderBy('created', 'asc');
const stored = async (outTradeNo: string) => Number((await g.deps.db('payments').where({ out_trade_no: outTradeNo }).count({ n: '*' }).first())!.n);
const codesOf = (html: string) => [...html.matchAll(/data-channel="([a-z_]+)"/g)].map((m) => m[1]);

async function create(body: Record<string, unknown>) {
  const res = await g.api('POST', '/v1/payments', { amount: 100_001, subject: 'Sofa 沙发', out_trade_no: tradeNo(), ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

describe('POST /v1/payments with installments on an Alipay channel', () => {
  it('alipay_pc: the signed page-pay URL carries extend_params, the simulator shows the periods, simulate pays', async () => {
    const p = await create({ channel: 'alipay_pc', installments: { count: 3, fee_payer: 'customer' } });
    expect(p.installments).toEqual({ count: 3, fee_payer: 'customer' });
    expect(() => paymentObjectSchema.parse(p)).not.toThrow();
    const url = new URL(p.next_action.redirect_to_url.url);
    const params = Object.fromEntries(url.searchParams);
    const biz = JSON.parse(params.biz_content!);
    expect(biz.extend_params).toEqual({ hb_fq_num: '3', hb_fq_seller_percent: '0' });
    // Signed by the app's key over exactly these parameters: the simulator's copy of the app's public key verifies it.
    const merchant = (await findMerchant(g.deps.db, g.deps.config.masterKeyBytes, (await alipayCred()).appId))!;
    expect(verifyRequest(params, merchant.appPublicKey)).toBe(true);
    expect(verifyRequest({ ...params, biz_content: params.biz_content!.replace('"3"', '"6"') }, merchant.appPublicKey)).toBe(false);
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('花呗分期 3 期');
    const [attempt] = await attemptsOf(p.id);
    expect((await findAlipayOrder(g.deps.db, (await alipayCred()).appId, { outTradeNo: attempt.channel_order_no }))!.data.installments).toEqual({ count: 3, sellerPercent: 0 });

    const paid = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', outcome: 'pay', notify: 'normal' });
    expect(paid.status).toBe(200);
    expect(paid.body).toMatchObject({ status: 'succeeded', installments: { count: 3, fee_payer: 'customer' } });
    const got = await g.api('GET', `/v1/payments/${p.id}`);
    expect(got.body.installments).toEqual({ count: 3, fee_payer: 'customer' });
    expect((await g.api('GET', `/v1/payments?out_trade_no=${p.out_trade_no}`)).body.data[0].installments).toEqual({ count: 3, fee_payer: 'customer' });
  });

  it('merchant pays the fee: hb_fq_seller_percent "100"; alipay_qr and alipay_app carry it too', async () => {
    const qr = await create({ channel: 'alipay_qr', installments: { count: 12, fee_payer: 'merchant' } });
    const [qrAttempt] = await attemptsOf(qr.id);
    // The trade exists at the simulator once scanned; the precreate request already carried the periods.
    await (await fetch(qr.next_action.display_qr_code.data)).arrayBuffer();
    expect((await findAlipayOrder(g.deps.db, (await alipayCred()).appId, { outTradeNo: qrAttempt.channel_order_no }))!.data.installments).toEqual({ count: 12, sellerPercent: 100 });

    const app = await create({ channel: 'alipay_app', installments: { count: 6, fee_payer: 'merchant' } });
    const order = new URLSearchParams(app.next_action.alipay_app.order_string);
    expect(JSON.parse(order.get('biz_content')!).extend_params).toEqual({ hb_fq_num: '6', hb_fq_seller_percent: '100' });
  });

  it('a payment without installments shows installments: null and sends no extend_params', async () => {
    const p = await create({ channel: 'alipay_pc' });
    expect(p.installments).toBeNull();
    expect(JSON.parse(new URL(p.next_action.redirect_to_url.url).searchParams.get('biz_content')!)).not.toHaveProperty('extend_params');
  });

  it('refuses bad input with a 400 naming the parameter, and stores nothing', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ channel: 'alipay_pc', installments: { count: 4, fee_payer: 'customer' } }, 'installments[count]'],
      [{ channel: 'alipay_pc', installments: { count: '3', fee_payer: 'customer' } }, 'installments[count]'],
      [{ channel: 'alipay_pc', installments: { count: 3, fee_payer: 'x' } }, 'installments[fee_payer]'],
      [{ channel: 'alipay_pc', installments: { count: 3 } }, 'installments[fee_payer]'],
      [{ channel: 'alipay_pc', installments: { count: 3, fee_payer: 'customer', rate: 1 } }, 'installments[rate]'],
      [{ channel: 'alipay_pc', installments: 3 }, 'installments'],
      [{ channel: 'alipay_pc', amount: 9999, installments: { count: 3, fee_payer: 'customer' } }, 'installments'],
      [{ amount: 9999, installments: { count: 6, fee_payer: 'merchant' } }, 'installments'],
      [{ channel: 'wechat_native', installments: { count: 3, fee_payer: 'customer' } }, 'installments'],
      [{ channel: 'unionpay_pc', installments: { count: 3, fee_payer: 'customer' } }, 'installments'],
      [{ channel: 'paypal', currency: 'USD', installments: { count: 3, fee_payer: 'customer' } }, 'installments'],
      [{ currency: 'USD', installments: { count: 3, fee_payer: 'customer' } }, 'installments'],
    ];
    for (const [extra, param] of cases) {
      const out = tradeNo();
      const res = await g.api('POST', '/v1/payments', { amount: 100_001, subject: 'Sofa', out_trade_no: out, ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.body.error, JSON.stringify(extra)).toMatchObject({ type: 'invalid_request_error', param });
      expect(await stored(out)).toBe(0);
    }
    // 10000 (¥100.00) exactly is taken.
    expect((await create({ amount: 10_000, channel: 'alipay_pc', installments: { count: 3, fee_payer: 'customer' } })).installments).toEqual({ count: 3, fee_payer: 'customer' });
  });

  it('confirm: another provider is refused naming channel; an Alipay code is placed with the periods', async () => {
    const p = await create({ installments: { count: 6, fee_payer: 'customer' } });
    for (const channel of ['wechat_native', 'unionpay_pc', 'balance']) {
      const res = await g.api('POST', `/v1/payments/${p.id}/confirm`, { channel });
      expect(res.status, channel).toBe(400);
      expect(res.body.error.param).toBe('channel');
    }
    expect(await attemptsOf(p.id)).toHaveLength(0);
    const placed = await g.api('POST', `/v1/payments/${p.id}/confirm`, { channel: 'alipay_wap' });
    expect(placed.status).toBe(200);
    expect(JSON.parse(new URL(placed.body.next_action.redirect_to_url.url).searchParams.get('biz_content')!).extend_params).toEqual({ hb_fq_num: '6', hb_fq_seller_percent: '0' });
  });
});

describe('installmentPlan: Huabei fee and per-period amounts in fen', () => {
  it('fee = principal × buyer rate (rounded half up); each period rounded down, the last takes the rest', () => {
    // ¥1,000.01 in 12: fee 7.5% = 7500.075 → 7500; principal 8333 × 11 + 8338; fee 625 each.
    const plan = installmentPlan(100_001, { count: 12, fee_payer: 'customer' });
    expect(plan.totalFee).toBe(7500);
    expect(plan.periods.slice(0, 11).every((p) => p.amount === 8958 && p.principal === 8333 && p.fee === 625)).toBe(true);
    expect(plan.periods[11]).toEqual({ principal: 8338, fee: 625, amount: 8963 });
    expect(plan.total).toBe(107_501);
    // ¥123.45 in 3 at 2.3%: fee 283.935 → 284 (94, 94, 96); principal 4115, 4115, 4115.
    expect(installmentPlan(12_345, { count: 3, fee_payer: 'customer' }).periods).toEqual([
      { principal: 4115, fee: 94, amount: 4209 }, { principal: 4115, fee: 94, amount: 4209 }, { principal: 4115, fee: 96, amount: 4211 },
    ]);
    // 6 periods at 4.5%: ¥200.00 → fee 900.
    expect(installmentPlan(20_000, { count: 6, fee_payer: 'customer' }).totalFee).toBe(900);
    // The merchant pays: no fee for the customer.
    const free = installmentPlan(36_000, { count: 6, fee_payer: 'merchant' });
    expect(free.totalFee).toBe(0);
    expect(free.periods.map((p) => p.amount)).toEqual([6000, 6000, 6000, 6000, 6000, 6000]);
  });
});

describe('the cashier of a payment with installments', () => {
  it('shows the count, each period\'s amount and fee, and offers only Alipay channels', async () => {
    const p = await create({ installments: { count: 12, fee_payer: 'customer' } });
    const res = await fetch(`${p.checkout_url}?lang=en`, { headers: { 'user-agent': desktop } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(codesOf(html)).toEqual(['alipay_pc', 'alipay_qr']);
    expect(html).toContain('Huabei installments: 12 periods');
    expect(html).toContain('Installment fee CN¥75.00 (7.5%, paid by you)');
    expect(html).toContain('Period 1: CN¥89.58 (fee CN¥6.25 included)');
    expect(html).toContain('Period 12: CN¥89.63 (fee CN¥6.25 included)');
    expect([...html.matchAll(/data-period-amount="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([...Array(11).fill(8958), 8963]);
    expect(html).toContain('Total over the periods: CN¥1,075.01');

    const zh = await (await fetch(`${p.checkout_url}?lang=zh-CN`, { headers: { 'user-agent': desktop } })).text();
    expect(zh).toContain('花呗分期 12 期');
    expect(zh).toContain('第 1 期 ¥89.58（含手续费 ¥6.25）');

    // On a phone Alipay WAP only; inside WeChat nothing (Alipay does not open there), with the open-in-browser guide.
    expect(codesOf(await (await fetch(p.checkout_url, { headers: { 'user-agent': iphone } })).text())).toEqual(['alipay_wap']);
    const inWechat = await (await fetch(p.checkout_url, { headers: { 'user-agent': wechat } })).text();
    expect(codesOf(inWechat)).toEqual([]);
    expect(inWechat).toContain('data-guide="open-in-browser"');

    // Without installments the same cashier offers the other providers too.
    const plain = await create({});
    expect(codesOf(await (await fetch(plain.checkout_url, { headers: { 'user-agent': desktop } })).text())).toEqual(expect.arrayContaining(['alipay_pc', 'wechat_native', 'unionpay_pc']));
  });

  it('merchant pays: interest-free periods; a posted non-Alipay channel is refused, Alipay goes to the simulator with the periods', async () => {
    const p = await create({ amount: 36_000, installments: { count: 6, fee_payer: 'merchant' } });
    const html = await (await fetch(`${p.checkout_url}?lang=en`, { headers: { 'user-agent': desktop } })).text();
    expect(html).toContain('Interest-free: the merchant pays the installment fee');
    expect(html).toContain('Period 6: CN¥60.00</li>');
    expect(html).not.toContain('fee CN¥0.00');
    const formToken = /name="form_token" value="([^"]+)"/.exec(html)![1]!;
    const post = (channel: string) => fetch(`${p.checkout_url}/channel`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': desktop, origin: new URL(g.deps.config.publicUrl).origin },
      body: new URLSearchParams({ form_token: formToken, channel }).toString(),
    });
    const refused = await post('wechat_native');
    expect(refused.status).toBe(400);
    await refused.arrayBuffer();
    expect(await attemptsOf(p.id)).toHaveLength(0);
    const ok = await post('alipay_pc');
    expect(ok.status).toBe(303);
    const target = new URL(ok.headers.get('location')!);
    expect(JSON.parse(target.searchParams.get('biz_content')!).extend_params).toEqual({ hb_fq_num: '6', hb_fq_seller_percent: '100' });
  });

  it('a customer\'s payment in installments has no balance button', async () => {
    const cus = await g.api('POST', '/v1/customers', { out_user_id: `u_${Date.now()}`, name: 'Wang' });
    expect(cus.status).toBe(200);
    const withInstallments = await create({ customer: cus.body.id, installments: { count: 3, fee_payer: 'customer' } });
    expect(codesOf(await (await fetch(withInstallments.checkout_url, { headers: { 'user-agent': desktop } })).text())).not.toContain('balance');
    const plain = await create({ customer: cus.body.id });
    expect(codesOf(await (await fetch(plain.checkout_url, { headers: { 'user-agent': desktop } })).text())).toContain('balance');
  });
});

describe('installments and coupon codes typed on the cashier', () => {
  it('a code that would take the payment below ¥100 is refused and changes nothing', async () => {
    const coupon = (await g.api('POST', '/v1/coupons', { code: `FQ${Date.now()}`, amount_off: 500, currency: 'CNY' })).body;
    const p = (await g.api('POST', '/v1/payments', { amount: 10_200, subject: 'FQ coupon', out_trade_no: tradeNo(), allow_coupon_code: true, installments: { count: 3, fee_payer: 'customer' } })).body;
    expect(p.installments).toEqual({ count: 3, fee_payer: 'customer' });
    const html = await (await fetch(p.checkout_url, { headers: { 'user-agent': desktop } })).text();
    const token = /name="form_token" value="([^"]+)"/.exec(html)![1];
    const res = await fetch(`${p.checkout_url}/coupon`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': desktop }, body: new URLSearchParams({ form_token: token, coupon: coupon.code }).toString(), redirect: 'manual',
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body).toMatchObject({ amount: 10_200, amount_discount: 0, coupon: null });
  });
});
