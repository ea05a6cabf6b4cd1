/**
 * The UnionPay adapter against the UnionPay simulator over real HTTP: the consume form posted as
 * a browser would, the payer page, the signed back notify (and its retries), the front notify
 * posted to frontUrl, queries, refunds (and their resubmission), and the simulator's refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelOrder, PaymentAction } from '../../server/channels/types.ts';
import { verifyMessage } from '../../server/channels/unionpay/sign.ts';
import { beijingTime } from '../../server/channels/unionpay/transform.ts';
import { compressNotifyRetries, unionpaySandbox } from '../../server/sandbox/unionpay/index.ts';
import { findTxn } from '../../server/sandbox/unionpay/store.ts';
import { startUnionpayHarness, waitFor, type UnionpayHarness } from './unionpay-harness.ts';

let h: UnionpayHarness;
beforeAll(async () => {
  h = await startUnionpayHarness();
});
afterAll(() => h.stop());

const formOf = (a: PaymentAction) => {
  if (a.type !== 'form') throw new Error(`expected a form, got ${a.type}`);
  return a;
};
const postForm = (url: string, fields: Record<string, string>) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString(), redirect: 'manual' });
const ctxOf = (o: ChannelOrder, reference: string, channelTradeNo: string | null = null) =>
  ({ channel: o.channel, reference, channelTradeNo, amount: o.amount, currency: 'CNY', createdAt: Math.floor(Date.now() / 1000), expiresAt: o.expiresAt });
/** The hidden inputs of the page's form (names and values as EJS escaped them). */
const hiddenInputs = (html: string) => Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, unescapeHtml(m[2]!)]));
const unescapeHtml = (s: string) => s.replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

describe('provision', () => {
  it('returns gateway-side credentials the adapter accepts', () => {
    expect(h.raw.mer_id).toMatch(/^777\d{12}$/);
    expect(h.raw.gateway).toBe(`${h.base}/sandbox/unionpay`);
    expect(h.cred.merId).toBe(h.raw.mer_id);
    expect(h.cred.certId).toMatch(/^\d{11,13}$/);
    expect(h.adapter.merchantIdOf(h.cred)).toBe(h.raw.mer_id);
    expect(h.adapter.appIdOf(h.cred)).toBe(h.raw.mer_id);
  });
});

