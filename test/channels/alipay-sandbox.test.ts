/**
 * The Alipay adapter against the Alipay simulator over real HTTP: an in-process Express app on
 * port 0 with an in-memory SQLite database, the simulator mounted at /sandbox/alipay and a notify
 * route that runs parseNotification like the core's /notify does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alipay } from '../../server/channels/alipay/index.ts';
import { alipaySandbox } from '../../server/sandbox/alipay/index.ts';
import type { ChannelOrder } from '../../server/channels/types.ts';
import { startAlipayHarness, waitFor, type AlipayHarness } from './alipay-harness.ts';

let h: AlipayHarness;
beforeAll(async () => {
  h = await startAlipayHarness();
});
afterAll(() => h.stop());

describe('provision', () => {
  it('returns gateway-side credentials the adapter accepts', () => {
    expect(h.raw.app_id).toMatch(/^2021000\d{9}$/);
    expect(h.raw.seller_id).toMatch(/^2088\d{12}$/);
    expect(h.raw.gateway).toBe(`${h.base}/sandbox/alipay/gateway.do`);
    expect(h.cred.appId).toBe(h.raw.app_id);
    expect(alipay.merchantIdOf(h.cred)).toBe(h.raw.seller_id);
  });
});

describe.each(['alipay_pc', 'alipay_wap', 'alipay_qr'] as const)('%s: pay, notify, query, refund', (channel) => {
  let o: ChannelOrder;
  beforeAll(() => {
    o = h.order(channel); // after the server is up: the order's URLs point at it
  });

  it('creates the payment and shows the payer page', async () => {
    const result = await alipay.createPayment(h.cred, o);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    if (channel === 'alipay_qr') {
      expect(result.action).toMatchObject({ type: 'qr' });
      // Until the code is scanned, the trade does not exist at Alipay.
      expect(await alipay.queryPayment(h.cred, o.orderNo)).toEqual({ status: 'not_found' });
    } else {
      expect(result.action.type).toBe('redirect');
      if (result.action.type === 'redirect') expect(result.action.url.startsWith(`${h.raw.gateway}?`)).toBe(true);
    }
    const url = result.action.type === 'redirect' ? result.action.url : result.action.type === 'qr' ? result.action.codeUrl : '';
    const page = await fetch(url);
    expect(page.status).toBe(200);
    const html = await page.text();
    for (const action of ['pay', 'fail', 'cancel']) expect(html).toContain(`data-sandbox-action="${action}"`);
    expect(html).toContain('¥12.34');
    expect(html).toContain('nonce="nonce-for-tests"');
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(await alipay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'pending', amount: 1234 });
  });

  it('pays; the signed notify verifies and says succeeded with the right amount', async () => {
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal' });
    const [n] = h.paymentNotifies(o.orderNo);
    expect(n).toMatchObject({ kind: 'payment', status: 'succeeded', amount: 1234, appId: h.cred.appId, merchantId: h.raw.seller_id });
    const q = await alipay.queryPayment(h.cred, o.orderNo);
    expect(q).toMatchObject({ status: 'succeeded', amount: 1234 });
    expect(q.channelTradeNo).toMatch(/^\d{28}$/);
    expect(n?.kind === 'payment' && n.channelTradeNo).toBe(q.channelTradeNo);
    expect(q.paidAt).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('refunds partly, then fully, refuses an over-refund, and answers refund queries', async () => {
    const refund = (refundNo: string, amount: number) =>
      alipay.refund(h.cred, { orderNo: o.orderNo, refundNo, amount, totalAmount: 1234, currency: 'CNY', reason: 'test', notifyUrl: o.notifyUrl });
    expect(await refund(`${o.orderNo}_r1`, 234)).toEqual({ status: 'succeeded' });
    expect(await refund(`${o.orderNo}_r1`, 234)).toEqual({ status: 'succeeded' }); // same out_request_no: the same refund
    expect(await refund(`${o.orderNo}_r2`, 1000)).toEqual({ status: 'succeeded' });
    const over = await refund(`${o.orderNo}_r3`, 1);
    expect(over.status).toBe('failed');
    expect(over.failureMessage).toContain('ACQ.REFUND_AMT_NOT_EQUAL_TOTAL');
    expect(await alipay.queryRefund(h.cred, o.orderNo, `${o.orderNo}_r1`)).toEqual({ status: 'succeeded' });
    expect(await alipay.queryRefund(h.cred, o.orderNo, `${o.orderNo}_r3`)).toEqual({ status: 'pending' });
    // Refund notifies carry out_biz_no and the cumulative refund_fee.
    const r2 = await waitFor(() => h.notifications.find((n) => n.kind === 'refund' && n.refundNo === `${o.orderNo}_r2`));
    expect(r2).toMatchObject({ kind: 'refund', orderNo: o.orderNo, status: 'succeeded', amount: 1234 });
    expect(await waitFor(() => h.notifications.find((n) => n.kind === 'refund' && n.refundNo === `${o.orderNo}_r1`))).toMatchObject({ amount: 234 });
  });
});

describe('close', () => {
  it('closes an unpaid order; query then says closed; closing again still succeeds', async () => {
    const o = h.order('alipay_pc');
    await h.createAndOpen(o);
    await alipay.closePayment(h.cred, o.orderNo);
    expect(await alipay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'closed' });
    await expect(alipay.closePayment(h.cred, o.orderNo)).resolves.toBeUndefined();
    await expect(alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal' })).rejects.toThrow(/ACQ.TRADE_HAS_CLOSE/);
  });

  it('closing an order Alipay never saw succeeds; querying it says not_found', async () => {
    await expect(alipay.closePayment(h.cred, 'att_never_created')).resolves.toBeUndefined();
    expect(await alipay.queryPayment(h.cred, 'att_never_created')).toEqual({ status: 'not_found' });
  });

  it('refuses to close a paid order', async () => {
    const o = h.order('alipay_qr');
    await h.createAndOpen(o);
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'drop' });
    await expect(alipay.closePayment(h.cred, o.orderNo)).rejects.toMatchObject({ name: 'ChannelRequestError', code: 'ACQ.TRADE_STATUS_ERROR' });
  });
});

describe('payer outcomes and notify modes', () => {
  it('the browser pay button redirects (303) to return_url with signed return parameters', async () => {
    const o = h.order('alipay_pc');
    const html = await h.createAndOpen(o);
    const field = (name: string) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))![1]!;
    const res = await fetch(`${h.base}/sandbox/alipay/payer/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ app_id: field('app_id'), out_trade_no: field('out_trade_no'), t: field('t'), action: 'pay', notify_mode: 'normal' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(o.returnUrl);
    const query = Object.fromEntries(location.searchParams);
    expect(query.method).toBe('alipay.trade.page.pay.return');
    expect(alipay.parseReturn!(h.cred, query)).toEqual({ orderNo: o.orderNo });
    expect(() => alipay.parseReturn!(h.cred, { ...query, total_amount: '0.01' })).toThrow(expect.objectContaining({ name: 'SignatureError' }));
    expect(h.paymentNotifies(o.orderNo)).toHaveLength(1);
  });

  it('cancel on the mobile page goes to quit_url and changes nothing', async () => {
    const o = h.order('alipay_wap');
    const html = await h.createAndOpen(o);
    const field = (name: string) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))![1]!;
    const res = await fetch(`${h.base}/sandbox/alipay/payer/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ app_id: field('app_id'), out_trade_no: o.orderNo, t: field('t'), action: 'cancel' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(o.quitUrl);
    expect(await alipay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'pending' });
  });

  it('fail closes the trade and notifies TRADE_CLOSED', async () => {
    const o = h.order('alipay_pc');
    await h.createAndOpen(o);
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'fail', notify: 'normal' });
    expect(h.paymentNotifies(o.orderNo)).toEqual([expect.objectContaining({ status: 'closed', amount: 1234 })]);
    expect(await alipay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'closed' });
  });

  it('duplicate sends the same notify twice (same notify_id); drop sends none', async () => {
    const dup = h.order('alipay_qr');
    await h.createAndOpen(dup);
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: dup.orderNo, outcome: 'pay', notify: 'duplicate' });
    const twice = h.paymentNotifies(dup.orderNo);
    expect(twice).toHaveLength(2);
    expect(twice[0]!.notifyId).toBe(twice[1]!.notifyId);

    const dropped = h.order('alipay_qr');
    await h.createAndOpen(dropped);
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: dropped.orderNo, outcome: 'pay', notify: 'drop' });
    await new Promise((r) => setTimeout(r, 150));
    expect(h.paymentNotifies(dropped.orderNo)).toHaveLength(0);
    expect(await alipay.queryPayment(h.cred, dropped.orderNo)).toMatchObject({ status: 'succeeded' });
  });

  it('delay:1 notifies about a second later', async () => {
    const o = h.order('alipay_pc');
    await h.createAndOpen(o);
    const started = Date.now();
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'delay:1' });
    expect(h.paymentNotifies(o.orderNo)).toHaveLength(0);
    await waitFor(() => h.paymentNotifies(o.orderNo)[0]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('act() explains a page-pay trade whose page was never opened, and opens it when given the action', async () => {
    const o = h.order('alipay_pc');
    const result = await alipay.createPayment(h.cred, o);
    await expect(alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal' })).rejects.toThrow(/ACQ.TRADE_NOT_EXIST/);
    if (!result.ok) throw new Error('declined');
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal', action: result.action });
    expect(h.paymentNotifies(o.orderNo)).toHaveLength(1);
  });
});

