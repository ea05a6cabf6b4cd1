/**
 * The simulators send payers and notifies only to the gateway's own URLs (sandbox/gateway-urls.ts):
 * every redirect or link target they take from a request, and every notify_url. /sandbox is
 * mounted in live deployments too, so anything else is an open redirect on the gateway's origin
 * or a way to make the gateway POST anywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alipay } from '../../server/channels/alipay/index.ts';
import { exchangeOAuthCode, oauthAuthorizeUrl, wechatpay } from '../../server/channels/wechatpay/index.ts';
import { sandboxJsapiUrl } from '../../server/sandbox/wechatpay/index.ts';
import { isCashierUrl, isNotifyUrl } from '../../server/sandbox/gateway-urls.ts';
import { startAlipayHarness, type AlipayHarness } from './alipay-harness.ts';
import { pageUrlOf, startWechatpayHarness, type WechatpayHarness } from './wechatpay-harness.ts';

let wx: WechatpayHarness;
let ali: AlipayHarness;
beforeAll(async () => {
  [wx, ali] = await Promise.all([startWechatpayHarness(), startAlipayHarness()]);
});
afterAll(async () => {
  await Promise.all([wx?.stop(), ali?.stop()]);
});

/** Targets off the gateway, or on it but not a cashier page: each must be refused. */
const foreign = (base: string, landing: string) => {
  const host = new URL(base).host;
  return [
    'http://evil.example/steal',
    'https://evil.example/pay/abc/authorized',
    `http://${host}.evil.example/pay/abc/${landing}`,
    `http://evil.example@${host}/pay/abc/${landing}`,
    `http://user@${host}/pay/abc/${landing}`,
    `${base}/console/login`,
    `${base}/sandbox/wechatpay/scan`,
    `${base}/pay/abc/${landing}/../../../console`,
    `${base}/pay/a%2Fb/${landing}`,
    `${base}/pay/abc/${landing}#frag`,
    `//evil.example/pay/abc/${landing}`,
    'javascript:alert(1)',
    '',
  ];
};

describe('gateway URL rules', () => {
  const base = 'https://pay.example.com';
  it('know the cashier pages and notify URLs on PUBLIC_URL, and nothing else', () => {
    expect(isCashierUrl(base, `${base}/pay/T0k3n/authorized?channel=wechat_jsapi&lang=en`, 'authorized')).toBe(true);
    expect(isCashierUrl(base, `${base}/pay/T0k3n/return`, 'back')).toBe(true);
    expect(isCashierUrl(base, `${base}/pay/T0k3n?lang=en`, 'back')).toBe(true);
    expect(isCashierUrl(base, `${base}/pay/T0k3n/return`, 'authorized')).toBe(false);
    expect(isCashierUrl(base, `${base}/pay/T0k3n/authorized`, 'back')).toBe(false);
    for (const url of foreign(base, 'authorized')) expect(isCashierUrl(base, url, 'authorized'), url).toBe(false);
    for (const url of foreign(base, 'return')) expect(isCashierUrl(base, url, 'back'), url).toBe(false);
    // A PUBLIC_URL with a path prefix: its pages are below it, and only there.
    expect(isCashierUrl(`${base}/gw`, `${base}/gw/pay/T/return`, 'back')).toBe(true);
    expect(isCashierUrl(`${base}/gw`, `${base}/pay/T/return`, 'back')).toBe(false);

    expect(isNotifyUrl(base, `${base}/notify/alipay/app_123`, 'alipay')).toBe(true);
    expect(isNotifyUrl(base, `${base}/notify/wechatpay/app_123`, 'alipay')).toBe(false);
    expect(isNotifyUrl(base, `${base}/notify/alipay/app_123?x=1`, 'alipay')).toBe(false);
    expect(isNotifyUrl(base, 'http://169.254.169.254/notify/alipay/app_1', 'alipay')).toBe(false);
    expect(isNotifyUrl(base, `${base}/v1/payments`, 'alipay')).toBe(false);
  });
});

describe('WeChat Pay OAuth stand-in', () => {
  const authorize = (redirectUri: string) => fetch(oauthAuthorizeUrl(wx.cred, redirectUri, 'st'), { redirect: 'manual' });
  const rawAuthorize = (redirectUri: string) =>
    fetch(`${wx.raw.base_url}/connect/oauth2/authorize?appid=${wx.cred.appid}&redirect_uri=${encodeURIComponent(redirectUri)}&response_type=code&scope=snsapi_base&state=st`, { redirect: 'manual' });

  it('redirects with a code only to the cashier\'s OAuth page on PUBLIC_URL', async () => {
    for (const target of foreign(wx.base, 'authorized')) {
      const res = await rawAuthorize(target);
      expect(res.status, target).toBe(400);
      expect(res.headers.get('location'), target).toBeNull();
      expect(await res.text()).toContain('data-error-code="10003"');
    }
    const ok = await authorize(`${wx.base}/pay/T0k3n/authorized?channel=wechat_jsapi`);
    expect(ok.status).toBe(302);
    const back = new URL(ok.headers.get('location')!);
    expect(`${back.origin}${back.pathname}`).toBe(`${wx.base}/pay/T0k3n/authorized`);
    expect(back.searchParams.get('channel')).toBe('wechat_jsapi');
    expect(back.searchParams.get('state')).toBe('st');
  });

  it('a code is bound to the appid it was issued for, and used once', async () => {
    const other = await wx.provision();
    const res = await authorize(`${wx.base}/pay/T0k3n/authorized`);
    const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
    await expect(exchangeOAuthCode(other.cred, code)).rejects.toMatchObject({ name: 'ChannelRequestError', code: '40029' });
    expect(await exchangeOAuthCode(wx.cred, code)).toBe(wx.openid);
    await expect(exchangeOAuthCode(wx.cred, code)).rejects.toMatchObject({ code: '40163' });
  });
});

