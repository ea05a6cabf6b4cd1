/**
 * The simulator's API (mounted at /sandbox/stripe/v1): Checkout Sessions (create, retrieve with
 * expand, expire), PaymentIntents (retrieve), refunds (create, retrieve, list), balance
 * transactions (list, statement.ts), behind Stripe's Bearer auth, Stripe-Version check and
 * idempotency layer, answering Stripe's error object.
 */
import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { SandboxDeps } from '../types.ts';
import { isCashierUrl } from '../gateway-urls.ts';
import {
  accountByKey, claimIdempotencyKey, findRefund, findSession, findSessionByPaymentIntent, insertSession, listRefunds, recordRefund,
  releaseIdempotencyKey, saveIdempotentAnswer, type StripeAccount, type StripeSession,
} from './store.ts';
import { expansions, paymentIntentObject, refundObject, sessionObject } from './objects.ts';
import { eventOf, sendEvents } from './notify.ts';
import { KNOWN_VERSIONS, Params, StripeWireError, invalidParam, isEndive, missingParam, newObjectId, noSuch, parseForm, unknownParam } from './wire.ts';
import { STRIPE_CURRENCIES } from '../../channels/stripe/transform.ts';
import { expireIfDue } from './session.ts';
import { listBalanceTransactions } from './statement.ts';

interface Ctx {
  deps: SandboxDeps;
  account: StripeAccount;
  version: string;
  params: Params;
}
type Handler = (ctx: Ctx, req: Request) => Promise<{ status?: number; body: unknown }>;

