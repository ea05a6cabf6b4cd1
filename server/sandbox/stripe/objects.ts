/** The simulator's API objects, rendered as Stripe renders them for the pinned API version. */
import type { StripeRefund, StripeSession } from './store.ts';
import { invalidParam } from './wire.ts';

export function sessionUrl(publicUrl: string, sessionId: string): string {
  return `${publicUrl.replace(/\/$/, '')}/sandbox/stripe/pay/${sessionId}`;
}

export function chargeObject(s: StripeSession) {
  const d = s.data;
  if (!d.chargeId) return null;
  return {
    id: d.chargeId,
    object: 'charge',
    amount: d.amountTotal,
    amount_captured: d.amountTotal,
    amount_refunded: s.amountRefunded,
    captured: true,
    created: d.chargeCreated!,
    currency: d.currency,
    livemode: false,
    metadata: d.piMetadata,
    paid: true,
    payment_intent: s.paymentIntentId,
    payment_method_details: {
      type: 'card',
      card: {
        brand: 'visa', country: 'US', exp_month: 12, exp_year: 2034, funding: 'credit', last4: '4242', network: 'visa',
        three_d_secure: null,
        wallet: d.wallet && d.wallet !== 'card' ? { type: d.wallet, [d.wallet]: {}, dynamic_last4: '4242' } : null,
      },
    },
    refunded: s.amountRefunded >= d.amountTotal,
    status: 'succeeded',
  };
}

export function paymentIntentObject(s: StripeSession, expand: Set<string>, prefix = '') {
  const d = s.data;
  const charge = chargeObject(s);
  return {
    id: s.paymentIntentId,
    object: 'payment_intent',
    amount: d.amountTotal,
    amount_received: d.piStatus === 'succeeded' ? d.amountTotal : 0,
    currency: d.currency,
    created: d.created,
    description: d.piDescription ?? null,
    last_payment_error: d.lastPaymentError ? { type: 'card_error', ...d.lastPaymentError } : null,
    latest_charge: charge ? (expand.has(`${prefix}latest_charge`) ? charge : charge.id) : null,
    livemode: false,
    metadata: d.piMetadata,
    payment_method_types: ['card'],
    status: d.piStatus,
  };
}

export function sessionObject(publicUrl: string, s: StripeSession, expand: Set<string> = new Set()) {
  const d = s.data;
  const pi = d.piStarted ? (expand.has('payment_intent') ? paymentIntentObject(s, expand, 'payment_intent.') : s.paymentIntentId) : null;
  return {
    id: s.id,
    object: 'checkout.session',
    allowed_payment_method_types: d.allowedPaymentMethodTypes,
    amount_subtotal: d.amountTotal,
    amount_total: d.amountTotal,
    cancel_url: d.cancelUrl ?? null,
    client_reference_id: d.clientReferenceId ?? null,
    created: d.created,
    currency: d.currency,
    expires_at: d.expiresAt,
    livemode: false,
    metadata: d.metadata,
    mode: 'payment',
    payment_intent: pi,
    payment_status: d.paymentStatus,
    status: s.status,
    success_url: d.successUrl,
    ui_mode: 'hosted_page',
    url: s.status === 'open' ? sessionUrl(publicUrl, s.id) : null,
    ...(expand.has('line_items') ? {
      line_items: {
        object: 'list', has_more: false, url: `/v1/checkout/sessions/${s.id}/line_items`,
        data: d.lineItems.map((li, i) => ({ id: `li_${s.id.slice(-16)}${i}`, object: 'item', amount_total: li.unitAmount * li.quantity, currency: d.currency, description: li.name, quantity: li.quantity })),
      },
    } : {}),
  };
}

export function refundObject(s: StripeSession, r: StripeRefund) {
  return {
    id: r.id,
    object: 'refund',
    amount: r.amount,
    charge: s.data.chargeId ?? null,
    created: r.created,
    currency: s.data.currency,
    metadata: r.metadata,
    payment_intent: s.paymentIntentId,
    reason: null,
    status: r.status,
  };
}

/** The expand[] values an endpoint allows; any other is refused naming `expand`, as Stripe does. */
export function expansions(given: string[] | undefined, allowed: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const e of given ?? []) {
    if (!allowed.includes(e)) throw invalidParam('expand', `This property cannot be expanded (${e.slice(0, 80)}).`, 'parameter_invalid_string');
    out.add(e);
    // Expanding a nested field expands its parent too.
    const parts = e.split('.');
    for (let i = 1; i < parts.length; i++) out.add(parts.slice(0, i).join('.'));
  }
  return out;
}
