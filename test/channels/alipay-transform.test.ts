import { describe, expect, it } from 'vitest';
import { MalformedMessageError } from '../../server/errors.ts';
import {
  beijingTime, cleanText, fenToYuan, notificationOf, parseBeijingTime, payBizContent, paymentStatusOf, queryResultOf,
  refundQueryResultOf, refundStatusOf, yuanToFen,
} from '../../server/channels/alipay/transform.ts';
import { fixture } from './fixtures/alipay/load.ts';

describe('fen ↔ yuan', () => {
  it('formats integer fen as a two-decimal yuan string', () => {
    expect(fenToYuan(1)).toBe('0.01');
    expect(fenToYuan(1234)).toBe('12.34');
    expect(fenToYuan(100)).toBe('1.00');
    expect(fenToYuan(0)).toBe('0.00');
    expect(fenToYuan(10_000_000_000)).toBe('100000000.00');
  });
  it('throws on a non-integer, negative or unsafe amount', () => {
    expect(() => fenToYuan(12.5)).toThrow(RangeError);
    expect(() => fenToYuan(-1)).toThrow(RangeError);
    expect(() => fenToYuan(Number.NaN)).toThrow(RangeError);
    expect(() => fenToYuan(2 ** 53)).toThrow(RangeError);
  });
  it('parses yuan strictly, as text', () => {
    expect(yuanToFen('12.34')).toBe(1234);
    expect(yuanToFen('0.01')).toBe(1);
    expect(yuanToFen('12.3')).toBe(1230);
    expect(yuanToFen('12')).toBe(1200);
    expect(yuanToFen('100000000.00')).toBe(10_000_000_000);
    expect(yuanToFen('0.29')).toBe(29); // 0.29 * 100 is 28.999… in floating point
    for (const bad of ['', '1.234', '-1.00', '+1', '01.00', '1e3', ' 1.00', '1.', '.5', '1,00', 'NaN']) {
      expect(() => yuanToFen(bad), bad).toThrow(RangeError);
    }
  });
});

describe('Beijing time', () => {
  it('formats unix seconds in UTC+8', () => {
    expect(beijingTime(Date.UTC(2026, 0, 31, 16, 30, 5) / 1000)).toBe('2026-02-01 00:30:05');
  });
  it('parses back, and refuses impossible dates and other formats', () => {
    expect(parseBeijingTime('2026-02-01 00:30:05')).toBe(Date.UTC(2026, 0, 31, 16, 30, 5) / 1000);
    for (const bad of ['2026-02-30 00:00:00', '2026-13-01 00:00:00', '2026-02-01T00:30:05', '2026-02-01 24:00:00']) {
      expect(() => parseBeijingTime(bad), bad).toThrow(RangeError);
    }
  });
});

describe('status switch', () => {
  it('maps Alipay trade statuses; anything unknown stays pending', () => {
    expect(paymentStatusOf('WAIT_BUYER_PAY')).toBe('pending');
    expect(paymentStatusOf('TRADE_SUCCESS')).toBe('succeeded');
    expect(paymentStatusOf('TRADE_FINISHED')).toBe('succeeded');
    expect(paymentStatusOf('TRADE_CLOSED')).toBe('closed');
    expect(paymentStatusOf('TRADE_PENDING')).toBe('pending');
    expect(paymentStatusOf(undefined)).toBe('pending');
  });
  it('maps refund query answers; nothing found is not a failure', () => {
    expect(refundStatusOf('REFUND_SUCCESS', '1.00')).toBe('succeeded');
    expect(refundStatusOf(undefined, '1.00')).toBe('succeeded');
    expect(refundStatusOf(undefined, undefined)).toBe('pending');
    expect(refundStatusOf('SOMETHING_NEW', '1.00')).toBe('pending');
    expect(refundQueryResultOf({ code: '10000', msg: 'Success', refund_status: 'REFUND_SUCCESS', refund_amount: '1.00' })).toEqual({ status: 'succeeded' });
  });
  it('reads a query answer', () => {
    expect(queryResultOf({ code: '10000', msg: 'Success', trade_status: 'TRADE_SUCCESS', trade_no: 't1', total_amount: '12.34', send_pay_date: '2026-02-01 00:30:05' }))
      .toEqual({ status: 'succeeded', channelTradeNo: 't1', amount: 1234, paidAt: Date.UTC(2026, 0, 31, 16, 30, 5) / 1000 });
  });
});

describe('requests', () => {
  const order = { orderNo: 'att_1', amount: 1234, currency: 'CNY', subject: 'A/B=C&D  shirt', expiresAt: Date.UTC(2026, 0, 31, 16, 0, 0) / 1000, notifyUrl: 'n', returnUrl: 'r', quitUrl: 'https://gw/q' };
  it('builds biz_content per channel, cleaning the subject of characters Alipay refuses', () => {
    expect(payBizContent({ ...order, channel: 'alipay_pc' })).toEqual({
      out_trade_no: 'att_1', total_amount: '12.34', subject: 'A B C D shirt', time_expire: '2026-02-01 00:00:00', product_code: 'FAST_INSTANT_TRADE_PAY',
    });
    expect(payBizContent({ ...order, channel: 'alipay_wap' })).toMatchObject({ product_code: 'QUICK_WAP_WAY', quit_url: 'https://gw/q' });
    expect(payBizContent({ ...order, channel: 'alipay_qr' })).not.toHaveProperty('product_code');
    expect(cleanText('x'.repeat(300), 256)).toHaveLength(256);
  });
});

describe('notify → ChannelNotification', () => {
  const notify = Object.fromEntries(new URLSearchParams(fixture('notify_trade_success.txt').trim()));
  it('reads a payment notify', () => {
    expect(notificationOf(notify)).toEqual({
      kind: 'payment', orderNo: 'att_fixture_0001', appId: '2021000122671080', merchantId: '2088102177649450',
      notifyId: '2026030100222101523011431234567890', channelTradeNo: '2026030122001446871234567890', status: 'succeeded', amount: 1234,
      paidAt: parseBeijingTime('2026-03-01 10:15:08'),
    });
  });
  it('reads a refund notify (out_biz_no, cumulative refund_fee)', () => {
    expect(notificationOf({ ...notify, refund_fee: '2.00', gmt_refund: '2026-03-02 10:00:00.123', out_biz_no: 're_1' }))
      .toMatchObject({ kind: 'refund', orderNo: 'att_fixture_0001', refundNo: 're_1', status: 'succeeded', amount: 200 });
  });
  it('refuses missing fields, bad amounts and other notify types', () => {
    const { trade_no: _t, ...noTradeNo } = notify;
    expect(() => notificationOf(noTradeNo)).toThrow(MalformedMessageError);
    expect(() => notificationOf({ ...notify, total_amount: '12.345' })).toThrow(MalformedMessageError);
    expect(() => notificationOf({ ...notify, notify_type: 'trade_refund_sync' })).toThrow(MalformedMessageError);
    expect(() => notificationOf({ ...notify, refund_fee: '1.00' })).toThrow(MalformedMessageError);
  });
});
