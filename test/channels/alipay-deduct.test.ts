/**
 * Alipay 周期扣款 deductions (alipay.trade.pay with agreement_params) through the adapter's
 * deductWithAgreement against the simulator over real HTTP: mandates are signed at the simulator
 * as the wallet user would, and the simulator's clock for the app (setSandboxClock) stands at the
 * Beijing time each case needs.
 */
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alipay, callGateway } from '../../server/channels/alipay/index.ts';
import { agreementSignUrl, deductWithAgreement, unsignAgreement, type AlipayDeductRequest, type AlipaySignRequest } from '../../server/channels/alipay/agreements.ts';
import { signResponse } from '../../server/channels/alipay/sign.ts';
import { parseBeijingTime } from '../../server/channels/alipay/transform.ts';
import { signerToken } from '../../server/sandbox/alipay/agreements.ts';
import { findMerchant } from '../../server/sandbox/alipay/store.ts';
import { setSandboxClock } from '../../server/sandbox/clock.ts';
import { ChannelUnavailable } from '../../server/errors.ts';
import type { ChannelNotification } from '../../server/channels/types.ts';
import { startAlipayHarness, waitFor, type AlipayHarness } from './alipay-harness.ts';

let h: AlipayHarness;
let seq = 0;
beforeAll(async () => {
  // Public-key mode: these tests build public-key configs and re-sign answers without alipay_cert_sn.
  h = await startAlipayHarness({ mode: 'public-key' });
  // A gateway in the middle that forwards to the simulator, then answers trade.pay as Alipay
  // does while a charge is still being completed (10003), or in its asynchronous mode.
  h.app.post('/fake/:mode/gateway.do', express.text({ type: () => true }), async (req, res) => {
    const upstream = await fetch(`${h.raw.gateway}?${req.originalUrl.split('?')[1]}`, {
      method: 'POST', headers: { 'content-type': req.get('content-type')! }, body: req.body as string,
    });
    const text = await upstream.text();
    const merchant = (await findMerchant(h.deps.db, h.deps.masterKey, h.raw.app_id!))!;
    const body = JSON.parse(text).alipay_trade_pay_response;
    const answer = req.params.mode === 'in-process'
      ? { code: '10003', msg: ' order success pay inprocess', out_trade_no: body.out_trade_no }
      : { ...body, async_payment_mode: 'NORMAL_ASYNC_PAY' };
    res.type('application/json').send(signResponse('alipay_trade_pay_response', answer, merchant.alipayPrivateKey));
  });
});
afterAll(() => h.stop());

const notifyUrl = () => `${h.base}/notify/alipay/gateway`;

/** Stands the simulator's clock for this app at a Beijing time (`yyyy-MM-dd HH:mm:ss`). */
const standAt = (beijing: string) => setSandboxClock(h.deps.db, 'alipay', h.cred.appId, parseBeijingTime(beijing) * 1000 - Date.now());

/** A monthly mandate due on the 15th (from 2030-03-15), at most ¥30.00 a deduction, signed in the wallet. */
async function signedMandate(rule: Partial<AlipaySignRequest> = {}) {
  const externalAgreementNo = `agr${Date.now()}n${++seq}`;
  const url = await agreementSignUrl(h.cred, {
    externalAgreementNo, periodType: 'MONTH', period: 1, executeTime: '2030-03-15', singleAmount: 3000, accessChannel: 'ALIPAYAPP', notifyUrl: notifyUrl(), ...rule,
  });
  const page = await fetch(url);
  expect(page.status, await page.text()).toBe(200);
  const res = await fetch(`${h.base}/sandbox/alipay/agreement/action`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ app_id: h.cred.appId, external_agreement_no: externalAgreementNo, t: signerToken(h.deps.masterKey, h.cred.appId, externalAgreementNo), action: 'sign' }),
  });
  const body = (await res.json()) as { status: string; agreement_no: string };
  expect(body.status).toBe('NORMAL');
  await waitFor(() => h.notifications.find((n) => n.kind === 'agreement' && n.channelAgreementNo === body.agreement_no));
  return { agreementNo: body.agreement_no, externalAgreementNo };
}

function charge(agreementNo: string, amount = 1990, orderNo = `ded_${Date.now()}_${++seq}`): AlipayDeductRequest {
  return { orderNo, agreementNo, amount, subject: 'Gold plan / month', notifyUrl: notifyUrl() };
}

