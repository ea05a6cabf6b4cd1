import { describe, expect, it } from 'vitest';
import { ChannelRequestError } from '../../server/errors.ts';
import {
  PAYPAL_CURRENCIES, approveLinkOf, captureStatusOf, createOrderBody, minorUnitsOf, orderResultOf, orderStatusOf, paypalValue, refundBody, refundStatusOf,
} from '../../server/channels/paypal/transform.ts';
import { paypal } from '../../server/channels/paypal/index.ts';

describe('paypal transform: money', () => {
  it('formats two-decimal currencies from minor units', () => {
    expect(paypalValue(1234, 'USD')).toBe('12.34');
    expect(paypalValue(5, 'EUR')).toBe('0.05');
    expect(paypalValue(100, 'HKD')).toBe('1.00');
  });

  it('JPY is zero-decimal in ISO and at PayPal: whole yen', () => {
    expect(paypalValue(1000, 'JPY')).toBe('1000');
    expect(minorUnitsOf('1000', 'JPY')).toBe(1000);
  });

  it('HUF and TWD have two ISO decimals but none at PayPal: whole units pass, fractions are refused naming the currency', () => {
    expect(paypalValue(12300, 'HUF')).toBe('123');
    expect(paypalValue(100, 'TWD')).toBe('1');
    expect(() => paypalValue(12345, 'HUF')).toThrow(ChannelRequestError);
    expect(() => paypalValue(150, 'TWD')).toThrow(/TWD in whole units/);
    expect(minorUnitsOf('123', 'HUF')).toBe(12300);
  });

  it('a non-integer or non-positive amount is a bug: RangeError', () => {
    expect(() => paypalValue(12.5, 'USD')).toThrow(RangeError);
    expect(() => paypalValue(0, 'USD')).toThrow(RangeError);
  });

  it('parses PayPal value strings strictly', () => {
    expect(minorUnitsOf('12.34', 'USD')).toBe(1234);
    expect(minorUnitsOf('12.3', 'USD')).toBe(1230);
    expect(minorUnitsOf('12', 'USD')).toBe(1200);
    expect(minorUnitsOf('12.345', 'USD')).toBeUndefined();
    expect(minorUnitsOf('-1.00', 'USD')).toBeUndefined();
    expect(minorUnitsOf(12.34, 'USD')).toBeUndefined();
    expect(minorUnitsOf('1e3', 'USD')).toBeUndefined();
  });

  it('declares ISO codes only and not CNY/BRL/MYR (in-country accounts only)', () => {
    for (const c of PAYPAL_CURRENCIES) expect(c).toMatch(/^[A-Z]{3}$/);
    expect(paypal.currencies).not.toContain('CNY');
    expect(paypal.currencies).toEqual(expect.arrayContaining(['USD', 'EUR', 'HKD', 'JPY', 'HUF', 'TWD']));
  });
});

describe('paypal transform: statuses (one switch each, default pending)', () => {
  it('order statuses: only VOIDED is final; COMPLETED is decided by the capture', () => {
    for (const s of ['CREATED', 'SAVED', 'PAYER_ACTION_REQUIRED', 'APPROVED', 'COMPLETED', 'SOMETHING_NEW', undefined]) expect(orderStatusOf(s)).toBe('pending');
    expect(orderStatusOf('VOIDED')).toBe('closed');
  });

  it('capture statuses', () => {
    expect(captureStatusOf('COMPLETED')).toBe('succeeded');
    expect(captureStatusOf('PARTIALLY_REFUNDED')).toBe('succeeded');
    expect(captureStatusOf('REFUNDED')).toBe('succeeded');
    expect(captureStatusOf('DECLINED')).toBe('closed');
    expect(captureStatusOf('FAILED')).toBe('closed');
    expect(captureStatusOf('PENDING')).toBe('pending');
    expect(captureStatusOf('NEW_STATUS')).toBe('pending');
  });

  it('refund statuses', () => {
    expect(refundStatusOf('COMPLETED')).toBe('succeeded');
    expect(refundStatusOf('FAILED')).toBe('failed');
    expect(refundStatusOf('CANCELLED')).toBe('failed');
    expect(refundStatusOf('PENDING')).toBe('pending');
    expect(refundStatusOf('X')).toBe('pending');
  });

  it('an order COMPLETED with a declined or pending capture is not paid', () => {
    const order = (status: string) => ({ status: 'COMPLETED', purchase_units: [{ payments: { captures: [{ id: 'CAP1', status, amount: { currency_code: 'USD', value: '12.00' } }] } }] });
    expect(orderResultOf(order('DECLINED')).status).toBe('closed');
    expect(orderResultOf(order('PENDING')).status).toBe('pending');
    expect(orderResultOf(order('COMPLETED'))).toMatchObject({ status: 'succeeded', channelTradeNo: 'CAP1', amount: 1200 });
    expect(() => orderResultOf(order('COMPLETED'), { currency: 'EUR' })).toThrow(/is in USD, the payment in EUR/);
    expect(orderResultOf({ status: 'COMPLETED' }).status).toBe('pending');
  });
});

