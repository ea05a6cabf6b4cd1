/**
 * Stripe's wire shapes and their mapping to ours: amounts in Stripe's minor units, the status
 * switches (one per object, default pending), and the events a webhook endpoint receives.
 * Source: protocols/cards.md ("Amounts and currencies", "Status mapping"), stripe@23.1.0 typings.
 */
import { MalformedMessageError } from '../../errors.ts';
import { isCurrency, minorUnits } from '../../payments/currencies.ts';
import type { ChannelPaymentStatus, ChannelRefundStatus } from '../types.ts';

/** Stripe counts these in whole units (docs.stripe.com/currencies#zero-decimal). */
export const STRIPE_ZERO_DECIMAL = ['BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF'] as const;

/**
 * The presentment currencies Stripe lists, ISO 4217 codes only. Left out on purpose: the
 * three-decimal ones (BHD JOD KWD OMR TND: amounts must end in 0) and Stripe's special cases
 * ISK, HUF and TWD, whose rules the notes could not confirm (protocols/cards.md).
 */
const STRIPE_LISTED = [
  'USD', 'AED', 'AFN', 'ALL', 'AMD', 'AOA', 'ARS', 'AUD', 'AWG', 'AZN', 'BAM', 'BBD', 'BDT', 'BGN', 'BIF', 'BMD', 'BND', 'BOB',
  'BRL', 'BSD', 'BWP', 'BYN', 'BZD', 'CAD', 'CDF', 'CHF', 'CLP', 'CNY', 'COP', 'CRC', 'CVE', 'CZK', 'DJF', 'DKK', 'DOP', 'DZD',
  'EGP', 'ETB', 'EUR', 'FJD', 'FKP', 'GBP', 'GEL', 'GIP', 'GMD', 'GNF', 'GTQ', 'GYD', 'HKD', 'HNL', 'HTG', 'IDR', 'ILS', 'INR',
  'JMD', 'JPY', 'KES', 'KGS', 'KHR', 'KMF', 'KRW', 'KYD', 'KZT', 'LAK', 'LBP', 'LKR', 'LRD', 'LSL', 'MAD', 'MDL', 'MGA', 'MKD',
  'MMK', 'MNT', 'MOP', 'MUR', 'MVR', 'MWK', 'MXN', 'MYR', 'MZN', 'NAD', 'NGN', 'NIO', 'NOK', 'NPR', 'NZD', 'PAB', 'PEN', 'PGK',
  'PHP', 'PKR', 'PLN', 'PYG', 'QAR', 'RON', 'RSD', 'RUB', 'RWF', 'SAR', 'SBD', 'SCR', 'SEK', 'SGD', 'SHP', 'SLE', 'SOS', 'SRD',
  'SZL', 'THB', 'TJS', 'TOP', 'TRY', 'TTD', 'TZS', 'UAH', 'UGX', 'UYU', 'UZS', 'VND', 'VUV', 'WST', 'XAF', 'XCD', 'XOF', 'XPF',
  'YER', 'ZAR', 'ZMW',
];
export const STRIPE_CURRENCIES: readonly string[] = STRIPE_LISTED.filter(isCurrency);

const stripeExponent = (currency: string): number => ((STRIPE_ZERO_DECIMAL as readonly string[]).includes(currency) ? 0 : 2);

/**
 * Our amount (ISO minor units) as Stripe's `unit_amount`: the same number for two-decimal
 * currencies; for zero-decimal ones the ISO exponent decides (JPY 500 → 500; MGA, ISO exponent
 * 2, 50000 → 500). An amount Stripe cannot express exactly throws.
 */
export function toStripeAmount(amount: number, currency: string): number {
  if (!Number.isSafeInteger(amount)) throw new RangeError(`amount ${amount} is not an integer of minor units`);
  const shift = stripeExponent(currency) - minorUnits(currency);
  if (shift >= 0) return amount * 10 ** shift;
  const unit = 10 ** -shift;
  if (amount % unit !== 0) throw new RangeError(`${currency} is counted in whole units at Stripe: ${amount} is not a multiple of ${unit}`);
  return amount / unit;
}

/** Stripe's amount back in our minor units. */
export function fromStripeAmount(amount: number, currency: string): number {
  if (!Number.isSafeInteger(amount)) throw new RangeError('Stripe amount is not an integer');
  const shift = minorUnits(currency) - stripeExponent(currency);
  return shift >= 0 ? amount * 10 ** shift : amount / 10 ** -shift;
}