describe.each(['unionpay_pc', 'unionpay_wap'] as const)('%s: pay, notify, front return, query, refund', (channel) => {
  let o: ChannelOrder;
  let action: Extract<PaymentAction, { type: 'form' }>;
  let reference: string;
  let queryId: string;
  beforeAll(() => {
    o = h.order(channel);
  });

  it('creates the consume form: fields, Beijing times, frontUrl with the order number; reference = txnTime', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await h.adapter.createPayment(h.cred, o);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    action = formOf(r.action);
    reference = r.reference!;
    expect(action.url).toBe(`${h.base}/sandbox/unionpay/gateway/api/frontTransReq.do`);
    expect(action.fields).toMatchObject({
      version: '5.1.0', encoding: 'UTF-8', signMethod: '01', certId: h.cred.certId, txnType: '01', txnSubType: '01', bizType: '000201',
      channelType: channel === 'unionpay_pc' ? '07' : '08', accessType: '0', merId: h.cred.merId, orderId: o.orderNo, txnAmt: '1234',
      currencyCode: '156', backUrl: o.notifyUrl, frontUrl: `${o.returnUrl}?out_trade_no=${o.orderNo}`, payTimeout: beijingTime(o.expiresAt),
    });
    expect(reference).toBe(action.fields.txnTime);
    expect([beijingTime(before), beijingTime(before + 1)]).toContain(reference);
  });

  it('the browser posts it: the payer page; the order is known (origRespCode 05 → pending)', async () => {
    const page = await postForm(action.url, action.fields);
    expect(page.status).toBe(200);
    const html = await page.text();
    for (const a of ['pay', 'fail', 'cancel']) expect(html).toContain(`data-sandbox-action="${a}"`);
    expect(html).toContain('¥12.34');
    expect(html).toContain('nonce="nonce-for-tests"');
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(await h.adapter.queryPayment(h.cred, o.orderNo, ctxOf(o, reference))).toEqual({ status: 'pending' });
  });

  it('pays on the page: signed back notify, then an auto-post of the signed result to frontUrl', async () => {
    const page = hiddenInputs(await (await postForm(action.url, action.fields)).text());
    const res = await postForm(`${h.base}/sandbox/unionpay/payer/action`, { ...page, action: 'pay', notify_mode: 'normal' });
    expect(res.status).toBe(200);
    const html = await res.text();
    const [n] = h.paymentNotifies(o.orderNo);
    expect(n).toMatchObject({ kind: 'payment', status: 'succeeded', amount: 1234, merchantId: h.cred.merId, currency: 'CNY' });
    queryId = n!.kind === 'payment' ? n!.channelTradeNo : '';
    // The back notify: form-encoded, signPubKeyCert with CRLF.
    const body = new URLSearchParams(h.notifyBodies.at(-1)!.toString());
    expect(body.get('signPubKeyCert')).toContain('\r\n');
    // The front notify page posts to frontUrl by script (nonce) and has a visible button.
    expect(html).toContain(`action="${o.returnUrl}?out_trade_no=${o.orderNo}"`);
    expect(html).toMatch(/<script nonce="nonce-for-tests">/);
    expect(html).toMatch(/<button type="submit">/);
    const front = hiddenInputs(html);
    expect(() => verifyMessage(front, h.cred.trust)).not.toThrow();
    expect(front).toMatchObject({ orderId: o.orderNo, respCode: '00', queryId });
    const back = await postForm(`${o.returnUrl}?out_trade_no=${o.orderNo}`, front);
    expect(await back.text()).toBe('back at the gateway');
    expect(h.returns.at(-1)!.query.out_trade_no).toBe(o.orderNo);
  });

  it('query: succeeded with the queryId and amount', async () => {
    expect(await h.adapter.queryPayment(h.cred, o.orderNo, ctxOf(o, reference))).toEqual({ status: 'succeeded', channelTradeNo: queryId, amount: 1234 });
    // The txnTime must be the exact one sent: another second is another (unknown) order.
    const other = beijingTime(Math.floor(Date.now() / 1000) - 3600);
    expect(await h.adapter.queryPayment(h.cred, o.orderNo, ctxOf(o, other))).toEqual({ status: 'pending' });
  });

  it('refunds: accepted (pending), the refund notify maps back; a resubmission moves no money twice', async () => {
    const createdAt = Math.floor(Date.now() / 1000);
    const refundNo = `re_${o.orderNo.slice(2, 26)}`;
    const req = { orderNo: o.orderNo, refundNo, amount: 500, totalAmount: 1234, currency: 'CNY', notifyUrl: o.notifyUrl, createdAt, attempt: ctxOf(o, reference, queryId) };
    const first = await h.adapter.refund(h.cred, req);
    expect(first.status).toBe('pending');
    const n = await waitFor(() => h.notifications.find((x) => x.kind === 'refund' && x.refundNo === refundNo));
    expect(n).toMatchObject({ kind: 'refund', orderNo: o.orderNo, status: 'succeeded', amount: 500, merchantId: h.cred.merId });
    // The refund worker resubmits with the same refund id: 12, then the refund's own query.
    expect(await h.adapter.refund(h.cred, req)).toMatchObject({ status: 'succeeded' });
    expect(await h.adapter.queryRefund(h.cred, o.orderNo, refundNo, { attempt: req.attempt, createdAt, channelRefundNo: null })).toMatchObject({ status: 'succeeded' });
    const orig = await findTxn(h.deps.db, h.cred.merId, o.orderNo, reference);
    expect(orig!.amountRefunded).toBe(500);
    // More than is left: 36, failed.
    const over = await h.adapter.refund(h.cred, { ...req, refundNo: `re_${o.orderNo.slice(3, 27)}`, amount: 800 });
    expect(over).toMatchObject({ status: 'failed' });
    expect(over.failureMessage).toMatch(/^36 /);
  });
});

