import { describe, expect, it } from 'vitest';
import { acceptMessage, embedUrl, httpUrl, resolveMode } from '../../widget/protocol.ts';

const DESKTOP = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
const WECHAT = 'Mozilla/5.0 (Linux; Android 13; V2148A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64';
const ALIPAY_IPAD = 'Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 AlipayClient/10.5.36.6000 Language/zh-Hans';
const ANDROID_WEBVIEW = 'Mozilla/5.0 (Linux; Android 14; Pixel 8; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.0.0 Safari/537.36';

describe('widget protocol', () => {
  it('auto mode opens a modal on desktops and redirects on phones, tablets and in WebViews', () => {
    expect(resolveMode('auto', DESKTOP)).toBe('modal');
    expect(resolveMode(undefined, DESKTOP)).toBe('modal');
    expect(resolveMode('bogus', DESKTOP)).toBe('modal');
    for (const ua of [IPHONE, WECHAT, ALIPAY_IPAD, ANDROID_WEBVIEW]) expect(resolveMode('auto', ua)).toBe('redirect');
    expect(resolveMode('modal', IPHONE)).toBe('modal');
    expect(resolveMode('redirect', DESKTOP)).toBe('redirect');
  });

  it('builds the iframe URL exactly as the cashier expects', () => {
    expect(embedUrl('https://pay.example/pay/abc', 'https://shop.example')).toBe('https://pay.example/pay/abc?embed=1&parent_origin=https%3A%2F%2Fshop.example');
    expect(embedUrl('https://pay.example/pay/abc?lang=en', 'http://127.0.0.1:4000')).toBe('https://pay.example/pay/abc?lang=en&embed=1&parent_origin=http%3A%2F%2F127.0.0.1%3A4000');
  });

  it('accepts only absolute http(s) checkout URLs', () => {
    expect(httpUrl('https://pay.example/pay/abc')?.origin).toBe('https://pay.example');
    for (const bad of ['javascript:alert(1)', 'data:text/html,hi', '/pay/abc', '', null, undefined]) expect(httpUrl(bad)).toBeUndefined();
  });

  it('accepts a message only from the framed cashier: exact origin, that very window, source checkstand', () => {
    const frame = {};
    const msg = { source: 'checkstand', type: 'success', paymentId: 'pay_1' };
    const origin = 'https://pay.example';
    expect(acceptMessage({ origin, source: frame, data: msg }, origin, frame)).toEqual(msg);
    expect(acceptMessage({ origin: 'https://evil.example', source: frame, data: msg }, origin, frame)).toBeUndefined();
    expect(acceptMessage({ origin: 'https://pay.example:8443', source: frame, data: msg }, origin, frame)).toBeUndefined();
    expect(acceptMessage({ origin, source: {}, data: msg }, origin, frame)).toBeUndefined();
    expect(acceptMessage({ origin, source: null, data: msg }, origin, null)).toBeUndefined();
    expect(acceptMessage({ origin, source: frame, data: { ...msg, source: 'other' } }, origin, frame)).toBeUndefined();
    expect(acceptMessage({ origin, source: frame, data: 'checkstand' }, origin, frame)).toBeUndefined();
    expect(acceptMessage({ origin, source: frame, data: null }, origin, frame)).toBeUndefined();
    // A closed widget listens to nobody.
    expect(acceptMessage({ origin: '', source: frame, data: msg }, '', frame)).toBeUndefined();
  });
});