/** The parts of a Checkout Session we read. */
export interface SessionShape {
  id: string;
  object?: string;
  status: 'open' | 'complete' | 'expired' | null;
  payment_status: 'paid' | 'unpaid' | 'no_payment_required';
  amount_total: number | null;
  currency: string | null;
  client_reference_id: string | null;
  metadata: Record<string, string> | null;
  payment_intent: string | PaymentIntentShape | null;
  created: number;
}

export interface PaymentIntentShape {
  id: string;
  status: string;
  amount: number;
  amount_received?: number;
  currency: string;
  latest_charge?: string | ChargeShape | null;
}

export interface ChargeShape {
  id: string;
  amount: number;
  currency: string;
  created: number;
  payment_intent?: string | null;
  metadata?: Record<string, string> | null;
  payment_method_details?: { type?: string; card?: { wallet?: { type?: string } | null } | null } | null;
  refunds?: { data?: RefundShape[] } | null;
}

export interface RefundShape {
  id: string;
  object?: string;
  amount: number;
  currency: string;
  status: string | null;
  payment_intent: string | null;
  metadata: Record<string, string> | null;
  failure_reason?: string | null;
}

/**
 * A session's status for us. Complete and unpaid (an async method such as a bank debit) stays
 * pending until its async event; only a paid complete session succeeds, and an expired one is
 * closed.
 */
export function sessionStatusOf(s: Pick<SessionShape, 'status' | 'payment_status'>): ChannelPaymentStatus {
  switch (s.status) {
    case 'complete':
      return s.payment_status === 'paid' ? 'succeeded' : 'pending';
    case 'expired':
      return 'closed';
    case 'open':
    default:
      return 'pending';
  }
}

/** A PaymentIntent's status for us: only succeeded and canceled are final. */
export function paymentIntentStatusOf(status: string): ChannelPaymentStatus {
  switch (status) {
    case 'succeeded':
      return 'succeeded';
    case 'canceled':
      return 'closed';
    case 'processing':
    case 'requires_action':
    case 'requires_confirmation':
    case 'requires_capture':
    case 'requires_payment_method': // the buyer may try another card on the page
    default:
      return 'pending';
  }
}

export function refundStatusOf(status: string | null): ChannelRefundStatus {
  switch (status) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
    case 'canceled':
      return 'failed';
    case 'pending':
    case 'requires_action':
    default:
      return 'pending';
  }
}

/** The wallet the buyer used, from the charge: apple_pay, google_pay, link…, or card for a plain card. */
export function walletOf(charge: ChargeShape | null | undefined): string | undefined {
  const details = charge?.payment_method_details;
  if (!details) return undefined;
  if (details.type && details.type !== 'card') return details.type.slice(0, 32);
  const wallet = details.card?.wallet?.type;
  return wallet ? wallet.slice(0, 32) : 'card';
}

/** The events Checkstand's endpoint subscribes to (README: what to register at Stripe). */
export const WEBHOOK_EVENTS = [
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'checkout.session.expired',
  'refund.created',
  'refund.updated',
  'refund.failed',
  'charge.refunded',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

/** A verified event's envelope, checked for the fields we read. */
export interface EventShape {
  id: string;
  type: WebhookEventType;
  object: SessionShape | RefundShape | ChargeShape;
}

export function readEvent(e: unknown): EventShape {
  const ev = e as { id?: unknown; object?: unknown; type?: unknown; data?: { object?: unknown } };
  if (!ev || ev.object !== 'event' || typeof ev.id !== 'string' || !ev.id) throw new MalformedMessageError('Stripe webhook body is not an event');
  if (typeof ev.type !== 'string' || !(WEBHOOK_EVENTS as readonly string[]).includes(ev.type)) {
    throw new MalformedMessageError(`Stripe event type ${String(ev.type).slice(0, 60)} is not one this endpoint subscribes to`);
  }
  const obj = ev.data?.object;
  if (!obj || typeof obj !== 'object' || typeof (obj as { id?: unknown }).id !== 'string') throw new MalformedMessageError('Stripe event has no data.object');
  return { id: ev.id, type: ev.type as WebhookEventType, object: obj as EventShape['object'] };
}

/** A string field an event must carry; its absence makes the message malformed. */
export function required(value: unknown, name: string): string {
  if (typeof value !== 'string' || !value) throw new MalformedMessageError(`Stripe event lacks ${name}`);
  return value;
}

export function requiredAmount(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new MalformedMessageError(`Stripe event lacks ${name}`);
  return value;
}

/** Our currency code from Stripe's lowercase one. */
export const isoCurrency = (c: unknown, name = 'currency'): string => required(c, name).toUpperCase();
