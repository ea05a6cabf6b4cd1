/**
 * WeChat Pay wire shapes ↔ ours: money (fen, integers only), RFC 3339 Beijing times, the status
 * switches, request bodies, and the decrypted notify plaintexts (shapes from the v3 docs).
 */
import { describe, expect, it } from 'vitest';
import { MalformedMessageError } from '../../server/errors.ts';
import {
  PAY_PATH, cleanDescription, fen, normalizeClientIp, notificationOf, parseRfc3339, payRequestBody, paymentStatusOf, queryResultOf,
  refundRequestBody, refundResultOf, refundStatusOf, rfc3339Beijing, type NotifyEnvelope,
} from '../../server/channels/wechatpay/transform.ts';
import type { ChannelOrder } from '../../server/channels/types.ts';

describe('money and time', () => {
  it('fen passes positive integers and throws on anything else', () => {
    expect(fen(1)).toBe(1);
    expect(fen(10_000_000_000)).toBe(10_000_000_000);
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 60]) expect(() => fen(bad)).toThrow(RangeError);
  });

  it('writes RFC 3339 in +08:00 and reads any offset', () => {
    expect(rfc3339Beijing(Date.UTC(2026, 2, 1, 2, 0, 0) / 1000)).toBe('2026-03-01T10:00:00+08:00');
    expect(rfc3339Beijing(Date.UTC(2025, 11, 31, 16, 30, 5) / 1000)).toBe('2026-01-01T00:30:05+08:00');
    expect(parseRfc3339('2026-03-01T10:00:00+08:00')).toBe(Date.UTC(2026, 2, 1, 2) / 1000);
    expect(parseRfc3339('2026-03-01T02:00:00Z')).toBe(Date.UTC(2026, 2, 1, 2) / 1000);
    expect(parseRfc3339('2026-03-01T02:00:00.123-01:30')).toBe(Date.UTC(2026, 2, 1, 3, 30) / 1000);
    for (const bad of ['2026-02-30T10:00:00+08:00', '2026-03-01 10:00:00', '2026-03-01T10:00:00', '2026-13-01T10:00:00+08:00']) expect(() => parseRfc3339(bad)).toThrow(RangeError);
  });

  it('cuts description at 127 UTF-8 bytes, on a character boundary', () => {
    const chinese = '测'.repeat(50); // 150 bytes
    expect(Buffer.byteLength(cleanDescription(chinese))).toBe(126);
    expect(cleanDescription('a'.repeat(200))).toHaveLength(127);
    expect(cleanDescription('  two\n lines ')).toBe('two lines');
  });

  it('unwraps IPv4-mapped IPv6 and refuses what is not an IP', () => {
    expect(normalizeClientIp('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(normalizeClientIp('2001:db8::1')).toBe('2001:db8::1');
    expect(normalizeClientIp('localhost')).toBeUndefined();
    expect(normalizeClientIp(null)).toBeUndefined();
  });
});

describe('status switches', () => {
  it.each([
    ['SUCCESS', 'succeeded'], ['REFUND', 'succeeded'], ['CLOSED', 'closed'], ['REVOKED', 'closed'], ['PAYERROR', 'closed'],
    ['NOTPAY', 'pending'], ['USERPAYING', 'pending'], ['SOMETHING_NEW', 'pending'], [undefined, 'pending'],
  ] as const)('trade_state %s → %s', (state, ours) => {
    expect(paymentStatusOf(state)).toBe(ours);
  });

  it.each([
    ['SUCCESS', 'succeeded'], ['CLOSED', 'failed'], ['ABNORMAL', 'failed'], ['PROCESSING', 'pending'], ['NEW_STATUS', 'pending'],
  ] as const)('refund status %s → %s', (status, ours) => {
    expect(refundStatusOf(status)).toBe(ours);
  });
});