describe('WeChat Pay payer pages and notify_url', () => {
  const post = (fields: Record<string, string>) => fetch(`${wx.base}/sandbox/wechatpay/payer/action`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields), redirect: 'manual',
  });
  const tokenOf = (html: string) => /name="token" value="([^"]*)"/.exec(html)?.[1] ?? '';

  it('H5 redirect_url, JSAPI return_url and the payer action\'s back address must be the cashier', async () => {
    const h5 = wx.order('wechat_h5');
    const action = await wx.create(h5);
    const h5Url = action.type === 'redirect' ? action.url.replace(/&redirect_url=.*$/, '') : '';
    const jsapiOrder = wx.order('wechat_jsapi');
    const jsapi = await wx.create(jsapiOrder);
    if (jsapi.type !== 'jsapi') throw new Error('expected jsapi');
    for (const target of foreign(wx.base, 'return').filter(Boolean)) {
      const page = await fetch(`${h5Url}&redirect_url=${encodeURIComponent(target)}`);
      expect(page.status, target).toBe(400);
      expect(await page.text()).toContain('data-error-code="INVALID_REDIRECT"');
      expect((await fetch(sandboxJsapiUrl(wx.base, jsapi.params, target))).status, target).toBe(400);
    }
    const token = tokenOf(await (await fetch(pageUrlOf(wx.base, action))).text());
    for (const field of ['redirect_url', 'return_url']) {
      const res = await post({ token, action: 'cancel', [field]: `${wx.base}/console/login` });
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
    }
    const back = await post({ token, action: 'cancel', redirect_url: h5.returnUrl });
    expect(back.headers.get('location')).toBe(h5.returnUrl);
  });

  it('an order or refund whose notify_url is not the gateway\'s /notify/wechatpay/… is refused', async () => {
    for (const notifyUrl of ['http://169.254.169.254/latest/meta-data', `${wx.base}/v1/payments`, `${wx.base}/notify/alipay/x`, 'https://evil.example/notify/wechatpay/x']) {
      const o = { ...wx.order('wechat_native'), notifyUrl };
      await expect(wechatpay.createPayment(wx.cred, o), notifyUrl).rejects.toMatchObject({ message: expect.stringContaining('notify_url') });
    }
    const o = wx.order('wechat_native');
    const action = await wx.create(o);
    await wx.pay(o, action, wx, 'drop');
    await expect(wechatpay.refund(wx.cred, { orderNo: o.orderNo, refundNo: `re_${o.orderNo}`, amount: 1, totalAmount: o.amount, currency: 'CNY', reason: '', notifyUrl: 'http://127.0.0.1:1/x' }))
      .rejects.toMatchObject({ message: expect.stringContaining('notify_url') });
  });
});

describe('Alipay gateway.do', () => {
  it('a page pay whose return_url, quit_url or notify_url is not the gateway\'s shows the error page and creates no trade', async () => {
    const cases: Array<[string, Partial<ReturnType<AlipayHarness['order']>>, string]> = [
      ['alipay_pc', { returnUrl: 'https://evil.example/back' }, 'return_url'],
      ['alipay_pc', { returnUrl: `${ali.base}/console/login` }, 'return_url'],
      ['alipay_wap', { quitUrl: 'https://evil.example/quit' }, 'quit_url'],
      ['alipay_pc', { notifyUrl: 'http://169.254.169.254/latest' }, 'notify_url'],
    ];
    for (const [channel, over, field] of cases) {
      const o = { ...ali.order(channel as 'alipay_pc'), ...over };
      const created = await alipay.createPayment(ali.cred, o);
      if (!created.ok || created.action.type !== 'redirect') throw new Error('expected a redirect');
      const page = await fetch(created.action.url);
      expect(page.status, field).toBe(400);
      const html = await page.text();
      expect(html).toContain('ACQ.INVALID_PARAMETER');
      expect(html).toContain(field);
      expect(await alipay.queryPayment(ali.cred, o.orderNo)).toEqual({ status: 'not_found' });
    }
  });

  it('a precreate whose notify_url is not the gateway\'s is refused', async () => {
    const o = { ...ali.order('alipay_qr'), notifyUrl: 'http://127.0.0.1:1/internal' };
    const created = await alipay.createPayment(ali.cred, o).catch((err: Error) => ({ ok: false as const, decline: { code: 'thrown', message: err.message } }));
    expect(created.ok).toBe(false);
    if (!created.ok) expect(created.decline.message).toContain('notify_url');
  });
});
