import { describe, expect, it } from 'vitest';
import {
  beijingTime, fenOf, notificationOf, parseBeijingTime, paymentStatusOf, refundIdOf, refundOrderIdOf, refundStatusOf, txnAmtOf,
} from '../../server/channels/unionpay/transform.ts';
import { MalformedMessageError } from '../../server/errors.ts';

describe('time and money', () => {
  it('txnTime is Beijing time whatever the server zone', () => {
    expect(beijingTime(Date.UTC(2026, 0, 1, 16, 30, 5) / 1000)).toBe('20260102003005');
    expect(parseBeijingTime('20260102003005')).toBe(Date.UTC(2026, 0, 1, 16, 30, 5) / 1000);
    expect(() => parseBeijingTime('20260230120000')).toThrow(RangeError);
    expect(() => parseBeijingTime('2026-01-02 00:30')).toThrow(RangeError);
  });
  it('txnAmt is integer fen', () => {
    expect(txnAmtOf(1234)).toBe('1234');
    expect(() => txnAmtOf(12.5)).toThrow(RangeError);
    expect(() => txnAmtOf(0)).toThrow(RangeError);
    expect(fenOf('1234')).toBe(1234);
    for (const bad of ['12.34', '012', '', '-1', '1e3', undefined]) expect(() => fenOf(bad)).toThrow(RangeError);
  });
});

describe('refund orderIds', () => {
  it('drop the underscore of our refund id, the same every time, and map back', () => {
    const id = 're_0Abc12345678901234567890';
    expect(refundOrderIdOf(id)).toBe('re0Abc12345678901234567890');
    expect(refundOrderIdOf(id)).toBe(refundOrderIdOf(id));
    expect(refundOrderIdOf(id)).toMatch(/^[A-Za-z0-9]{8,40}$/);
    expect(refundIdOf(refundOrderIdOf(id))).toBe(id);
    expect(refundIdOf('cs123456789')).toBeUndefined();
    expect(() => refundOrderIdOf('pay_123456789')).toThrow(RangeError);
  });
});

describe('the status switch', () => {
  it.each([
    ['00', '00', false, 'succeeded'], ['00', 'A6', true, 'succeeded'],
    ['00', '05', true, 'pending'], ['00', '03', false, 'pending'], ['00', '04', true, 'pending'],
    ['03', undefined, true, 'pending'], ['05', undefined, true, 'pending'], ['37', undefined, true, 'pending'],
    ['34', undefined, false, 'pending'], ['34', undefined, true, 'closed'],
    ['00', '01', false, 'pending'], ['00', '01', true, 'closed'], ['00', '62', true, 'closed'],
    ['99', undefined, true, 'pending'], ['00', undefined, true, 'pending'], [undefined, undefined, true, 'pending'],
  ] as const)('respCode %s origRespCode %s past payTimeout %s → %s', (resp, orig, final, want) => {
    expect(paymentStatusOf(resp, orig, final)).toBe(want);
  });
  it('refunds: sync 00 is accepted only; result 00/A6 succeeded; 03–05 pending; other failed', () => {
    expect(refundStatusOf('sync', '00')).toBe('pending');
    expect(refundStatusOf('result', '00')).toBe('succeeded');
    expect(refundStatusOf('result', 'A6')).toBe('succeeded');
    for (const c of ['03', '04', '05']) expect(refundStatusOf('sync', c)).toBe('pending');
    expect(refundStatusOf('sync', '35')).toBe('failed');
    expect(refundStatusOf('result', '36')).toBe('failed');
  });
});

describe('notifications', () => {
  const pay = { txnType: '01', respCode: '00', merId: '777000000000001', orderId: 'cs0123456789abcdefABCDEF01234567', queryId: '202601010000001234567', txnAmt: '1500', currencyCode: '156' };
  it('a payment notify', () => {
    expect(notificationOf(pay)).toEqual({ kind: 'payment', orderNo: pay.orderId, channelTradeNo: pay.queryId, amount: 1500, merchantId: pay.merId, currency: 'CNY', status: 'succeeded', notifyId: `${pay.queryId}:00` });
    expect(notificationOf({ ...pay, respCode: 'A6' })).toMatchObject({ status: 'succeeded' });
    expect(notificationOf({ ...pay, currencyCode: '840' })).toMatchObject({ currency: '840' });
  });
  it('a refund notify maps its orderId back to our refund id and reqReserved to the payment order', () => {
    const n = notificationOf({ ...pay, txnType: '04', orderId: 're0Abc12345678901234567890', reqReserved: pay.orderId, txnAmt: '500' });
    expect(n).toMatchObject({ kind: 'refund', orderNo: pay.orderId, refundNo: 're_0Abc12345678901234567890', amount: 500, status: 'succeeded' });
    expect(notificationOf({ ...pay, txnType: '04', orderId: 're0Abc12345678901234567890', reqReserved: pay.orderId, respCode: '35' })).toMatchObject({ status: 'failed' });
  });
  it('refuses missing fields, unknown txnTypes, foreign refund orderIds', () => {
    const { queryId: _q, ...noQuery } = pay;
    expect(() => notificationOf(noQuery)).toThrow(MalformedMessageError);
    expect(() => notificationOf({ ...pay, txnAmt: '15.00' })).toThrow(MalformedMessageError);
    expect(() => notificationOf({ ...pay, txnType: '31' })).toThrow(MalformedMessageError);
    expect(() => notificationOf({ ...pay, txnType: '04', reqReserved: pay.orderId })).toThrow(MalformedMessageError);
    expect(() => notificationOf({ ...pay, txnType: '04', orderId: 're0Abc12345678901234567890' })).toThrow(/reqReserved/);
  });
});