export function createStripeApiRouter(deps: SandboxDeps): express.Router {
  const r = express.Router();
  r.use(express.text({ type: () => true, limit: '256kb' }));
  r.use((_req, res, next) => {
    res.set('Request-Id', `req_${newObjectId('', 14).slice(1)}`);
    res.set('Cache-Control', 'no-store');
    next();
  });

  const route = (method: 'get' | 'post', path: string, handler: Handler) =>
    r[method](path, async (req, res) => {
      try {
        await serve(deps, req, res, handler);
      } catch (err) {
        deps.logger.error('stripe sandbox request failed', { path: req.path, err });
        if (!res.headersSent) res.status(500).json({ error: { type: 'api_error', message: 'An unknown error occurred' } });
      }
    });

  route('post', '/checkout/sessions', createSession);
  route('get', '/checkout/sessions/:id', async (ctx, req) => {
    const expand = expansions(ctx.params.strings('expand'), ['payment_intent', 'payment_intent.latest_charge', 'line_items']);
    ctx.params.rejectUnknown();
    const s = await loadSession(ctx, String(req.params.id));
    return { body: sessionObject(deps.publicUrl, s, expand) };
  });
  route('post', '/checkout/sessions/:id/expire', async (ctx, req) => {
    ctx.params.rejectUnknown();
    const s = await loadSession(ctx, String(req.params.id));
    if (s.status !== 'open') {
      throw new StripeWireError(400, 'invalid_request_error', `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${s.status}".`, undefined, undefined, true);
    }
    const expired = await expireIfDue(deps, s, true);
    return { body: sessionObject(deps.publicUrl, expired) };
  });
  route('get', '/payment_intents/:id', async (ctx, req) => {
    const expand = expansions(ctx.params.strings('expand'), ['latest_charge']);
    ctx.params.rejectUnknown();
    const id = String(req.params.id);
    const s = await findSessionByPaymentIntent(deps.db, ctx.account.id, id);
    if (!s || !s.data.piStarted) throw noSuch('payment_intent', id, 'intent');
    return { body: paymentIntentObject(s, expand) };
  });
  route('post', '/refunds', createRefund);
  route('get', '/refunds/:id', async (ctx, req) => {
    ctx.params.rejectUnknown();
    const id = String(req.params.id);
    const refund = await findRefund(deps.db, ctx.account.id, id);
    const s = refund && (await findSession(deps.db, ctx.account.id, refund.sessionId));
    if (!refund || !s) throw noSuch('refund', id);
    return { body: refundObject(s, refund) };
  });
  route('get', '/refunds', async (ctx) => {
    const pi = ctx.params.str('payment_intent');
    const limit = ctx.params.int('limit', { min: 1, max: 100 }) ?? 10;
    ctx.params.rejectUnknown();
    if (!pi) throw missingParam('payment_intent');
    const s = await findSessionByPaymentIntent(deps.db, ctx.account.id, pi);
    if (!s) throw noSuch('payment_intent', pi, 'payment_intent');
    const all = await listRefunds(deps.db, ctx.account.id, s.id);
    return { body: { object: 'list', data: all.slice(0, limit).map((x) => refundObject(s, x)), has_more: all.length > limit, url: '/v1/refunds' } };
  });
  // The day's statement (statement.ts).
  route('get', '/balance_transactions', (ctx) => listBalanceTransactions(ctx));
  r.use((req, res) => {
    res.status(404).json({ error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: /v1${req.path}).` } });
  });
  return r;

  async function createSession(ctx: Ctx): Promise<{ body: unknown }> {
    const p = ctx.params;
    const mode = p.str('mode', { required: true });
    if (mode !== 'payment') throw invalidParam('mode', 'This simulator takes mode payment only.', 'parameter_invalid_string');
    const items = p.list('line_items');
    if (!items || items.length === 0) throw missingParam('line_items');
    if (items.length > 100) throw invalidParam('line_items', 'A Checkout Session takes at most 100 line items.');
    let currency: string | undefined;
    const lineItems = items.map((item, i) => {
      if (!item || typeof item !== 'object' || Array.isArray(item)) throw invalidParam(`line_items[${i}]`, `Invalid object: line_items[${i}]`, 'parameter_invalid_empty');
      const li = new Params(item, `line_items[${i}]`);
      const quantity = li.int('quantity', { required: true, min: 1, max: 999_999 })!;
      const pd = li.obj('price_data');
      if (!pd) throw missingParam(`line_items[${i}][price_data]`);
      const c = pd.str('currency', { required: true })!;
      if (!/^[a-z]{3}$/.test(c) || !STRIPE_CURRENCIES.includes(c.toUpperCase())) throw invalidParam(`line_items[${i}][price_data][currency]`, `Invalid currency: ${c.slice(0, 10)}.`);
      if (currency && c !== currency) throw invalidParam(`line_items[${i}][price_data][currency]`, 'All line items must have the same currency.');
      currency = c;
      const unitAmount = pd.int('unit_amount', { required: true, min: 0, max: 99_999_999 })!;
      const product = pd.obj('product_data', { required: true })!;
      const name = product.str('name', { required: true, max: 250 })!;
      if (!name.trim()) throw invalidParam(`line_items[${i}][price_data][product_data][name]`, 'Name cannot be empty.', 'parameter_invalid_empty');
      const description = product.str('description', { max: 500 });
      product.rejectUnknown();
      pd.rejectUnknown();
      li.rejectUnknown();
      return { name, description, unitAmount, quantity };
    });
    const amountTotal = lineItems.reduce((a, li) => a + li.unitAmount * li.quantity, 0);
    if (amountTotal < 1) throw invalidParam('line_items[0][price_data][unit_amount]', 'The Checkout Session total must be at least 1.', 'amount_too_small');
    const successUrl = p.str('success_url', { required: true, max: 5000 })!;
    const cancelUrl = p.str('cancel_url', { max: 5000 });
    // The simulator serves one merchant, this gateway: the payer goes back only to its own pages.
    for (const [name, url] of [['success_url', successUrl], ['cancel_url', cancelUrl]] as const) {
      if (url !== undefined && !isCashierUrl(deps.publicUrl, url.replace('{CHECKOUT_SESSION_ID}', 'x'), 'back')) {
        throw invalidParam(name, `${name} must be this gateway's cashier return page (PUBLIC_URL/pay/…/return)`, 'url_invalid');
      }
    }
    // The payment-method parameter changed name with the endive versions (protocols/cards.md).
    const pmParam = isEndive(ctx.version) ? 'allowed_payment_method_types' : 'payment_method_types';
    if (p.has(isEndive(ctx.version) ? 'payment_method_types' : 'allowed_payment_method_types')) throw unknownParam(isEndive(ctx.version) ? 'payment_method_types' : 'allowed_payment_method_types');
    const methods = p.strings(pmParam) ?? ['card'];
    methods.forEach((m, i) => { if (m !== 'card') throw invalidParam(`${pmParam}[${i}]`, `The simulator offers card (with its wallets) only, not ${m.slice(0, 30)}.`); });
    const now = Math.floor(Date.now() / 1000);
    const expiresAt = p.int('expires_at') ?? now + 24 * 3600;
    if (expiresAt < now + 30 * 60 || expiresAt > now + 24 * 3600) throw invalidParam('expires_at', 'The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.', 'parameter_invalid_integer');
    const clientReferenceId = p.str('client_reference_id', { max: 200 });
    const metadata = p.metadata();
    const pid = p.obj('payment_intent_data');
    const piMetadata = pid?.metadata() ?? {};
    const piDescription = pid?.str('description', { max: 1000 });
    pid?.rejectUnknown();
    p.str('customer_email');
    p.str('locale');
    p.rejectUnknown();
    const session: StripeSession = {
      accountId: ctx.account.id,
      id: newObjectId('cs_test', 50), // sandbox_orders.out_trade_no holds 64 characters
      paymentIntentId: newObjectId('pi', 24),
      status: 'open',
      amountRefunded: 0,
      data: {
        created: now, expiresAt, currency: currency!, amountTotal, lineItems, clientReferenceId, metadata, piMetadata, piDescription,
        successUrl, cancelUrl, paymentStatus: 'unpaid', allowedPaymentMethodTypes: methods, piStarted: false, piStatus: 'requires_payment_method',
      },
    };
    await insertSession(deps.db, session);
    return { body: sessionObject(deps.publicUrl, session) };
  }

  async function createRefund(ctx: Ctx): Promise<{ body: unknown }> {
    const p = ctx.params;
    const pi = p.str('payment_intent');
    const charge = p.str('charge');
    if (!pi && !charge) throw missingParam('payment_intent');
    const amount = p.int('amount', { min: 1 });
    const reason = p.str('reason');
    if (reason !== undefined && !['duplicate', 'fraudulent', 'requested_by_customer'].includes(reason)) throw invalidParam('reason', 'Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer', 'parameter_invalid_string');
    const metadata = p.metadata();
    p.rejectUnknown();
    let s = pi ? await findSessionByPaymentIntent(deps.db, ctx.account.id, pi) : undefined;
    if (!pi && charge) {
      const row = await deps.db('sandbox_orders').where({ provider: 'stripe', merchant_id: ctx.account.id }).where('data', 'like', `%"chargeId":"${charge.replace(/[^A-Za-z0-9_]/g, '')}"%`).first('trade_no');
      s = row ? await findSessionByPaymentIntent(deps.db, ctx.account.id, row.trade_no) : undefined;
    }
    if (!s || !s.data.piStarted) throw noSuch(pi ? 'payment_intent' : 'charge', (pi ?? charge)!, pi ? 'payment_intent' : 'charge');
    if (s.data.piStatus !== 'succeeded') {
      throw new StripeWireError(400, 'invalid_request_error', `This PaymentIntent (${s.paymentIntentId}) does not have a successful charge to refund.`, 'charge_not_refundable', 'payment_intent', true);
    }
    const created = Math.floor(Date.now() / 1000);
    const outcome = await recordRefund(deps.db, s, amount, { id: newObjectId('re', 24), sessionId: s.id, status: 'succeeded', created, metadata });
    if (outcome.kind === 'already_refunded') {
      throw new StripeWireError(400, 'invalid_request_error', `Charge ${s.data.chargeId} has already been refunded.`, 'charge_already_refunded', undefined, true);
    }
    if (outcome.kind === 'too_large') {
      throw new StripeWireError(400, 'invalid_request_error', `Refund amount (${amount}) is greater than unrefunded amount on charge (${outcome.left})`, 'amount_too_large', 'amount', true);
    }
    const refund = refundObject(outcome.session, outcome.refund);
    const chargeAfter = (await import('./objects.ts')).chargeObject(outcome.session);
    // Delivered after the answer, as Stripe's are: the refund's events never arrive before it.
    setImmediate(() => void sendEvents(ctx.account, [eventOf('refund.created', refund), eventOf('charge.refunded', chargeAfter)], 'normal', deps.logger));
    return { body: refund };
  }

  async function loadSession(ctx: Ctx, id: string): Promise<StripeSession> {
    const s = await findSession(deps.db, ctx.account.id, id);
    if (!s) throw noSuch('checkout.session', id, 'session');
    return expireIfDue(deps, s);
  }
}