const deductionRows = (agreementNo: string) => h.deps.db('sandbox_agreement_deductions').where({ provider: 'alipay', agreement_no: agreementNo });
const tradeRows = (orderNo: string) => h.deps.db('sandbox_orders').where({ provider: 'alipay', out_trade_no: orderNo });
const nextDeductTime = async (agreementNo: string) => (await callGateway(h.cred, 'alipay.user.agreement.query', { agreement_no: agreementNo })).next_deduct_time;

describe('a deduction inside the window', () => {
  it('succeeds at once (10000), notifies TRADE_SUCCESS through parseNotification, and moves the plan one period', async () => {
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-12 09:30:00'); // the first of the 3 days before the due date
    const r = charge(agreementNo);
    const result = await deductWithAgreement(h.cred, r);
    expect(result.status).toBe('succeeded');
    if (result.status !== 'succeeded') return;
    expect(result.channelTradeNo).toMatch(/^\d{28}$/);
    expect(Math.abs(result.paidAt! - parseBeijingTime('2030-03-12 09:30:00'))).toBeLessThan(5);

    const n = await waitFor(() => h.paymentNotifies(r.orderNo)[0]);
    expect(n).toMatchObject({ kind: 'payment', status: 'succeeded', amount: 1990, appId: h.cred.appId, merchantId: h.raw.seller_id, channelTradeNo: result.channelTradeNo });
    const form = new URLSearchParams(h.notifyBodies.map((b) => b.toString()).find((b) => new URLSearchParams(b).get('out_trade_no') === r.orderNo)!);
    expect(form.get('notify_type')).toBe('trade_status_sync');
    expect(form.get('trade_status')).toBe('TRADE_SUCCESS');
    expect(h.refusedNotifies).toEqual([]);

    // The trade is an ordinary one: query, refund.
    expect(await alipay.queryPayment(h.cred, r.orderNo)).toMatchObject({ status: 'succeeded', amount: 1990, channelTradeNo: result.channelTradeNo });
    expect(await alipay.refund(h.cred, { orderNo: r.orderNo, refundNo: `${r.orderNo}r1`, amount: 990, totalAmount: 1990, currency: 'CNY', notifyUrl: notifyUrl() })).toEqual({ status: 'succeeded' });
    expect(await nextDeductTime(agreementNo)).toBe('2030-04-15');
    expect((await deductionRows(agreementNo)).map((x) => [x.period_date, Number(x.amount)])).toEqual([['2030-03-15', 1990]]);
  });

  it('the due date itself is inside the window, until its last second (Beijing time)', async () => {
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-15 23:59:50');
    expect((await deductWithAgreement(h.cred, charge(agreementNo))).status).toBe('succeeded');
  });
});

