import { describe, expect, it } from 'vitest';
import {
  STRIPE_CURRENCIES, fromStripeAmount, paymentIntentStatusOf, readEvent, refundStatusOf, sessionStatusOf, toStripeAmount, walletOf,
} from '../../server/channels/stripe/transform.ts';
import { MalformedMessageError } from '../../server/errors.ts';
import { stripe } from '../../server/channels/stripe/index.ts';

describe('amounts', () => {
  it('two-decimal currencies pass through; zero-decimal ones follow the ISO exponent', () => {
    expect(toStripeAmount(1234, 'CNY')).toBe(1234);
    expect(toStripeAmount(1234, 'USD')).toBe(1234);
    expect(toStripeAmount(500, 'JPY')).toBe(500);
    expect(toStripeAmount(15000, 'KRW')).toBe(15000);
    // MGA: ISO counts 2 decimals, Stripe whole ariary.
    expect(toStripeAmount(50000, 'MGA')).toBe(500);
    expect(fromStripeAmount(500, 'MGA')).toBe(50000);
    expect(fromStripeAmount(500, 'JPY')).toBe(500);
    expect(fromStripeAmount(1234, 'CNY')).toBe(1234);
  });
  it('an amount Stripe cannot express, or a non-integer, throws', () => {
    expect(() => toStripeAmount(50050, 'MGA')).toThrow(/multiple of 100/);
    expect(() => toStripeAmount(12.5, 'CNY')).toThrow(/integer/);
  });
  it('currencies: Stripe\'s ISO codes with CNY; the unconfirmed special and three-decimal cases are left out', () => {
    for (const c of ['CNY', 'USD', 'EUR', 'HKD', 'JPY', 'KRW', 'GBP', 'SGD']) expect(STRIPE_CURRENCIES).toContain(c);
    for (const c of ['ISK', 'HUF', 'TWD', 'BHD', 'KWD', 'ANG', 'STD']) expect(STRIPE_CURRENCIES).not.toContain(c);
    expect(stripe.currencies).toBe(STRIPE_CURRENCIES);
  });
});

describe('status switches (default pending)', () => {
  it('sessions: only complete+paid succeeds; complete+unpaid waits for the async event; expired closes', () => {
    expect(sessionStatusOf({ status: 'complete', payment_status: 'paid' })).toBe('succeeded');
    expect(sessionStatusOf({ status: 'complete', payment_status: 'unpaid' })).toBe('pending');
    expect(sessionStatusOf({ status: 'open', payment_status: 'unpaid' })).toBe('pending');
    expect(sessionStatusOf({ status: 'expired', payment_status: 'unpaid' })).toBe('closed');
    expect(sessionStatusOf({ status: null, payment_status: 'unpaid' })).toBe('pending');
  });
  it('payment intents and refunds', () => {
    expect(paymentIntentStatusOf('succeeded')).toBe('succeeded');
    expect(paymentIntentStatusOf('canceled')).toBe('closed');
    for (const s of ['processing', 'requires_action', 'requires_payment_method', 'requires_capture', 'something_new']) expect(paymentIntentStatusOf(s)).toBe('pending');
    expect(refundStatusOf('succeeded')).toBe('succeeded');
    expect(refundStatusOf('failed')).toBe('failed');
    expect(refundStatusOf('canceled')).toBe('failed');
    expect(refundStatusOf('pending')).toBe('pending');
    expect(refundStatusOf('requires_action')).toBe('pending');
    expect(refundStatusOf(null)).toBe('pending');
  });
  it('the wallet comes from the charge', () => {
    expect(walletOf({ id: 'ch_1', amount: 1, currency: 'cny', created: 1, payment_method_details: { type: 'card', card: { wallet: { type: 'apple_pay' } } } })).toBe('apple_pay');
    expect(walletOf({ id: 'ch_1', amount: 1, currency: 'cny', created: 1, payment_method_details: { type: 'card', card: { wallet: null } } })).toBe('card');
    expect(walletOf(undefined)).toBeUndefined();
  });
  it('events: only the subscribed types, with an object', () => {
    expect(() => readEvent({ id: 'evt_1', object: 'event', type: 'customer.created', data: { object: { id: 'cus_1' } } })).toThrow(MalformedMessageError);
    expect(() => readEvent({ id: 'evt_1', object: 'event', type: 'checkout.session.completed', data: {} })).toThrow(MalformedMessageError);
    expect(readEvent({ id: 'evt_1', object: 'event', type: 'refund.updated', data: { object: { id: 're_1' } } }).type).toBe('refund.updated');
  });
});
