/**
 * PayPal Orders v2 / Payments v2 wire shapes and their mapping to ours: the currencies PayPal
 * takes and its own decimals table, money strings ↔ minor units, the status switches, the
 * create-order body, and the webhook resources. Source: protocols/paypal.md.
 */
import { ChannelRequestError, MalformedMessageError } from '../../errors.ts';
import type { ChannelOrder, ChannelPaymentStatus, ChannelRefundStatus, PaymentQueryResult, RefundResult } from '../types.ts';

// --- currencies and money ----------------------------------------------------------------------

/** What any PayPal business account takes (paypal-supported-currencies), by ISO 4217 code. */
export const PAYPAL_CURRENCIES = [
  'USD', 'EUR', 'GBP', 'HKD', 'JPY', 'AUD', 'CAD', 'SGD', 'CHF', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'HUF', 'ILS', 'MXN', 'NZD',
  'PHP', 'THB', 'TWD',
] as const;

/** Accepted only by accounts registered in that country (CNY: China, BRL: Brazil, MYR: Malaysia); off unless configured. */
export const IN_COUNTRY_CURRENCIES = ['CNY', 'BRL', 'MYR'] as const;

/** PayPal's own decimals: these are integers at PayPal (a fraction gets DECIMALS_NOT_SUPPORTED), whatever ISO says. */
export const ZERO_DECIMAL_AT_PAYPAL: ReadonlySet<string> = new Set(['HUF', 'JPY', 'TWD']);

/** ISO 4217 minor-unit exponents of the currencies above: the gateway's amounts are in these units. */
const ISO_EXPONENT: Record<string, number> = { JPY: 0 };
export const isoExponent = (currency: string): number => ISO_EXPONENT[currency] ?? 2;
export const paypalDecimals = (currency: string): number => (ZERO_DECIMAL_AT_PAYPAL.has(currency) ? 0 : 2);

/** The money pattern of the Orders API (`money.value`). */
export const MONEY_VALUE = /^((-?[0-9]+)|(-?([0-9]+)?[.][0-9]+))$/;

/**
 * Minor units (ISO) → PayPal's value string: "12.34", or "1000" for JPY. HUF and TWD have two
 * ISO decimals but none at PayPal: an amount that is not a whole unit is refused, never rounded.
 * A non-integer amount is a bug upstream: it throws RangeError.
 */
export function paypalValue(amount: number, currency: string): string {
  if (!Number.isSafeInteger(amount) || amount < 1) throw new RangeError(`amount must be a positive integer of minor units, got ${amount}`);
  const iso = isoExponent(currency);
  const decimals = paypalDecimals(currency);
  const drop = 10 ** (iso - decimals);
  if (amount % drop !== 0) {
    throw new ChannelRequestError('amount_not_whole_unit', `PayPal takes ${currency} in whole units only (no decimals): ${amount} minor units is not a whole ${currency}`);
  }
  const units = amount / drop;
  if (decimals === 0) return String(units);
  const text = String(units).padStart(decimals + 1, '0');
  return `${text.slice(0, -decimals)}.${text.slice(-decimals)}`;
}