describe('refusals', () => {
  it('a second deduction in the same period is refused (ACQ.CYCLE_PAY_DATE_NOT_MATCH); the next period takes one', async () => {
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-13 10:00:00');
    expect((await deductWithAgreement(h.cred, charge(agreementNo))).status).toBe('succeeded');
    await standAt('2030-03-15 10:00:00');
    const again = charge(agreementNo);
    expect(await deductWithAgreement(h.cred, again)).toMatchObject({ status: 'failed', code: 'ACQ.CYCLE_PAY_DATE_NOT_MATCH' });
    expect(await alipay.queryPayment(h.cred, again.orderNo)).toEqual({ status: 'not_found' });
    await standAt('2030-04-12 08:00:00');
    expect((await deductWithAgreement(h.cred, charge(agreementNo))).status).toBe('succeeded');
    expect((await deductionRows(agreementNo)).map((x) => x.period_date).sort()).toEqual(['2030-03-15', '2030-04-15']);
  });

  it('outside the window (the day before it opens, the day after the due date) is refused with ACQ.CYCLE_PAY_DATE_NOT_MATCH', async () => {
    const { agreementNo } = await signedMandate();
    for (const at of ['2030-03-11 23:59:50', '2030-03-16 00:00:10', '2030-02-15 12:00:00']) {
      await standAt(at);
      const r = charge(agreementNo);
      const result = await deductWithAgreement(h.cred, r);
      expect(result, at).toMatchObject({ status: 'failed', code: 'ACQ.CYCLE_PAY_DATE_NOT_MATCH' });
      if (result.status === 'failed') expect(result.message).toContain('扣款日期不在签约时的允许范围之内');
      expect(await alipay.queryPayment(h.cred, r.orderNo)).toEqual({ status: 'not_found' });
    }
    // A missed period keeps the plan on the missed date.
    expect(await nextDeductTime(agreementNo)).toBe('2030-03-15');
    expect(await deductionRows(agreementNo)).toHaveLength(0);
  });

  it('over the single amount is refused (ACQ.CYCLE_PAY_SINGLE_FEE_EXCEED); the cap itself is taken', async () => {
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-14 12:00:00');
    expect(await deductWithAgreement(h.cred, charge(agreementNo, 3001))).toMatchObject({ status: 'failed', code: 'ACQ.CYCLE_PAY_SINGLE_FEE_EXCEED' });
    expect(await deductWithAgreement(h.cred, charge(agreementNo, 3000))).toMatchObject({ status: 'succeeded' });
  });

  it('total_payments and total_amount caps of the rule are enforced (ACQ.CYCLE_PAY_TOTAL_TIMES_EXCEED, ACQ.CYCLE_PAY_TOTAL_FEE_EXCEED)', async () => {
    const times = await signedMandate({ totalPayments: 1 });
    const fee = await signedMandate({ totalAmount: 2500 });
    await standAt('2030-03-14 12:00:00');
    expect((await deductWithAgreement(h.cred, charge(times.agreementNo, 1000))).status).toBe('succeeded');
    expect((await deductWithAgreement(h.cred, charge(fee.agreementNo, 2000))).status).toBe('succeeded');
    await standAt('2030-04-14 12:00:00');
    expect(await deductWithAgreement(h.cred, charge(times.agreementNo, 1000))).toMatchObject({ status: 'failed', code: 'ACQ.CYCLE_PAY_TOTAL_TIMES_EXCEED' });
    expect(await deductWithAgreement(h.cred, charge(fee.agreementNo, 600))).toMatchObject({ status: 'failed', code: 'ACQ.CYCLE_PAY_TOTAL_FEE_EXCEED' });
    expect((await deductWithAgreement(h.cred, charge(fee.agreementNo, 500))).status).toBe('succeeded');
  });

  it('insufficient funds (an amount ending in 51 fen) is ACQ.BUYER_BALANCE_NOT_ENOUGH, charges nothing and leaves the period open', async () => {
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-14 12:00:00');
    const poor = charge(agreementNo, 1051);
    expect(await deductWithAgreement(h.cred, poor)).toMatchObject({ status: 'failed', code: 'ACQ.BUYER_BALANCE_NOT_ENOUGH' });
    expect(await alipay.queryPayment(h.cred, poor.orderNo)).toEqual({ status: 'not_found' });
    expect(await deductionRows(agreementNo)).toHaveLength(0);
    expect((await deductWithAgreement(h.cred, charge(agreementNo, 1000))).status).toBe('succeeded');
  });

  it('after the wallet user unsigned, a deduction is refused with ACQ.AGREEMENT_NOT_EXIST; so after the merchant unsigned, and for an unknown agreement_no', async () => {
    await standAt('2030-03-14 12:00:00');
    const wallet = await signedMandate();
    const res = await fetch(`${h.base}/sandbox/alipay/agreement/action`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ app_id: h.cred.appId, external_agreement_no: wallet.externalAgreementNo, t: signerToken(h.deps.masterKey, h.cred.appId, wallet.externalAgreementNo), action: 'unsign' }),
    });
    expect(((await res.json()) as { status: string }).status).toBe('UNSIGN');
    const r = charge(wallet.agreementNo);
    expect(await deductWithAgreement(h.cred, r)).toMatchObject({ status: 'failed', code: 'ACQ.AGREEMENT_NOT_EXIST' });
    expect(await tradeRows(r.orderNo)).toHaveLength(0);

    const merchant = await signedMandate();
    await unsignAgreement(h.cred, merchant.agreementNo, notifyUrl());
    expect(await deductWithAgreement(h.cred, charge(merchant.agreementNo))).toMatchObject({ status: 'failed', code: 'ACQ.AGREEMENT_NOT_EXIST' });
    expect(await deductWithAgreement(h.cred, charge('20209999999999999999'))).toMatchObject({ status: 'failed', code: 'ACQ.AGREEMENT_NOT_EXIST' });
  });
});