describe('requests', () => {
  const order: ChannelOrder = {
    channel: 'wechat_native', orderNo: 'cs0123456789', amount: 1234, currency: 'CNY', subject: 'Widget 小部件', expiresAt: Date.UTC(2026, 2, 1, 2) / 1000,
    notifyUrl: 'https://gw.example/notify/wechatpay/app_1', returnUrl: 'https://gw.example/pay/t/return',
  };
  const ids = { appid: 'wx8888888888888888', mchid: '1900000109' };

  it('native: appid, mchid, description, out_trade_no, time_expire, notify_url, amount; no attach', () => {
    expect(payRequestBody(ids, { ...order, channel: 'wechat_native' })).toEqual({
      ...ids, description: 'Widget 小部件', out_trade_no: 'cs0123456789', time_expire: '2026-03-01T10:00:00+08:00',
      notify_url: order.notifyUrl, amount: { total: 1234, currency: 'CNY' },
    });
  });

  it('h5 adds scene_info; jsapi adds payer', () => {
    expect(payRequestBody(ids, { ...order, channel: 'wechat_h5' }, { clientIp: '203.0.113.7' }).scene_info).toEqual({ payer_client_ip: '203.0.113.7', h5_info: { type: 'Wap' } });
    expect(payRequestBody(ids, { ...order, channel: 'wechat_jsapi' }, { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }).payer).toEqual({ openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' });
  });

  it('app: native\'s body under the mobile app\'s AppID, to /v3/pay/transactions/app, without payer or scene_info', () => {
    const appIds = { appid: 'wx1234567890abcdef', mchid: '1900000109' };
    expect(payRequestBody(appIds, { ...order, channel: 'wechat_app' })).toEqual({
      ...appIds, description: 'Widget 小部件', out_trade_no: 'cs0123456789', time_expire: '2026-03-01T10:00:00+08:00',
      notify_url: order.notifyUrl, amount: { total: 1234, currency: 'CNY' },
    });
    expect(PAY_PATH.wechat_app).toBe('/v3/pay/transactions/app');
  });

  it('a fractional amount throws before anything is sent', () => {
    expect(() => payRequestBody(ids, { ...order, channel: 'wechat_native', amount: 12.5 })).toThrow(RangeError);
  });

  it('refund: out_refund_no, amount {refund, total, currency}, reason when given', () => {
    expect(refundRequestBody({ orderNo: 'cs1', refundNo: 're_1', amount: 100, totalAmount: 1234, currency: 'CNY', reason: '', notifyUrl: 'https://gw/n' })).toEqual({
      out_trade_no: 'cs1', out_refund_no: 're_1', notify_url: 'https://gw/n', amount: { refund: 100, total: 1234, currency: 'CNY' },
    });
    expect(refundRequestBody({ orderNo: 'cs1', refundNo: 're_1', amount: 100, totalAmount: 1234, currency: 'CNY', reason: '商品已售完', notifyUrl: 'https://gw/n' }).reason).toBe('商品已售完');
  });
});

describe('answers', () => {
  it('a paid query answer', () => {
    expect(queryResultOf({
      appid: 'wx8888888888888888', mchid: '1900000109', out_trade_no: 'cs1', transaction_id: '4200000985202103031441826014',
      trade_state: 'SUCCESS', success_time: '2021-03-03T14:41:30+08:00', amount: { total: 1, payer_total: 1, currency: 'CNY' },
    })).toEqual({ status: 'succeeded', channelTradeNo: '4200000985202103031441826014', amount: 1, paidAt: Date.UTC(2021, 2, 3, 6, 41, 30) / 1000 });
  });

  it('refund answers: PROCESSING pending, ABNORMAL failed with a reason', () => {
    expect(refundResultOf({ refund_id: '50000000382019052709732678859', status: 'PROCESSING' })).toEqual({ status: 'pending', channelRefundNo: '50000000382019052709732678859' });
    expect(refundResultOf({ status: 'ABNORMAL' })).toMatchObject({ status: 'failed', failureMessage: expect.stringContaining('ABNORMAL') });
  });
});

describe('notify plaintexts', () => {
  const envelope = (event_type: string, original_type = event_type.startsWith('REFUND') ? 'refund' : 'transaction'): NotifyEnvelope => ({
    id: 'EV-2018022511223320873', event_type, resource: { original_type, algorithm: 'AEAD_AES_256_GCM', ciphertext: 'x', nonce: 'n' },
  });
  // The documented payment notify plaintext (支付成功结果通知), trimmed.
  const tx = {
    appid: 'wxd678efh567hg6787', mchid: '1230000109', out_trade_no: '1217752501201407033233368018', transaction_id: '1217752501201407033233368018',
    trade_type: 'NATIVE', trade_state: 'SUCCESS', trade_state_desc: '支付成功', success_time: '2018-06-08T10:34:56+08:00',
    payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }, amount: { total: 100, payer_total: 100, currency: 'CNY', payer_currency: 'CNY' },
  };
  const refund = {
    mchid: '1900000100', out_trade_no: '20150806125346', transaction_id: '1008450740201411110005820873', out_refund_no: '7752501201407033233368018',
    refund_id: '50200207182018070300011301001', refund_status: 'SUCCESS', success_time: '2018-06-08T10:34:56+08:00',
    user_received_account: '招商银行信用卡0403', amount: { total: 999, refund: 999, payer_total: 999, payer_refund: 999 },
  };

  it('TRANSACTION.SUCCESS → a payment notification', () => {
    expect(notificationOf(envelope('TRANSACTION.SUCCESS'), tx)).toEqual({
      kind: 'payment', orderNo: tx.out_trade_no, channelTradeNo: tx.transaction_id, status: 'succeeded', amount: 100, currency: 'CNY',
      appId: tx.appid, merchantId: tx.mchid, paidAt: Date.UTC(2018, 5, 8, 2, 34, 56) / 1000, notifyId: 'EV-2018022511223320873',
    });
  });

  it('REFUND.SUCCESS / ABNORMAL / CLOSED → a refund notification with this refund\'s amount', () => {
    expect(notificationOf(envelope('REFUND.SUCCESS'), refund)).toEqual({
      kind: 'refund', orderNo: refund.out_trade_no, refundNo: refund.out_refund_no, channelRefundNo: refund.refund_id, status: 'succeeded',
      amount: 999, merchantId: refund.mchid, notifyId: 'EV-2018022511223320873',
    });
    expect(notificationOf(envelope('REFUND.ABNORMAL'), { ...refund, refund_status: 'ABNORMAL' })).toMatchObject({ status: 'failed' });
    expect(notificationOf(envelope('REFUND.CLOSED'), { ...refund, refund_status: 'CLOSED' })).toMatchObject({ status: 'failed' });
  });

  it('refuses contradictions, wrong resource types, unknown events and missing fields', () => {
    expect(() => notificationOf(envelope('REFUND.SUCCESS'), { ...refund, refund_status: 'ABNORMAL' })).toThrow(MalformedMessageError);
    expect(() => notificationOf(envelope('TRANSACTION.SUCCESS', 'refund'), tx)).toThrow(MalformedMessageError);
    expect(() => notificationOf(envelope('PAYSCORE.USER_OPEN_SERVICE'), tx)).toThrow(/event_type/);
    expect(() => notificationOf(envelope('TRANSACTION.SUCCESS'), { ...tx, amount: { total: 1.5 } })).toThrow(/amount.total/);
    expect(() => notificationOf(envelope('TRANSACTION.SUCCESS'), { ...tx, appid: undefined })).toThrow(/appid/);
  });
});
