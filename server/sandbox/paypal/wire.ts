/**
 * The PayPal simulator's wire shapes: ids as PayPal writes them, error bodies, money validation
 * with PayPal's decimals, and the order / capture / refund representations with HATEOAS links
 * on the simulator's own host.
 */
import crypto from 'node:crypto';
import { IN_COUNTRY_CURRENCIES, MONEY_VALUE, PAYPAL_CURRENCIES, paypalDecimals } from '../../channels/paypal/transform.ts';
import type { SandboxCapture, SandboxOrder, SandboxRefund } from './store.ts';

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export function upperId(n: number): string {
  const bytes = crypto.randomBytes(n);
  let out = '';
  for (const b of bytes) out += UPPER[b % UPPER.length];
  return out;
}
/** Order, capture and refund ids: 17 upper-case letters and digits (5O190127TN364715T). */
export const newObjectId = () => upperId(17);
export const nowSeconds = () => Math.floor(Date.now() / 1000);
export const iso = (unix: number) => new Date(unix * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * How long an order waits: 3 h for the payer to approve, then 3 h to capture (the order.links
 * description). Compressible for tests of expiry.
 */
export const paypalSandboxTiming = { approvalWindowS: 3 * 3600, captureWindowS: 3 * 3600, /** Access tokens live about 9 h at PayPal. */ tokenLifetimeS: 32_400 };

export const base = (publicUrl: string) => `${publicUrl.replace(/\/$/, '')}/sandbox/paypal`;

// --- errors ------------------------------------------------------------------------------------

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

const debugId = () => crypto.randomBytes(7).toString('hex');

export function validationError(field: string, issue: string, description: string, value?: unknown): Answer {
  return {
    status: 400,
    body: {
      name: 'INVALID_REQUEST', message: 'Request is not well-formed, syntactically incorrect, or violates schema.', debug_id: debugId(),
      details: [{ field, ...(value === undefined ? {} : { value: String(value).slice(0, 64) }), location: 'body', issue, description }],
      links: [{ href: `https://developer.paypal.com/api/rest/reference/orders/v2/errors/#${issue}`, rel: 'information_link', encType: 'application/json' }],
    },
  };
}

export function businessError(issue: string, description: string): Answer {
  return {
    status: 422,
    body: {
      name: 'UNPROCESSABLE_ENTITY', message: 'The requested action could not be performed, semantically incorrect, or failed business validation.', debug_id: debugId(),
      details: [{ issue, description }],
      links: [{ href: `https://developer.paypal.com/api/rest/reference/orders/v2/errors/#${issue}`, rel: 'information_link', method: 'GET' }],
    },
  };
}

export const notFound = (what: string): Answer => ({
  status: 404,
  body: { name: 'RESOURCE_NOT_FOUND', message: 'The specified resource does not exist.', debug_id: debugId(), details: [{ issue: 'INVALID_RESOURCE_ID', description: `Specified resource ID does not exist (${what}).` }] },
});

export const isAnswer = (v: unknown): v is Answer => Boolean(v) && typeof v === 'object' && 'status' in (v as object) && 'body' in (v as object);

// --- money ---------------------------------------------------------------------------------------

/** A money object as PayPal validates it → its integer in PayPal's units (cents, or whole yen / forint / dollars for TWD). */
export function moneyUnits(m: unknown, field: string, opts: { inCountry?: boolean } = {}): { currency: string; value: string; units: number } | Answer {
  if (!m || typeof m !== 'object') return validationError(field, 'MISSING_REQUIRED_PARAMETER', 'A required field / parameter is missing.');
  const { currency_code: currency, value } = m as Record<string, unknown>;
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) return validationError(`${field}/currency_code`, 'INVALID_PARAMETER_SYNTAX', 'The value of a field does not conform to the expected format.', currency);
  const supported = (PAYPAL_CURRENCIES as readonly string[]).includes(currency) || (opts.inCountry && (IN_COUNTRY_CURRENCIES as readonly string[]).includes(currency));
  if (!supported) return businessError('CURRENCY_NOT_SUPPORTED', `Currency code ${currency} is not currently supported by this (simulated, non-domestic) account.`);
  if (typeof value !== 'string' || value.length > 32 || !MONEY_VALUE.test(value)) return validationError(`${field}/value`, 'INVALID_PARAMETER_SYNTAX', 'The value of a field does not conform to the expected format.', value);
  if (value.startsWith('-')) return validationError(`${field}/value`, 'INVALID_PARAMETER_VALUE', 'The value must be positive.', value);
  const [whole = '', frac] = value.split('.');
  const decimals = paypalDecimals(currency);
  if (frac !== undefined && decimals === 0) return businessError('DECIMALS_NOT_SUPPORTED', `Currency code ${currency} does not support decimals.`);
  if (frac !== undefined && frac.length > decimals) return businessError('DECIMAL_PRECISION', `If the currency supports decimals, only two decimal place precision is supported.`);
  const units = Number(whole || '0') * 10 ** decimals + Number((frac ?? '').padEnd(decimals, '0') || '0');
  if (!Number.isSafeInteger(units) || units < 1) return validationError(`${field}/value`, 'INVALID_PARAMETER_VALUE', 'The amount must be greater than zero.', value);
  return { currency, value, units };
}

/** PayPal's units → its value string. */
export function valueOf(units: number, currency: string): string {
  const d = paypalDecimals(currency);
  if (d === 0) return String(units);
  const t = String(units).padStart(d + 1, '0');
  return `${t.slice(0, -d)}.${t.slice(-d)}`;
}

// --- representations -----------------------------------------------------------------------