describe('never charged twice', () => {
  it('an unknown answer (amount ending in 52 fen) throws ChannelUnavailable; the query finds it paid, and the simulator counts one charge', async () => {
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-14 12:00:00');
    const r = charge(agreementNo, 1052);
    await expect(deductWithAgreement(h.cred, r)).rejects.toBeInstanceOf(ChannelUnavailable);
    const q = await alipay.queryPayment(h.cred, r.orderNo);
    expect(q).toMatchObject({ status: 'succeeded', amount: 1052 });
    const n: ChannelNotification = await waitFor(() => h.paymentNotifies(r.orderNo)[0]);
    expect(n).toMatchObject({ status: 'succeeded', channelTradeNo: q.channelTradeNo });
    // Repeating the same out_trade_no (what a caller does after an unknown answer) charges nothing more.
    expect(await deductWithAgreement(h.cred, r)).toMatchObject({ status: 'succeeded', channelTradeNo: q.channelTradeNo });
    expect(await deductionRows(agreementNo)).toHaveLength(1);
    expect(await tradeRows(r.orderNo)).toHaveLength(1);
  });

  it('a repeat of a paid out_trade_no is succeeded with the same trade number, even in the next period’s window', async () => {
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-14 12:00:00');
    const r = charge(agreementNo);
    const first = await deductWithAgreement(h.cred, r);
    expect(first.status).toBe('succeeded');
    if (first.status !== 'succeeded') return;
    expect(await deductWithAgreement(h.cred, r)).toMatchObject({ status: 'succeeded', channelTradeNo: first.channelTradeNo });
    await standAt('2030-04-13 12:00:00');
    expect(await deductWithAgreement(h.cred, r)).toMatchObject({ status: 'succeeded', channelTradeNo: first.channelTradeNo });
    expect(await deductionRows(agreementNo)).toHaveLength(1);
    expect(await nextDeductTime(agreementNo)).toBe('2030-04-15');
    await waitFor(() => h.paymentNotifies(r.orderNo)[0]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(h.paymentNotifies(r.orderNo)).toHaveLength(1);
  });
});

describe('request shape and answers the simulator does not give', () => {
  it('sends CYCLE_PAY_AUTH with agreement_params, no auth_code, notify_url set, the amount in yuan', async () => {
    const seen: URLSearchParams[] = [];
    h.app.post('/spy/gateway.do', express.text({ type: () => true }), async (req, res) => {
      const form = new URLSearchParams(req.body as string);
      for (const [k, v] of new URLSearchParams(req.originalUrl.split('?')[1])) form.set(k, v);
      seen.push(form);
      const upstream = await fetch(`${h.raw.gateway}?${req.originalUrl.split('?')[1]}`, { method: 'POST', headers: { 'content-type': req.get('content-type')! }, body: req.body as string });
      res.type('application/json').send(await upstream.text());
    });
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-14 12:00:00');
    const r = charge(agreementNo, 1234);
    expect((await deductWithAgreement({ ...h.cred, gateway: `${h.base}/spy/gateway.do` }, r)).status).toBe('succeeded');
    const [form] = seen;
    expect(form!.get('method')).toBe('alipay.trade.pay');
    expect(form!.get('notify_url')).toBe(notifyUrl());
    const biz = JSON.parse(form!.get('biz_content')!);
    expect(biz).toEqual({ out_trade_no: r.orderNo, total_amount: '12.34', subject: 'Gold plan month', product_code: 'CYCLE_PAY_AUTH', agreement_params: { agreement_no: agreementNo } });
  });

  it('10003 (in process) and an asynchronous pay mode are pending; the caller queries', async () => {
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-14 12:00:00');
    const inProcess = await deductWithAgreement({ ...h.cred, gateway: `${h.base}/fake/in-process/gateway.do` }, charge(agreementNo, 1000));
    expect(inProcess).toEqual({ status: 'pending' });
    const other = await signedMandate();
    const r = charge(other.agreementNo, 1000);
    expect(await deductWithAgreement({ ...h.cred, gateway: `${h.base}/fake/async/gateway.do` }, r)).toEqual({ status: 'pending' });
    expect((await alipay.queryPayment(h.cred, r.orderNo)).status).toBe('succeeded');
  });

  it('a deduction that is not CYCLE_PAY_AUTH is refused by the simulator', async () => {
    const { agreementNo } = await signedMandate();
    await standAt('2030-03-14 12:00:00');
    const general = await callGateway(h.cred, 'alipay.trade.pay', { out_trade_no: `ded_gw_${++seq}`, total_amount: '10.00', subject: 'x', product_code: 'GENERAL_WITHHOLDING', agreement_params: { agreement_no: agreementNo } });
    expect(general.sub_code).toBe('ACQ.MERCHANT_AGREEMENT_NOT_EXIST');
    const barcode = await callGateway(h.cred, 'alipay.trade.pay', { out_trade_no: `ded_bc_${++seq}`, total_amount: '10.00', subject: 'x', scene: 'bar_code', auth_code: '281234567890123456' });
    expect(barcode.sub_code).toBe('ACQ.INVALID_PARAMETER');
    expect(await deductionRows(agreementNo)).toHaveLength(0);
  });
});