describe('fail, cancel, close, timeouts', () => {
  it('fail: no back notify; the query stays pending until payTimeout + grace, closed after', async () => {
    const o = h.order('unionpay_pc');
    const r = await h.adapter.createPayment(h.cred, o);
    if (!r.ok) throw new Error('declined');
    const before = h.notifyBodies.length;
    await unionpaySandbox.act(h.deps, { appId: h.cred.merId, orderNo: o.orderNo, outcome: 'fail', notify: 'normal', action: r.action });
    expect(h.notifyBodies.length).toBe(before);
    const ctx = ctxOf(o, r.reference!);
    expect(await h.adapter.queryPayment(h.cred, o.orderNo, ctx)).toEqual({ status: 'pending' });
    expect(await h.adapter.queryPayment(h.cred, o.orderNo, { ...ctx, expiresAt: ctx.expiresAt - 3600 })).toEqual({ status: 'closed' });
  });

  it('an order never posted: not found (34): pending before payTimeout, closed after', async () => {
    const o = h.order('unionpay_pc');
    const r = await h.adapter.createPayment(h.cred, o);
    if (!r.ok) throw new Error('declined');
    const ctx = ctxOf(o, r.reference!);
    expect(await h.adapter.queryPayment(h.cred, o.orderNo, ctx)).toEqual({ status: 'pending' });
    expect(await h.adapter.queryPayment(h.cred, o.orderNo, { ...ctx, expiresAt: ctx.expiresAt - 3600 })).toEqual({ status: 'closed' });
  });

  it('closePayment: no close at UnionPay; payable until payTimeout + grace', async () => {
    const o = h.order('unionpay_pc');
    const result = await h.adapter.closePayment(h.cred, o.orderNo, ctxOf(o, beijingTime(Date.now() / 1000)));
    expect(result).toEqual({ payableUntil: o.expiresAt + 120 });
  });

  it('payTimeout is honoured: a pay after it is refused', async () => {
    const o = h.order('unionpay_wap', 1234, 2);
    const r = await h.adapter.createPayment(h.cred, o);
    if (!r.ok) throw new Error('declined');
    const page = await postForm(formOf(r.action).url, formOf(r.action).fields);
    const inputs = hiddenInputs(await page.text());
    await new Promise((res) => setTimeout(res, 2100));
    const res = await fetch(`${h.base}/sandbox/unionpay/payer/action`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...inputs, action: 'pay' }) });
    expect(res.status).toBe(409);
    expect((await res.json()).error.code).toBe('PAY_TIMEOUT');
  });

  it('cancel: back to frontUrl, nothing changes', async () => {
    const o = h.order('unionpay_pc');
    const r = await h.adapter.createPayment(h.cred, o);
    if (!r.ok) throw new Error('declined');
    const inputs = hiddenInputs(await (await postForm(formOf(r.action).url, formOf(r.action).fields)).text());
    const res = await postForm(`${h.base}/sandbox/unionpay/payer/action`, { ...inputs, action: 'cancel' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`${o.returnUrl}?out_trade_no=${o.orderNo}`);
    expect(await h.adapter.queryPayment(h.cred, o.orderNo, ctxOf(o, r.reference!))).toEqual({ status: 'pending' });
  });
});

