/**
 * Huabei installments (花呗分期) between the Alipay adapter and the simulator over real HTTP:
 * extend_params.hb_fq_num / hb_fq_seller_percent go out with page.pay, wap.pay, precreate and
 * app.pay; the simulator refuses either one alone, other values, and trades under 100 yuan; a paid
 * installment trade reports hb_fq_pay_info in its notify and query (recurring.md §3.1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alipay, callGateway, sdkFor } from '../../server/channels/alipay/index.ts';
import { alipaySandbox } from '../../server/sandbox/alipay/index.ts';
import { findOrder } from '../../server/sandbox/alipay/store.ts';
import { installmentParams, nowBeijing, payBizContent } from '../../server/channels/alipay/transform.ts';
import { startAlipayHarness, type AlipayHarness } from './alipay-harness.ts';

let h: AlipayHarness;
beforeAll(async () => {
  h = await startAlipayHarness();
});
afterAll(() => h.stop());

/** A page.pay URL signed by the app for this biz_content, as the adapter signs its own. */
async function pageUrl(biz: Record<string, unknown>, method = 'alipay.trade.page.pay'): Promise<string> {
  return (await sdkFor(h.cred)).pageExecute(method, 'GET', { bizContent: biz, timestamp: nowBeijing() });
}

const pageBiz = (extra: Record<string, unknown>, amount = '200.00') => ({
  out_trade_no: `fq_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`,
  total_amount: amount, subject: 'Installments', product_code: 'FAST_INSTANT_TRADE_PAY', ...extra,
});

describe('the adapter sends extend_params', () => {
  it('both fields as strings: the customer pays the fee → "0", the merchant → "100"', () => {
    const o = h.order('alipay_pc', 20_000);
    expect(payBizContent({ ...o, channel: 'alipay_pc', installments: { count: 6, feePayer: 'customer' } }).extend_params).toEqual({ hb_fq_num: '6', hb_fq_seller_percent: '0' });
    expect(payBizContent({ ...o, channel: 'alipay_qr', installments: { count: 12, feePayer: 'merchant' } }).extend_params).toEqual({ hb_fq_num: '12', hb_fq_seller_percent: '100' });
    expect(payBizContent({ ...o, channel: 'alipay_pc' })).not.toHaveProperty('extend_params');
    expect(() => installmentParams({ count: 4 as 3, feePayer: 'customer' })).toThrow(RangeError);
  });
});