describe('paypal transform: requests', () => {
  const order = {
    channel: 'paypal' as const, orderNo: 'csABC123', amount: 1500, currency: 'USD', subject: `  A  long\nsubject ${'x'.repeat(200)}`, expiresAt: 0,
    notifyUrl: 'https://gw.example/notify/paypal/app_1', returnUrl: 'https://gw.example/pay/tok/return',
  };
  it('builds the create body: intent CAPTURE, experience_context return/cancel URLs with out_trade_no, invoice_id per attempt, description cut to 127', () => {
    const body = createOrderBody(order) as any;
    expect(body.intent).toBe('CAPTURE');
    const unit = body.purchase_units[0];
    expect(unit).toMatchObject({ invoice_id: 'csABC123', custom_id: 'csABC123', amount: { currency_code: 'USD', value: '15.00' } });
    expect([...unit.description].length).toBe(127);
    expect(unit.description.startsWith('A long subject')).toBe(true);
    const ctx = body.payment_source.paypal.experience_context;
    expect(ctx.return_url).toBe('https://gw.example/pay/tok/return?out_trade_no=csABC123');
    expect(ctx.cancel_url).toBe('https://gw.example/pay/tok/return?out_trade_no=csABC123&cancel=1');
    expect(body.application_context).toBeUndefined();
  });

  it('refund body carries the amount and our refund number in custom_id', () => {
    expect(refundBody({ refundNo: 're_1', amount: 500, currency: 'JPY', reason: 'r' })).toEqual({ amount: { currency_code: 'JPY', value: '500' }, custom_id: 're_1', note_to_payer: 'r' });
  });

  it('takes the payer-action or approve link, never builds one', () => {
    expect(approveLinkOf({ links: [{ rel: 'self', href: 'https://x/self' }, { rel: 'payer-action', href: 'https://x/checkoutnow?token=1' }] })).toBe('https://x/checkoutnow?token=1');
    expect(approveLinkOf({ links: [{ rel: 'approve', href: 'https://x/a' }] })).toBe('https://x/a');
    expect(approveLinkOf({ links: [{ rel: 'self', href: 'https://x/self' }] })).toBeUndefined();
  });
});

describe('paypal credentials', () => {
  const ok = { client_id: 'AbcdEfgh123', client_secret: 'EsecretSecret1', webhook_id: 'WH12345' };
  it('parses and never prints the secret', () => {
    const c = paypal.parseCredentials(ok);
    expect(c.baseUrl).toBe('https://api-m.paypal.com');
    expect(c.certRule).toEqual({ kind: 'paypal' });
    expect(JSON.stringify(c)).not.toContain('EsecretSecret1');
    expect(String(c.clientSecret)).toBe('[redacted]');
  });
  it('names the bad field', () => {
    expect(() => paypal.parseCredentials({ ...ok, webhook_id: undefined })).toThrow(/webhook_id/);
    expect(() => paypal.parseCredentials({ ...ok, client_secret: 'x' })).toThrow(/client_secret/);
    expect(() => paypal.parseCredentials({ ...ok, base_url: 'ftp://x' })).toThrow(/base_url/);
    expect(() => paypal.parseCredentials({ ...ok, base_url: 'http://api-m.paypal.com' })).toThrow(/https/);
  });
  it('a simulator base URL allows certificates from that origin and path only', () => {
    expect(paypal.parseCredentials({ ...ok, base_url: 'http://127.0.0.1:3000/sandbox/paypal' }).certRule).toEqual({ kind: 'origin', origin: 'http://127.0.0.1:3000', pathPrefix: '/sandbox/paypal/' });
  });
});