/** PayPal's value string → ISO minor units; undefined when it is not a plain non-negative amount of that currency. */
export function minorUnitsOf(value: unknown, currency: string): number | undefined {
  if (typeof value !== 'string' || value.length > 32 || !/^[0-9]+(\.[0-9]+)?$/.test(value)) return undefined;
  const [whole, frac = ''] = value.split('.') as [string, string?];
  const iso = isoExponent(currency);
  if (frac.length > iso && /[^0]/.test(frac.slice(iso))) return undefined;
  const n = Number(whole) * 10 ** iso + Number((frac.slice(0, iso) || '0').padEnd(iso, '0'));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Cuts to `max` characters on a code point boundary, whitespace folded (PayPal counts characters). */
export function cut(text: string, max: number): string {
  return [...text.replace(/\s+/g, ' ').trim()].slice(0, max).join('');
}

// --- statuses ------------------------------------------------------------------------------------

/** Order status → ours. APPROVED is pending until captured; COMPLETED is decided by the capture, never here. */
export function orderStatusOf(status: unknown): ChannelPaymentStatus {
  switch (status) {
    case 'VOIDED':
      return 'closed';
    case 'CREATED':
    case 'SAVED':
    case 'PAYER_ACTION_REQUIRED':
    case 'APPROVED':
    case 'COMPLETED':
    default:
      return 'pending';
  }
}

/**
 * Capture status → ours. COMPLETED (and refunded later, which means it was paid) is a success;
 * DECLINED and FAILED end the attempt (a failed attempt is 'closed' for the core); PENDING and
 * anything unknown wait.
 */
export function captureStatusOf(status: unknown): ChannelPaymentStatus {
  switch (status) {
    case 'COMPLETED':
    case 'PARTIALLY_REFUNDED':
    case 'REFUNDED':
      return 'succeeded';
    case 'DECLINED':
    case 'FAILED':
      return 'closed';
    case 'PENDING':
    default:
      return 'pending';
  }
}

/** Refund status → ours. */
export function refundStatusOf(status: unknown): ChannelRefundStatus {
  switch (status) {
    case 'COMPLETED':
      return 'succeeded';
    case 'FAILED':
    case 'CANCELLED':
      return 'failed';
    case 'PENDING':
    default:
      return 'pending';
  }
}

// --- wire shapes ---------------------------------------------------------------------------------

export interface PaypalMoney {
  currency_code?: string;
  value?: string;
}

export interface PaypalLink {
  href?: string;
  rel?: string;
  method?: string;
}

export interface PaypalCapture {
  id?: string;
  status?: string;
  status_details?: { reason?: string };
  amount?: PaypalMoney;
  invoice_id?: string;
  custom_id?: string;
  final_capture?: boolean;
  create_time?: string;
  update_time?: string;
  payee?: { merchant_id?: string; email_address?: string };
  supplementary_data?: { related_ids?: { order_id?: string } };
  links?: PaypalLink[];
}

export interface PaypalPurchaseUnit {
  reference_id?: string;
  invoice_id?: string;
  custom_id?: string;
  amount?: PaypalMoney;
  payee?: { merchant_id?: string; email_address?: string };
  payments?: { captures?: PaypalCapture[] };
}

export interface PaypalOrder {
  id?: string;
  status?: string;
  intent?: string;
  purchase_units?: PaypalPurchaseUnit[];
  links?: PaypalLink[];
}

export interface PaypalRefund {
  id?: string;
  status?: string;
  status_details?: { reason?: string };
  amount?: PaypalMoney;
  invoice_id?: string;
  custom_id?: string;
  links?: PaypalLink[];
}

/** The error body of a non-2xx answer. */
export interface PaypalError {
  name: string;
  message: string;
  debugId: string;
  /** details[0].issue, the code to switch on for 422s. */
  issue?: string;
  description?: string;
}

export function errorOf(status: number, body: unknown, debugHeader: string | null): PaypalError {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const details = Array.isArray(b.details) ? (b.details as Array<Record<string, unknown>>) : [];
  const str = (v: unknown, n: number) => (typeof v === 'string' ? v.slice(0, n) : undefined);
  return {
    // OAuth answers use the OAuth shape: {error, error_description}.
    name: str(b.name, 64) ?? str(b.error, 64) ?? `HTTP_${status}`,
    message: str(b.message, 300) ?? str(b.error_description, 300) ?? '',
    debugId: str(b.debug_id, 64) ?? (debugHeader ?? '').slice(0, 64),
    issue: str(details[0]?.issue, 64),
    description: str(details[0]?.description, 300),
  };
}

// --- requests ------------------------------------------------------------------------------------

/** `url` with one more query parameter, whatever it already carries. */
export function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/**
 * The create-order body: intent CAPTURE, one purchase unit whose invoice_id is the attempt's
 * order number (unique per attempt, as PayPal wants it unique per account) and whose custom_id
 * is the same number (ChannelOrder carries no payment id; the number leads to the payment),
 * return and cancel URLs under payment_source.paypal.experience_context (application_context
 * is deprecated).
 */
export function createOrderBody(order: ChannelOrder, opts: { brandName?: string } = {}): Record<string, unknown> {
  const returnUrl = withQuery(order.returnUrl, { out_trade_no: order.orderNo });
  const context: Record<string, unknown> = {
    return_url: returnUrl,
    cancel_url: withQuery(returnUrl, { cancel: '1' }),
    user_action: 'PAY_NOW',
    shipping_preference: 'NO_SHIPPING',
    landing_page: 'NO_PREFERENCE',
  };
  if (opts.brandName) context.brand_name = cut(opts.brandName, 127);
  const unit: Record<string, unknown> = {
    reference_id: 'default',
    invoice_id: order.orderNo,
    custom_id: order.orderNo,
    description: cut(order.subject, 127) || order.orderNo,
    amount: { currency_code: order.currency, value: paypalValue(order.amount, order.currency) },
  };
  return { intent: 'CAPTURE', purchase_units: [unit], payment_source: { paypal: { experience_context: context } } };
}

/** The refund body: always the amount (partial or the rest), our refund number in custom_id so the refund resource carries it. */
export function refundBody(req: { refundNo: string; amount: number; currency: string; reason?: string | null }): Record<string, unknown> {
  const body: Record<string, unknown> = {
    amount: { currency_code: req.currency, value: paypalValue(req.amount, req.currency) },
    custom_id: req.refundNo,
  };
  const note = req.reason ? cut(req.reason, 255) : '';
  if (note) body.note_to_payer = note;
  return body;
}

/** Where the payer approves: the link whose rel is payer-action (experience_context) or approve (legacy); never built by hand. */
export function approveLinkOf(order: PaypalOrder): string | undefined {
  const link = order.links?.find((l) => l.rel === 'payer-action') ?? order.links?.find((l) => l.rel === 'approve');
  return typeof link?.href === 'string' && /^https?:\/\//.test(link.href) ? link.href : undefined;
}

// --- answers → ours --------------------------------------------------------------------------

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
export function unixOf(time: unknown): number | undefined {
  if (typeof time !== 'string' || !RFC3339.test(time)) return undefined;
  const ms = Date.parse(time);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

/** The first capture of the order's first purchase unit: the one money movement an intent-CAPTURE order has. */
export const firstCapture = (order: PaypalOrder): PaypalCapture | undefined => order.purchase_units?.[0]?.payments?.captures?.[0];

/**
 * What a capture says about the attempt: its status decides (an order COMPLETED with a declined
 * capture is not paid), its id is the trade number, its amount is returned in minor units for
 * the core to compare. `expected` is what the gateway stored: a capture in another currency is
 * refused outright (the core compares amounts, not currencies, on a query).
 */
export function captureResultOf(capture: PaypalCapture, expected?: { currency: string }): PaymentQueryResult {
  const currency = capture.amount?.currency_code;
  if (expected && currency !== undefined && currency !== expected.currency) {
    throw new ChannelRequestError('currency_mismatch', `PayPal capture ${String(capture.id).slice(0, 24)} is in ${String(currency).slice(0, 3)}, the payment in ${expected.currency}`);
  }
  const status = captureStatusOf(capture.status);
  return {
    status,
    channelTradeNo: typeof capture.id === 'string' ? capture.id : undefined,
    amount: currency ? minorUnitsOf(capture.amount?.value, currency) : undefined,
    paidAt: status === 'succeeded' ? unixOf(capture.create_time) ?? unixOf(capture.update_time) : undefined,
  };
}

/** An order (GET, or a capture's answer) → our query result. */
export function orderResultOf(order: PaypalOrder, expected?: { currency: string }): PaymentQueryResult {
  if (order.status === 'COMPLETED') {
    const capture = firstCapture(order);
    // COMPLETED without a capture is not something PayPal says; wait rather than guess.
    return capture ? captureResultOf(capture, expected) : { status: 'pending' };
  }
  return { status: orderStatusOf(order.status) };
}

export function refundResultOf(r: PaypalRefund): RefundResult {
  const status = refundStatusOf(r.status);
  const out: RefundResult = { status };
  if (typeof r.id === 'string' && r.id) out.channelRefundNo = r.id;
  if (status === 'failed') out.failureMessage = `PayPal refund ${String(r.status).slice(0, 20)}${r.status_details?.reason ? ` (${String(r.status_details.reason).slice(0, 60)})` : ''}`;
  return out;
}

// --- webhooks --------------------------------------------------------------------------------

export interface WebhookEvent {
  id: string;
  event_type: string;
  resource_type?: string;
  resource: Record<string, unknown>;
  create_time?: string;
}

/** Checks the envelope of a (verified) webhook body. */
export function eventOf(json: unknown): WebhookEvent {
  const v = json as Partial<WebhookEvent> | null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new MalformedMessageError('PayPal webhook is not a JSON object');
  if (typeof v.id !== 'string' || !v.id || v.id.length > 128) throw new MalformedMessageError('PayPal webhook lacks id');
  if (typeof v.event_type !== 'string' || !v.event_type) throw new MalformedMessageError('PayPal webhook lacks event_type');
  if (!v.resource || typeof v.resource !== 'object' || Array.isArray(v.resource)) throw new MalformedMessageError('PayPal webhook lacks resource');
  return v as WebhookEvent;
}

/** The money of a webhook resource, in minor units, with its currency; a missing or odd one is malformed. */
export function moneyOf(m: PaypalMoney | undefined, what: string): { amount: number; currency: string } {
  const currency = m?.currency_code;
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) throw new MalformedMessageError(`PayPal ${what} lacks amount.currency_code`);
  const amount = minorUnitsOf(m?.value, currency);
  if (amount === undefined) throw new MalformedMessageError(`PayPal ${what} lacks a plain amount.value`);
  return { amount, currency };
}

/** The id in a HATEOAS link of `rel` (e.g. the capture a refund is `up` from). */
export function linkedId(links: PaypalLink[] | undefined, rel: string): string | undefined {
  const href = links?.find((l) => l.rel === rel)?.href;
  const id = typeof href === 'string' ? /\/([A-Za-z0-9-]{1,64})\/?$/.exec(href)?.[1] : undefined;
  return id;
}