describe('the simulator checks extend_params as Alipay does', () => {
  it('refuses hb_fq_num alone, on page.pay, wap.pay and precreate, and stores no trade', async () => {
    for (const method of ['alipay.trade.page.pay', 'alipay.trade.wap.pay'] as const) {
      const biz = pageBiz({ extend_params: { hb_fq_num: '3' }, ...(method === 'alipay.trade.wap.pay' ? { product_code: 'QUICK_WAP_WAY' } : {}) });
      const page = await fetch(await pageUrl(biz, method));
      expect(page.status).toBe(400);
      const html = await page.text();
      expect(html).toContain('ACQ.INVALID_PARAMETER');
      expect(html).toContain('hb_fq_num and hb_fq_seller_percent');
      expect(await findOrder(h.deps.db, h.cred.appId, { outTradeNo: biz.out_trade_no })).toBeUndefined();
    }
    const out = `fq_pre_${Date.now()}`;
    const r = await callGateway(h.cred, 'alipay.trade.precreate', { out_trade_no: out, total_amount: '200.00', subject: 'Installments', extend_params: { hb_fq_num: '3' } });
    expect(r).toMatchObject({ code: '40004', sub_code: 'ACQ.INVALID_PARAMETER' });
    expect(await findOrder(h.deps.db, h.cred.appId, { outTradeNo: out })).toBeUndefined();
  });

  it('refuses hb_fq_seller_percent alone, other periods or percentages, and trades under 100 yuan', async () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ hb_fq_seller_percent: '0' }, '200.00', 'hb_fq_num and hb_fq_seller_percent'],
      [{ hb_fq_num: '4', hb_fq_seller_percent: '0' }, '200.00', 'hb_fq_num: 3, 6 or 12'],
      [{ hb_fq_num: '3', hb_fq_seller_percent: '50' }, '200.00', 'hb_fq_seller_percent: 0 or 100'],
      [{ hb_fq_num: '3', hb_fq_seller_percent: '0' }, '99.99', '100'],
    ];
    for (const [ext, amount, why] of cases) {
      const r = await callGateway(h.cred, 'alipay.trade.precreate', { out_trade_no: `fq_c_${Date.now()}_${Math.random().toString(36).slice(2, 6)}`, total_amount: amount, subject: 'x', extend_params: ext as Record<string, string> });
      expect(r, JSON.stringify(ext)).toMatchObject({ code: '40004', sub_code: 'ACQ.INVALID_PARAMETER' });
      expect(String(r.sub_msg)).toContain(why);
    }
    // 100.00 exactly is taken.
    const ok = await callGateway(h.cred, 'alipay.trade.precreate', { out_trade_no: `fq_ok_${Date.now()}`, total_amount: '100.00', subject: 'x', extend_params: { hb_fq_num: '3', hb_fq_seller_percent: '0' } });
    expect(ok.code).toBe('10000');
  });

  it('refuses a bad extend_params in an app.pay order string at the wallet', async () => {
    const orderString = (await sdkFor(h.cred)).sdkExecute('alipay.trade.app.pay', {
      timestamp: nowBeijing(),
      biz_content: { out_trade_no: `fq_app_${Date.now()}`, total_amount: '200.00', subject: 'x', product_code: 'QUICK_MSECURITY_PAY', extend_params: { hb_fq_num: '12' } },
    }, { bizContentAutoSnakeCase: false });
    const res = await fetch(`${h.base}/sandbox/alipay/app/pay`, { method: 'POST', body: orderString, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ resultStatus: '4000', sub_code: 'ACQ.INVALID_PARAMETER' });
  });
});

describe('a paid installment trade', () => {
  it('shows the periods on the payer page; notify and query carry hb_fq_pay_info', async () => {
    const o = { ...h.order('alipay_pc', 36_000), installments: { count: 6 as const, feePayer: 'merchant' as const } };
    const html = await h.createAndOpen(o);
    expect(html).toContain('花呗分期 6 期');
    expect(html).toContain('data-installments="6"');
    expect(html).toContain('商家承担手续费');
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal' });
    const body = h.notifyBodies.map((b) => new URLSearchParams(b.toString())).find((p) => p.get('out_trade_no') === o.orderNo && p.get('trade_status') === 'TRADE_SUCCESS')!;
    expect(JSON.parse(body.get('hb_fq_pay_info')!)).toEqual({ user_install_num: '6', fq_amount: '360.00' });
    expect(h.paymentNotifies(o.orderNo)[0]).toMatchObject({ status: 'succeeded', amount: 36_000 });
    const q = await callGateway(h.cred, 'alipay.trade.query', { out_trade_no: o.orderNo });
    expect(q.hb_fq_pay_info).toEqual({ user_install_num: '6', fq_amount: '360.00' });
    expect(await alipay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'succeeded', amount: 36_000 });
  });

  it('a trade without installments reports none', async () => {
    const o = h.order('alipay_pc', 36_000);
    await h.createAndOpen(o);
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal' });
    const q = await callGateway(h.cred, 'alipay.trade.query', { out_trade_no: o.orderNo });
    expect(q).not.toHaveProperty('hb_fq_pay_info');
  });

  it('a repeated out_trade_no keeps the first period count (a new count needs a new number)', async () => {
    const biz = pageBiz({ extend_params: { hb_fq_num: '3', hb_fq_seller_percent: '0' } });
    expect(await (await fetch(await pageUrl(biz))).text()).toContain('花呗分期 3 期');
    const again = await (await fetch(await pageUrl({ ...biz, extend_params: { hb_fq_num: '12', hb_fq_seller_percent: '0' } }))).text();
    expect(again).toContain('花呗分期 3 期');
    expect((await findOrder(h.deps.db, h.cred.appId, { outTradeNo: biz.out_trade_no }))!.data.installments).toEqual({ count: 3, sellerPercent: 0 });
  });
});
