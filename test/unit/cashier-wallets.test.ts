import { describe, expect, it } from 'vitest';
import { channelsFor, environmentOf, walletsFor } from '../../server/checkout/service.ts';
import type { ChannelCode } from '../../server/channels/types.ts';
import type { PaymentRow } from '../../server/payments/repo.ts';

const payment = (channel: ChannelCode | null = null) => ({ channel, currency: 'CNY' }) as PaymentRow;
const WECHAT = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN';
const ALIPAY = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Ariver/1.1.0 AliApp(AP/10.5.30.8000) Nebula WK RVKType(0) AlipayDefined(nt:WIFI,ws:390|844|3.0) AlipayClient/10.5.30.8000 Language/zh-Hans Region/CN NebulaX/1.0.0';

describe('which wallet pays a scanned checkout URL (聚合码)', () => {
  it('the in-app browsers are told apart by their user agents', () => {
    expect(environmentOf(WECHAT)).toBe('wechat');
    expect(environmentOf(ALIPAY)).toBe('alipay');
  });

  it('inside WeChat only WeChat Pay JSAPI, inside Alipay only Alipay WAP', () => {
    expect(channelsFor(payment(), 'wechat')).toEqual(['wechat_jsapi']);
    expect(channelsFor(payment(), 'alipay')).toEqual(['alipay_wap']);
  });

  it('a payment for one channel is not offered inside the other wallet, which would not open it', () => {
    expect(channelsFor(payment('alipay_wap'), 'wechat')).toEqual([]);
    expect(channelsFor(payment('alipay_qr'), 'wechat')).toEqual([]);
    expect(channelsFor(payment('wechat_jsapi'), 'alipay')).toEqual([]);
    expect(channelsFor(payment('wechat_h5'), 'alipay')).toEqual([]);
    // Elsewhere a payment for one channel still offers it.
    expect(channelsFor(payment('alipay_wap'), 'alipay')).toEqual(['alipay_wap']);
    expect(channelsFor(payment('alipay_wap'), 'mobile')).toEqual(['alipay_wap']);
    expect(channelsFor(payment('wechat_jsapi'), 'wechat')).toEqual(['wechat_jsapi']);
  });

  it('the aggregate QR code is for the wallets whose in-app channel the payment can use', () => {
    expect(walletsFor(payment())).toEqual(['wechat', 'alipay']);
    expect(walletsFor(payment('wechat_jsapi'))).toEqual(['wechat']);
    expect(walletsFor(payment('alipay_wap'))).toEqual(['alipay']);
    for (const code of ['alipay_pc', 'alipay_qr', 'wechat_native', 'wechat_h5'] as const) expect(walletsFor(payment(code)), code).toEqual([]);
  });
});