/** Version, auth, parameters and idempotency around one endpoint. */
async function serve(deps: SandboxDeps, req: Request, res: Response, handler: Handler): Promise<void> {
  const send = (status: number, body: unknown) => res.status(status).type('application/json').send(typeof body === 'string' ? body : JSON.stringify(body));
  const version = req.get('stripe-version') ?? KNOWN_VERSIONS[0];
  if (!(KNOWN_VERSIONS as readonly string[]).includes(version)) {
    return void send(400, new StripeWireError(400, 'invalid_request_error', `Invalid Stripe API version: ${version.slice(0, 40)}`, 'api_version_invalid').body());
  }
  const auth = /^Bearer (\S+)$/.exec(req.get('authorization') ?? '')?.[1];
  const account = auth ? await accountByKey(deps.db, deps.masterKey, auth) : undefined;
  if (!account) {
    const shown = auth ? `${auth.slice(0, 8)}${'*'.repeat(Math.max(0, auth.length - 12))}${auth.slice(-4)}` : '';
    return void send(401, { error: { type: 'invalid_request_error', message: auth ? `Invalid API Key provided: ${shown}` : 'You did not provide an API key.' } });
  }
  const raw = typeof req.body === 'string' ? req.body : '';
  const query = req.originalUrl.split('?')[1] ?? '';
  let params: Params;
  try {
    params = new Params(parseForm(req.method === 'GET' ? query : raw));
  } catch (err) {
    if (err instanceof StripeWireError) return void send(err.status, err.body());
    throw err;
  }
  const key = req.method === 'POST' ? req.get('idempotency-key') : undefined;
  if (key !== undefined) {
    if (key.length > 255) return void send(400, invalidParam('Idempotency-Key', 'Idempotency keys can be at most 255 characters long.').body());
    const hash = crypto.createHash('sha256').update(`${req.method} ${req.path}\n${raw}`).digest('hex');
    const claim = await claimIdempotencyKey(deps.db, account.id, key, hash);
    if (claim.kind === 'mismatch') {
      return void send(400, new StripeWireError(400, 'idempotency_error', `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key.slice(0, 80)}' if you meant to execute a different request.`, 'idempotency_key_in_use').body());
    }
    if (claim.kind === 'in_progress') {
      return void send(409, new StripeWireError(409, 'idempotency_error', 'There is currently another in-progress request using this Idempotent Key. Please try again later.', 'idempotency_key_in_use').body());
    }
    if (claim.kind === 'replay') {
      res.set('Idempotent-Replayed', 'true');
      return void send(claim.status, claim.body);
    }
  }
  let status: number;
  let body: string;
  try {
    const out = await handler({ deps, account, version, params }, req);
    status = out.status ?? 200;
    body = JSON.stringify(out.body);
  } catch (err) {
    if (!(err instanceof StripeWireError)) {
      if (key !== undefined) await releaseIdempotencyKey(deps.db, account.id, key);
      throw err;
    }
    if (key !== undefined && !err.executed) await releaseIdempotencyKey(deps.db, account.id, key);
    if (key !== undefined && err.executed) await saveIdempotentAnswer(deps.db, account.id, key, err.status, JSON.stringify(err.body()));
    return void send(err.status, err.body());
  }
  if (key !== undefined) await saveIdempotentAnswer(deps.db, account.id, key, status, body);
  send(status, body);
}
