/**
 * The WeChat Pay adapter against the WeChat Pay simulator over real HTTP: an in-process Express
 * app on port 0 with an in-memory SQLite database, the simulator mounted at /sandbox/wechatpay and
 * a notify route that runs parseNotification like the core's /notify does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchangeOAuthCode, oauthAuthorizeUrl, wechatpay } from '../../server/channels/wechatpay/index.ts';
import { sandboxJsapiUrl, sandboxPayerOpenid, sandboxScanUrl, scheduledNotifyCount, wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';
import type { ChannelOrder, PaymentAction } from '../../server/channels/types.ts';
import { pageUrlOf, startWechatpayHarness, waitFor, type WechatpayHarness } from './wechatpay-harness.ts';

let h: WechatpayHarness;
beforeAll(async () => {
  h = await startWechatpayHarness();
});
afterAll(() => h.stop());

const act = (o: ChannelOrder, outcome: 'pay' | 'fail' | 'cancel', action?: PaymentAction, notify: 'normal' | 'drop' | 'duplicate' | `delay:${number}` = 'normal') =>
  wechatpaySandbox.act(h.deps, { appId: h.cred.appid, orderNo: o.orderNo, outcome, notify, action });
const fieldOf = (html: string, name: string) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1] ?? '';

describe('provision', () => {
  it('returns gateway-side credentials the adapter accepts, in public-key-id mode', () => {
    expect(h.raw.mchid).toMatch(/^19\d{8}$/);
    expect(h.raw.appid).toMatch(/^wx[0-9a-f]{16}$/);
    expect(h.raw.serial_no).toMatch(/^[0-9A-F]{40}$/);
    expect(h.raw.apiv3_key).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(h.raw.wechatpay_public_key_id).toMatch(/^PUB_KEY_ID_0112\d{24}$/);
    expect(h.raw.base_url).toBe(`${h.base}/sandbox/wechatpay`);
    expect(wechatpay.appIdOf(h.cred)).toBe(h.raw.appid);
    expect(wechatpay.merchantIdOf(h.cred)).toBe(h.raw.mchid);
    expect(h.cred.oauthBaseUrl).toBe(h.raw.base_url);
  });

  it('the OAuth stand-ins hand out the sandbox payer\'s stable openid for the appid', async () => {
    expect(h.openid).toBe(sandboxPayerOpenid(h.deps, h.cred.appid));
    expect(h.openid).toMatch(/^o[A-Za-z0-9_-]{27}$/);
    const url = oauthAuthorizeUrl(h.cred, `${h.base}/pay/oauthtest/authorized?x=1`, 'abc');
    expect(url).toBe(`${h.raw.base_url}/connect/oauth2/authorize?appid=${h.cred.appid}&redirect_uri=${encodeURIComponent(`${h.base}/pay/oauthtest/authorized?x=1`)}&response_type=code&scope=snsapi_base&state=abc#wechat_redirect`);
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const back = new URL(res.headers.get('location')!);
    expect(back.searchParams.get('x')).toBe('1');
    expect(back.searchParams.get('state')).toBe('abc');
    const code = back.searchParams.get('code')!;
    expect(await exchangeOAuthCode(h.cred, code)).toBe(h.openid);
    // A code is single use.
    await expect(exchangeOAuthCode(h.cred, code)).rejects.toMatchObject({ name: 'ChannelRequestError', code: '40163' });
    await expect(exchangeOAuthCode(h.cred, 'A'.repeat(32))).rejects.toMatchObject({ name: 'ChannelRequestError', code: '40029' });
  });
});

describe.each(['wechat_native', 'wechat_h5', 'wechat_jsapi'] as const)('%s: pay, notify, query, refund', (channel) => {
  let o: ChannelOrder;
  let action: PaymentAction;
  beforeAll(() => {
    o = h.order(channel); // after the server is up: the order's URLs point at it
  });

  it('creates the payment and shows the payer page', async () => {
    action = await h.create(o);
    if (channel === 'wechat_native') {
      expect(action).toEqual({ type: 'qr', codeUrl: expect.stringMatching(/^weixin:\/\/wxpay\/bizpayurl\?pr=[A-Za-z0-9]{20}$/) });
    } else if (channel === 'wechat_h5') {
      expect(action.type).toBe('redirect');
      if (action.type === 'redirect') {
        expect(action.url.startsWith(`${h.raw.base_url}/h5/`)).toBe(true);
        expect(action.url.endsWith(`&redirect_url=${encodeURIComponent(o.returnUrl)}`)).toBe(true);
      }
    } else {
      expect(action.type).toBe('jsapi');
      if (action.type === 'jsapi') {
        expect(action.params).toMatchObject({ appId: h.cred.appid, signType: 'RSA', package: expect.stringMatching(/^prepay_id=wx\d{14}[A-Za-z0-9]{20}$/) });
        expect(action.params.timeStamp).toMatch(/^\d{10}$/);
      }
    }
    const page = await fetch(pageUrlOf(h.base, action));
    expect(page.status).toBe(200);
    const html = await page.text();
    for (const a of ['pay', 'fail', 'cancel']) expect(html).toContain(`data-sandbox-action="${a}"`);
    expect(html).toContain('¥12.34');
    expect(html).toContain('nonce="nonce-for-tests"');
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(await wechatpay.queryPayment(h.cred, o.orderNo)).toEqual({ status: 'pending', amount: 1234, channelTradeNo: undefined, paidAt: undefined });
  });

  it('creating again with the same terms answers the same; other terms are declined', async () => {
    expect(await h.create(o)).toEqual(channel === 'wechat_jsapi' ? expect.objectContaining({ type: 'jsapi' }) : action);
    if (action.type === 'jsapi') {
      const again = await h.create(o);
      expect(again.type === 'jsapi' && again.params.package).toBe(action.params.package);
    }
    expect(await wechatpay.createPayment(h.cred, { ...o, amount: 999 })).toEqual({ ok: false, decline: { code: 'INVALID_REQUEST', message: expect.stringContaining('商户订单号重复') } });
  });

  it('pays; the signed, encrypted notify verifies and says succeeded with the right amount', async () => {
    await h.pay(o, action);
    const [n] = h.paymentNotifies(o.orderNo);
    expect(n).toMatchObject({ kind: 'payment', status: 'succeeded', amount: 1234, appId: h.cred.appid, merchantId: h.cred.mchid });
    const q = await wechatpay.queryPayment(h.cred, o.orderNo);
    expect(q).toMatchObject({ status: 'succeeded', amount: 1234 });
    expect(q.channelTradeNo).toMatch(/^4200\d{24}$/);
    expect(n?.kind === 'payment' && n.channelTradeNo).toBe(q.channelTradeNo);
    expect(n?.kind === 'payment' && n.notifyId).toMatch(/^[0-9a-f-]{36}$/);
    expect(q.paidAt).toBeGreaterThan(Date.now() / 1000 - 60);
    // The notify went out as WeChat sends it.
    const sent = h.captured.filter((c) => c.mchid === h.raw.mchid && c.body.toString().includes('TRANSACTION.SUCCESS')).at(-1)!;
    expect(sent.headers['wechatpay-serial']).toBe(h.raw.wechatpay_public_key_id);
    const envelope = JSON.parse(sent.body.toString());
    expect(envelope).toMatchObject({ resource_type: 'encrypt-resource', event_type: 'TRANSACTION.SUCCESS', resource: { original_type: 'transaction', algorithm: 'AEAD_AES_256_GCM', associated_data: 'transaction' } });
    expect(envelope.resource.nonce).toHaveLength(12);
    expect(sent.body.toString()).not.toContain(o.orderNo); // encrypted
  });

  it('refunds partly, then fully, refuses an over-refund, notifies REFUND.SUCCESS and answers refund queries', async () => {
    const refund = (refundNo: string, amount: number) =>
      wechatpay.refund(h.cred, { orderNo: o.orderNo, refundNo, amount, totalAmount: 1234, currency: 'CNY', reason: '测试退款', notifyUrl: o.notifyUrl });
    const r1 = await refund(`${o.orderNo}_r1`, 234);
    expect(r1.status).toBe('pending'); // PROCESSING: WeChat moves the money back just after
    expect(r1.channelRefundNo).toMatch(/^50\d{27}$/);
    expect(await refund(`${o.orderNo}_r1`, 234)).toMatchObject({ channelRefundNo: r1.channelRefundNo }); // same out_refund_no: the same refund
    await refund(`${o.orderNo}_r2`, 1000);
    const over = await refund(`${o.orderNo}_r3`, 1);
    expect(over).toEqual({ status: 'failed', failureMessage: expect.stringContaining('INVALID_REQUEST') });
    const n2 = await waitFor(() => h.refundNotifies(o.orderNo).find((n) => n.kind === 'refund' && n.refundNo === `${o.orderNo}_r2`));
    expect(n2).toMatchObject({ kind: 'refund', status: 'succeeded', amount: 1000, merchantId: h.cred.mchid, channelRefundNo: expect.stringMatching(/^50\d{27}$/) });
    expect(await waitFor(() => h.refundNotifies(o.orderNo).find((n) => n.kind === 'refund' && n.refundNo === `${o.orderNo}_r1`))).toMatchObject({ amount: 234 });
    expect(await wechatpay.queryRefund(h.cred, o.orderNo, `${o.orderNo}_r1`)).toEqual({ status: 'succeeded', channelRefundNo: r1.channelRefundNo });
    // Unknown to WeChat: neither pending nor failed, a fault that settles nothing.
    await expect(wechatpay.queryRefund(h.cred, o.orderNo, `${o.orderNo}_r3`)).rejects.toMatchObject({ name: 'ChannelUnavailable', message: expect.stringContaining('RESOURCE_NOT_EXISTS') });
    // REFUND still means it was paid.
    expect(await wechatpay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'succeeded', amount: 1234 });
  });
});

describe('close and fail', () => {
  it('closes an unpaid order; query then says closed; closing again succeeds; paying it is refused', async () => {
    const o = h.order('wechat_native');
    const action = await h.create(o);
    await wechatpay.closePayment(h.cred, o.orderNo);
    expect(await wechatpay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'closed' });
    await expect(wechatpay.closePayment(h.cred, o.orderNo)).resolves.toBeUndefined();
    await expect(act(o, 'pay', action)).rejects.toThrow(/ORDER_CLOSED/);
    expect(await wechatpay.createPayment(h.cred, o)).toEqual({ ok: false, decline: { code: 'ORDER_CLOSED', message: expect.any(String) } });
  });

  it('closing an order WeChat never saw succeeds; querying it says not_found', async () => {
    await expect(wechatpay.closePayment(h.cred, 'att_never_created')).resolves.toBeUndefined();
    expect(await wechatpay.queryPayment(h.cred, 'att_never_created')).toEqual({ status: 'not_found' });
  });

  it('refuses to close a paid order', async () => {
    const o = h.order('wechat_h5');
    await h.pay(o, await h.create(o), undefined, 'drop');
    await expect(wechatpay.closePayment(h.cred, o.orderNo)).rejects.toMatchObject({ name: 'ChannelRequestError', code: 'ORDERPAID' });
  });

  it('fail makes the order PAYERROR: no notify, query says closed', async () => {
    const o = h.order('wechat_native');
    await act(o, 'fail', await h.create(o));
    await new Promise((r) => setTimeout(r, 100));
    expect(h.paymentNotifies(o.orderNo)).toHaveLength(0);
    expect(await wechatpay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'closed' });
    await expect(act(o, 'pay')).rejects.toThrow(/PAYERROR/);
    // PAYERROR can still be closed (the gateway closes failed attempts).
    await expect(wechatpay.closePayment(h.cred, o.orderNo)).resolves.toBeUndefined();
  });

  it('cancel changes nothing', async () => {
    const o = h.order('wechat_jsapi');
    await act(o, 'cancel', await h.create(o));
    expect(await wechatpay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'pending' });
  });
});

describe('payer pages in a browser', () => {
  const post = (fields: Record<string, string>) => fetch(`${h.base}/sandbox/wechatpay/payer/action`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields), redirect: 'manual',
  });

  it('H5: pay redirects (303) to redirect_url, as WeChat does; cancel too', async () => {
    const o = h.order('wechat_h5');
    const html = await (await fetch(pageUrlOf(h.base, await h.create(o)))).text();
    expect(fieldOf(html, 'redirect_url')).toBe(o.returnUrl);
    const res = await post({ token: fieldOf(html, 'token'), redirect_url: fieldOf(html, 'redirect_url'), action: 'pay', notify_mode: 'normal' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(o.returnUrl);
    expect(h.paymentNotifies(o.orderNo)).toHaveLength(1);

    const c = h.order('wechat_h5');
    const page = await (await fetch(pageUrlOf(h.base, await h.create(c)))).text();
    const cancel = await post({ token: fieldOf(page, 'token'), redirect_url: c.returnUrl, action: 'cancel' });
    expect(cancel.headers.get('location')).toBe(c.returnUrl);
  });

  it('H5: a redirect_url off the merchant\'s domain is refused', async () => {
    const o = h.order('wechat_h5');
    const action = await h.create(o);
    const url = (action.type === 'redirect' ? action.url : '').replace(/redirect_url=.*$/, `redirect_url=${encodeURIComponent('https://evil.example/x')}`);
    const res = await fetch(url);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('data-error-code="INVALID_REDIRECT"');
  });

  it('JSAPI: the stand-in verifies paySign, then returns to return_url with err_msg', async () => {
    const o = h.order('wechat_jsapi');
    const action = await h.create(o);
    if (action.type !== 'jsapi') throw new Error('expected jsapi');
    const forged = await fetch(sandboxJsapiUrl(h.base, { ...action.params, package: `${action.params.package}x` }));
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('data-error-code="SIGN_ERROR"');
    const page = await fetch(sandboxJsapiUrl(h.base, action.params, o.returnUrl));
    expect(page.status).toBe(200);
    const html = await page.text();
    const res = await post({ token: fieldOf(html, 'token'), return_url: fieldOf(html, 'return_url'), action: 'pay', notify_mode: 'drop' });
    expect(res.headers.get('location')).toBe(`${o.returnUrl}?err_msg=${encodeURIComponent('get_brand_wcpay_request:ok')}`);
    expect(await wechatpay.queryPayment(h.cred, o.orderNo)).toMatchObject({ status: 'succeeded' });
  });

  it('the scan link the cashier shows opens the scan page', async () => {
    const o = h.order('wechat_native');
    const action = await h.create(o);
    if (action.type !== 'qr') throw new Error('expected qr');
    const res = await fetch(sandboxScanUrl(h.base, action.codeUrl));
    expect(await res.text()).toContain('data-sandbox-mode="scan"');
    const bad = await fetch(sandboxScanUrl(h.base, 'weixin://wxpay/bizpayurl?pr=AAAAAAAAAAAAAAAAAAAA'));
    expect(bad.status).toBe(404);
  });
});

describe('notify modes and retries', () => {
  it('duplicate sends the same notify twice (same id); drop sends none', async () => {
    const dup = h.order('wechat_native');
    await act(dup, 'pay', await h.create(dup), 'duplicate');
    const twice = h.paymentNotifies(dup.orderNo);
    expect(twice).toHaveLength(2);
    expect(twice[0]!.notifyId).toBe(twice[1]!.notifyId);

    const dropped = h.order('wechat_native');
    await act(dropped, 'pay', await h.create(dropped), 'drop');
    await new Promise((r) => setTimeout(r, 150));
    expect(h.paymentNotifies(dropped.orderNo)).toHaveLength(0);
    expect(await wechatpay.queryPayment(h.cred, dropped.orderNo)).toMatchObject({ status: 'succeeded' });
  });

  it('delay:1 notifies about a second later', async () => {
    const o = h.order('wechat_h5');
    const action = await h.create(o);
    const started = Date.now();
    await act(o, 'pay', action, 'delay:1');
    expect(h.paymentNotifies(o.orderNo)).toHaveLength(0);
    await waitFor(() => h.paymentNotifies(o.orderNo)[0]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('a notify answered non-2xx is retried later on a timer; act() still resolves', async () => {
    const refusing = { ...h.order('wechat_native'), notifyUrl: `${h.base}/notify/wechatpay/0000000000` }; // unknown merchant: 500 FAIL
    const before = scheduledNotifyCount();
    await act(refusing, 'pay', await h.create(refusing));
    expect(scheduledNotifyCount()).toBe(before + 1);
  });

  it('act() without the action opens the page itself', async () => {
    const o = h.order('wechat_native');
    await h.create(o);
    await act(o, 'pay');
    expect(h.paymentNotifies(o.orderNo)).toHaveLength(1);
    await expect(act(h.order('wechat_native'), 'pay')).rejects.toThrow(/ORDER_NOT_EXIST/);
  });
});

describe('platform certificate serial mode', () => {
  it('a merchant whose answers and notifies carry a certificate serial works end to end', async () => {
    const m = await h.provision({ verification: 'platform_certificate' });
    expect(m.raw.wechatpay_public_key).toBeUndefined();
    expect(m.raw.platform_certificates[0].serial_no).toMatch(/^[0-9A-F]{40}$/);
    const o = h.order('wechat_native', 500, m);
    const action = await h.create(o, m);
    await h.pay(o, action, m);
    expect(h.paymentNotifies(o.orderNo)).toEqual([expect.objectContaining({ status: 'succeeded', amount: 500, merchantId: m.raw.mchid })]);
    expect(await wechatpay.queryPayment(m.cred, o.orderNo)).toMatchObject({ status: 'succeeded' });
    // The other merchant's credentials do not know this serial.
    await expect(wechatpay.queryPayment({ ...h.cred, mchid: m.cred.mchid, serialNo: m.cred.serialNo, privateKey: m.cred.privateKey }, o.orderNo))
      .rejects.toMatchObject({ name: 'SignatureError' });
  });
});