export function captureJson(b: string, c: SandboxCapture): Record<string, unknown> {
  return {
    id: c.id,
    status: c.status,
    ...(c.status === 'PENDING' ? { status_details: { reason: c.data.reason ?? 'PENDING_REVIEW' } } : {}),
    amount: { currency_code: c.data.currency, value: c.data.value },
    final_capture: true,
    seller_protection: { status: 'ELIGIBLE', dispute_categories: ['ITEM_NOT_RECEIVED', 'UNAUTHORIZED_TRANSACTION'] },
    ...(c.data.invoiceId ? { invoice_id: c.data.invoiceId } : {}),
    ...(c.data.customId ? { custom_id: c.data.customId } : {}),
    payee: { merchant_id: c.merchantId },
    supplementary_data: { related_ids: { order_id: c.orderId } },
    create_time: iso(c.data.createdAt),
    update_time: iso(c.data.updatedAt),
    links: [
      { href: `${b}/v2/payments/captures/${c.id}`, rel: 'self', method: 'GET' },
      { href: `${b}/v2/payments/captures/${c.id}/refund`, rel: 'refund', method: 'POST' },
      { href: `${b}/v2/checkout/orders/${c.orderId}`, rel: 'up', method: 'GET' },
    ],
  };
}

export function orderJson(b: string, o: SandboxOrder, capture?: SandboxCapture): Record<string, unknown> {
  const d = o.data;
  const unit: Record<string, unknown> = {
    reference_id: d.referenceId,
    amount: { currency_code: d.currency, value: d.value },
    payee: { merchant_id: o.merchantId },
    ...(d.description ? { description: d.description } : {}),
    ...(d.invoiceId ? { invoice_id: d.invoiceId } : {}),
    ...(d.customId ? { custom_id: d.customId } : {}),
  };
  if (capture) unit.payments = { captures: [captureJson(b, capture)] };
  const links: Array<Record<string, string>> = [{ href: `${b}/v2/checkout/orders/${o.id}`, rel: 'self', method: 'GET' }];
  if (o.status === 'PAYER_ACTION_REQUIRED') links.push({ href: `${b}/checkoutnow?token=${o.id}`, rel: 'payer-action', method: 'GET' });
  if (o.status === 'CREATED') links.push({ href: `${b}/checkoutnow?token=${o.id}`, rel: 'approve', method: 'GET' });
  if (o.status === 'CREATED' || o.status === 'APPROVED' || o.status === 'PAYER_ACTION_REQUIRED') links.push({ href: `${b}/v2/checkout/orders/${o.id}`, rel: 'update', method: 'PATCH' });
  if (o.status === 'APPROVED') links.push({ href: `${b}/v2/checkout/orders/${o.id}/capture`, rel: 'capture', method: 'POST' });
  const payer = d.payerId
    ? { payer: { name: { given_name: 'Sandbox', surname: 'Buyer' }, email_address: `buyer-${d.payerId.toLowerCase()}@example.com`, payer_id: d.payerId, address: { country_code: 'US' } } }
    : {};
  return {
    id: o.id,
    intent: 'CAPTURE',
    status: o.status,
    ...(d.payerId ? { payment_source: { paypal: { email_address: `buyer-${d.payerId.toLowerCase()}@example.com`, account_id: d.payerId, account_status: 'VERIFIED' } } } : {}),
    purchase_units: [unit],
    ...payer,
    create_time: iso(d.createdAt),
    update_time: iso(d.updatedAt),
    links,
  };
}

export function refundJson(b: string, r: SandboxRefund): Record<string, unknown> {
  return {
    id: r.id,
    status: r.status,
    amount: { currency_code: r.data.currency, value: r.data.value },
    ...(r.data.customId ? { custom_id: r.data.customId } : {}),
    ...(r.data.invoiceId ? { invoice_id: r.data.invoiceId } : {}),
    ...(r.data.note ? { note_to_payer: r.data.note } : {}),
    seller_payable_breakdown: { gross_amount: { currency_code: r.data.currency, value: r.data.value } },
    create_time: iso(r.data.createdAt),
    update_time: iso(r.data.createdAt),
    links: [
      { href: `${b}/v2/payments/refunds/${r.id}`, rel: 'self', method: 'GET' },
      { href: `${b}/v2/payments/captures/${r.captureId}`, rel: 'up', method: 'GET' },
    ],
  };
}

/** The raw text of one top-level member's value in a JSON object text (the postback's webhook_event, as sent). */
export function rawMember(text: string, key: string): string | undefined {
  let i = text.indexOf('{');
  if (i < 0) return undefined;
  i++;
  const skipWs = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const skipString = () => {
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  const skipValue = () => {
    skipWs();
    if (text[i] === '"') return skipString();
    if (text[i] === '{' || text[i] === '[') {
      let depth = 0;
      do {
        const ch = text[i];
        if (ch === '"') {
          skipString();
          continue;
        }
        if (ch === '{' || ch === '[') depth++;
        if (ch === '}' || ch === ']') depth--;
        i++;
      } while (depth > 0 && i < text.length);
      return;
    }
    while (i < text.length && !/[,}\]\s]/.test(text[i]!)) i++;
  };
  for (;;) {
    skipWs();
    if (text[i] !== '"') return undefined;
    const start = i;
    skipString();
    const name = JSON.parse(text.slice(start, i)) as string;
    skipWs();
    if (text[i] !== ':') return undefined;
    i++;
    skipWs();
    const valueStart = i;
    skipValue();
    if (name === key) return text.slice(valueStart, i);
    skipWs();
    if (text[i] !== ',') return undefined;
    i++;
  }
}