describe('the simulator refuses what UnionPay refuses', () => {
  const errorCode = async (res: Response) => /data-error-code="([^"]*)"/.exec(await res.text())?.[1];

  it('a bad merchant signature: error page with 11', async () => {
    const r = await h.adapter.createPayment(h.cred, h.order('unionpay_pc'));
    if (!r.ok) throw new Error('declined');
    const a = formOf(r.action);
    const res = await postForm(a.url, { ...a.fields, txnAmt: '1' });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('11');
    expect(await errorCode(await postForm(a.url, { ...a.fields, certId: '12345' }))).toBe('11');
  });

  it('a duplicate orderId the same day (another txnTime): 12', async () => {
    const o = h.order('unionpay_pc');
    const r = await h.adapter.createPayment(h.cred, o);
    if (!r.ok) throw new Error('declined');
    expect((await postForm(formOf(r.action).url, formOf(r.action).fields)).status).toBe(200);
    await new Promise((res) => setTimeout(res, 1100));
    const again = await h.adapter.createPayment(h.cred, o);
    if (!again.ok) throw new Error('declined');
    expect(await errorCode(await postForm(formOf(again.action).url, formOf(again.action).fields))).toBe('12');
  });

  it('bad fields (orderId charset, txnTime, amount, currency) are answered 10 — after the signature', async () => {
    const { signRequest } = await import('../../server/channels/unionpay/sign.ts');
    const r = await h.adapter.createPayment(h.cred, h.order('unionpay_pc'));
    if (!r.ok) throw new Error('declined');
    const { signature: _s, ...fields } = formOf(r.action).fields;
    for (const patch of [{ orderId: 'cs_has_underscore' }, { txnTime: '2026-01-01 00:00' }, { txnAmt: '12.34' }, { currencyCode: '840' }, { backUrl: 'https://evil.example/notify' }]) {
      const res = await postForm(formOf(r.action).url, signRequest({ ...fields, ...patch }, h.cred.signKey, h.cred.certId));
      expect(await errorCode(res), JSON.stringify(patch)).toBe('10');
    }
  });

  it('back-end requests signed with another key are answered 11: ChannelConfigError', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { ChannelConfigError } = await import('../../server/errors.ts');
    const o = h.order('unionpay_pc');
    const stranger = { ...h.cred, signKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey };
    await expect(h.adapter.queryPayment(stranger, o.orderNo, ctxOf(o, beijingTime(Date.now() / 1000)))).rejects.toThrow(ChannelConfigError);
  });

  it('consume undo (31): same day, full amount only; the refund total never exceeds the payment', async () => {
    const { signRequest, parseRawResponse, verifyMessage: verify } = await import('../../server/channels/unionpay/sign.ts');
    const o = h.order('unionpay_pc', 700);
    const r = await h.adapter.createPayment(h.cred, o);
    if (!r.ok) throw new Error('declined');
    await unionpaySandbox.act(h.deps, { appId: h.cred.merId, orderNo: o.orderNo, outcome: 'pay', notify: 'drop', action: r.action });
    const paid = await h.adapter.queryPayment(h.cred, o.orderNo, ctxOf(o, r.reference!));
    const undo = async (orderId: string, txnAmt: string) => {
      const fields = signRequest({
        version: '5.1.0', encoding: 'UTF-8', txnType: '31', txnSubType: '00', bizType: '000201', accessType: '0', channelType: '07',
        merId: h.cred.merId, orderId, txnTime: beijingTime(Date.now() / 1000), txnAmt, origQryId: paid.channelTradeNo!, backUrl: o.notifyUrl,
      }, h.cred.signKey, h.cred.certId);
      const res = await postForm(`${h.base}/sandbox/unionpay/gateway/api/backTransReq.do`, fields);
      const answer = parseRawResponse(await res.text());
      verify(answer, h.cred.trust);
      return answer.respCode;
    };
    expect(await undo(`undo${o.orderNo.slice(2, 20)}a`, '300')).toBe('36');
    expect(await undo(`undo${o.orderNo.slice(2, 20)}b`, '700')).toBe('00');
    expect(await undo(`undo${o.orderNo.slice(2, 20)}c`, '700')).toBe('36');
    const refund = await h.adapter.refund(h.cred, { orderNo: o.orderNo, refundNo: `re_${o.orderNo.slice(4, 28)}`, amount: 1, totalAmount: 700, currency: 'CNY', notifyUrl: o.notifyUrl, createdAt: Math.floor(Date.now() / 1000), attempt: ctxOf(o, r.reference!, paid.channelTradeNo!) });
    expect(refund.status).toBe('failed');
  });

  it('a back notify not answered 200 is resent on the (compressed) schedule', async () => {
    compressNotifyRetries(60_000 / 50); // minutes → 50 ms
    try {
      const o = h.order('unionpay_pc');
      const r = await h.adapter.createPayment(h.cred, o);
      if (!r.ok) throw new Error('declined');
      h.notifyAnswer.refuse = true;
      const before = h.notifyBodies.length;
      await unionpaySandbox.act(h.deps, { appId: h.cred.merId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal', action: r.action });
      await waitFor(() => (h.notifyBodies.length >= before + 3 ? true : undefined));
      h.notifyAnswer.refuse = false;
      await waitFor(() => h.paymentNotifies(o.orderNo)[0]);
      // At most 5 sends in all.
      await new Promise((res) => setTimeout(res, 500));
      expect(h.notifyBodies.length - before).toBeLessThanOrEqual(5);
    } finally {
      h.notifyAnswer.refuse = false;
      compressNotifyRetries(1);
    }
  });
});

describe('transcripts', () => {
  it('the logs carry no key, certificate or signature', () => {
    const logs = h.logLines.join('\n');
    expect(logs).toContain('unionpay sandbox notify sent');
    expect(logs).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE|signature=|"signature"/);
    const signatures = h.notifyBodies.map((b) => new URLSearchParams(b.toString()).get('signature')).filter(Boolean);
    expect(signatures.length).toBeGreaterThan(0);
    for (const s of signatures) expect(logs).not.toContain(s!.slice(0, 40));
  });
});
