/**
 * The simulated PayPal REST API: the OAuth token endpoint (Basic auth), Orders v2 (create, get,
 * capture), Payments v2 (get capture, refund, get refund), Transaction Search (statement.ts),
 * the webhook certificate and the verify-webhook-signature postback. Bearer tokens are checked;
 * POSTs honour PayPal-Request-Id (2xx answers replayed: 6 h for orders, 45 days for refunds),
 * Prefer and PayPal-Mock-Response.
 */
import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { SandboxDeps } from '../types.ts';
import { GATEWAY_URL_RULE, isCashierUrl } from '../gateway-urls.ts';
import { verifyTransmission } from '../../channels/paypal/sign.ts';
import {
  findAnswer, findCapture, findCaptureOfOrder, findMerchant, findMerchantByCertId, findMerchantByClientId, findOrder, findRefund, insertOrder,
  merchantOfToken, recordCapture, recordRefund, storeAnswer, storeToken, transitionOrder,
  type SandboxCapture, type SandboxMerchant, type SandboxOrder, type SandboxRefund,
} from './store.ts';
import { buildEvent, newEventId, sendEvent } from './webhooks.ts';
import { transactionSearch } from './statement.ts';
import {
  base, businessError, captureJson, isAnswer, moneyUnits, newObjectId, notFound, nowSeconds, orderJson, paypalSandboxTiming, rawMember, refundJson,
  upperId, validationError, valueOf, type Answer,
} from './wire.ts';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => Boolean(v) && typeof v === 'object' && !Array.isArray(v);

export function createRestRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  const b = base(deps.publicUrl);

  router.post('/v1/oauth2/token', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const merchant = await basicAuth(deps, req);
    if (!merchant) return void res.status(401).json({ error: 'invalid_client', error_description: 'Client Authentication failed' });
    if (req.body?.grant_type !== 'client_credentials') return void res.status(400).json({ error: 'unsupported_grant_type', error_description: 'Grant Type is NULL or not client_credentials' });
    const token = `A21AA${crypto.randomBytes(40).toString('base64url')}`;
    await storeToken(deps.db, merchant.merchantId, token, nowSeconds() + paypalSandboxTiming.tokenLifetimeS);
    res.json({ scope: 'https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund', access_token: token, token_type: 'Bearer', app_id: `APP-${upperId(17)}`, expires_in: paypalSandboxTiming.tokenLifetimeS, nonce: `${new Date().toISOString()}${crypto.randomBytes(16).toString('base64url')}` });
  });

  router.get('/v1/notifications/certs/:certId', async (req, res) => {
    const merchant = await findMerchantByCertId(deps.db, deps.masterKey, String(req.params.certId));
    if (!merchant) return void reply(res, notFound('certificate'));
    res.type('application/x-pem-file').send(merchant.certificate);
  });

  // Everything below needs a bearer token.
  const api = express.Router();
  api.use(express.raw({ type: () => true, limit: '64kb' }));
  api.use(async (req, res, next) => {
    const m = /^Bearer (\S{10,200})$/.exec(req.get('authorization') ?? '');
    const merchantId = m ? await merchantOfToken(deps.db, m[1]!) : undefined;
    const merchant = merchantId ? await findMerchant(deps.db, deps.masterKey, merchantId) : undefined;
    if (!merchant) return void res.status(401).json({ error: 'invalid_token', error_description: 'Token signature verification failed' });
    res.locals.merchant = merchant;
    res.locals.raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    next();
  });

  /** Runs a POST with its PayPal-Request-Id: a 2xx answer is stored and replayed for the same request id and body. */
  const post = (keepS: number, fn: (m: SandboxMerchant, body: Json, req: Request) => Promise<Answer>) => async (req: Request, res: Response) => {
    const merchant = res.locals.merchant as SandboxMerchant;
    const raw = res.locals.raw as string;
    const requestId = req.get('paypal-request-id');
    if (requestId !== undefined && (requestId.length < 1 || requestId.length > 108)) return reply(res, validationError('PayPal-Request-Id', 'INVALID_STRING_LENGTH', 'PayPal-Request-Id is at most 108 characters.'));
    const digest = crypto.createHash('sha256').update(`${req.path}\n${raw}`).digest('hex');
    if (requestId) {
      const stored = await findAnswer(deps.db, merchant.merchantId, requestId, keepS);
      if (stored && stored.digest === digest) return reply(res, { status: stored.status, body: JSON.parse(stored.body) }, req);
    }
    let body: Json = {};
    if (raw.trim()) {
      if (!req.is('application/json')) return reply(res, validationError('Content-Type', 'INVALID_PARAMETER_SYNTAX', 'Content-Type must be application/json.'));
      try {
        const parsed = JSON.parse(raw) as unknown;
        if (!isObject(parsed)) throw new SyntaxError('not an object');
        body = parsed;
      } catch {
        return reply(res, validationError('', 'MALFORMED_REQUEST_JSON', 'The request JSON is not well formed.'));
      }
    }
    const mocked = mockedIssue(req);
    const a = mocked ? businessError(mocked, `Mocked by PayPal-Mock-Response: ${mocked}.`) : await fn(merchant, body, req);
    if (requestId && a.status >= 200 && a.status < 300) await storeAnswer(deps.db, merchant.merchantId, requestId, { digest, status: a.status, body: JSON.stringify(a.body) });
    reply(res, a, req);
  };
  const get = (fn: (m: SandboxMerchant, id: string) => Promise<Answer>) => async (req: Request, res: Response) => reply(res, await fn(res.locals.merchant as SandboxMerchant, String(req.params.id)));

  api.post('/v2/checkout/orders', post(6 * 3600, (m, body) => createOrder(deps, b, m, body)));
  api.get('/v2/checkout/orders/:id', get(async (m, id) => {
    const order = await current(deps, id, m);
    return order ? { status: 200, body: orderJson(b, order, await findCaptureOfOrder(deps.db, order.id)) } : notFound('order');
  }));
  api.post('/v2/checkout/orders/:id/capture', post(6 * 3600, (m, _body, req) => captureOrder(deps, b, m, String(req.params.id))));
  api.get('/v2/payments/captures/:id', get(async (m, id) => {
    const c = await findCapture(deps.db, id);
    return c && c.merchantId === m.merchantId ? { status: 200, body: captureJson(b, c) } : notFound('capture');
  }));
  api.post('/v2/payments/captures/:id/refund', post(45 * 86400, (m, body, req) => refundCapture(deps, b, m, String(req.params.id), body)));
  api.get('/v2/payments/refunds/:id', get(async (m, id) => {
    const r = await findRefund(deps.db, id);
    return r && r.merchantId === m.merchantId ? { status: 200, body: refundJson(b, r) } : notFound('refund');
  }));
  // Transaction Search (the day's statement, statement.ts).
  api.get('/v1/reporting/transactions', async (req, res) => reply(res, await transactionSearch(deps, res.locals.merchant as SandboxMerchant, req.query as Record<string, unknown>)));
  api.post('/v1/notifications/verify-webhook-signature', async (req, res) => reply(res, await verifyPostback(deps, res.locals.merchant as SandboxMerchant, res.locals.raw as string)));
  api.use((_req, res) => reply(res, notFound('endpoint at the simulator')));
  router.use(api);
  return router;
}

function reply(res: Response, a: Answer, req?: Request): void {
  res.set('paypal-debug-id', String(a.body.debug_id ?? crypto.randomBytes(7).toString('hex')));
  // Prefer: return=minimal (the default) answers id, status and links only.
  const minimal = req && a.status >= 200 && a.status < 300 && !/return=representation/i.test(req.get('prefer') ?? '') && 'id' in a.body;
  res.status(a.status).json(minimal ? { id: a.body.id, status: a.body.status, links: a.body.links } : a.body);
}

/** PayPal-Mock-Response: {"mock_application_codes":"INSTRUMENT_DECLINED"} (PayPal's sandbox negative testing). */
function mockedIssue(req: Request): string | undefined {
  const header = req.get('paypal-mock-response');
  if (!header) return undefined;
  try {
    const code = (JSON.parse(header) as { mock_application_codes?: unknown }).mock_application_codes;
    return typeof code === 'string' && /^[A-Z_]{3,64}$/.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

async function basicAuth(deps: SandboxDeps, req: Request): Promise<SandboxMerchant | undefined> {
  const m = /^Basic ([A-Za-z0-9+/=]{4,600})$/.exec(req.get('authorization') ?? '');
  if (!m) return undefined;
  const [id, secret] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':') as [string, string?];
  const merchant = await findMerchantByClientId(deps.db, deps.masterKey, id);
  if (!merchant || secret === undefined) return undefined;
  const a = Buffer.from(secret);
  const e = Buffer.from(merchant.clientSecret);
  return a.length === e.length && crypto.timingSafeEqual(a, e) ? merchant : undefined;
}
export { basicAuth };

/** The order as it stands now: an order past its approval or capture window is voided first. */
export async function current(deps: SandboxDeps, id: string, merchant?: SandboxMerchant): Promise<SandboxOrder | undefined> {
  const order = await findOrder(deps.db, id);
  if (!order || (merchant && order.merchantId !== merchant.merchantId)) return undefined;
  const t = nowSeconds();
  const waiting = order.status === 'CREATED' || order.status === 'PAYER_ACTION_REQUIRED';
  const overdue = (waiting && t > order.data.createdAt + paypalSandboxTiming.approvalWindowS)
    || (order.status === 'APPROVED' && t > (order.data.approvedAt ?? order.data.createdAt) + paypalSandboxTiming.captureWindowS);
  if (overdue && (await transitionOrder(deps.db, order, 'VOIDED', order.data))) return { ...order, status: 'VOIDED' };
  return overdue ? findOrder(deps.db, id) : order;
}

// --- create ------------------------------------------------------------------------------------

const text = (obj: Json, key: string, field: string, max: number): string | undefined | Answer => {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || [...v].length < 1 || [...v].length > max) return validationError(field, 'INVALID_STRING_LENGTH', `The value of a field is either too short or too long (1–${max}).`, v);
  return v;
};

const ENUMS: Record<string, string[]> = {
  user_action: ['CONTINUE', 'PAY_NOW'],
  shipping_preference: ['GET_FROM_FILE', 'NO_SHIPPING', 'SET_PROVIDED_ADDRESS'],
  landing_page: ['LOGIN', 'GUEST_CHECKOUT', 'NO_PREFERENCE'],
  payment_method_preference: ['UNRESTRICTED', 'IMMEDIATE_PAYMENT_REQUIRED'],
};

async function createOrder(deps: SandboxDeps, b: string, merchant: SandboxMerchant, body: Json): Promise<Answer> {
  if (body.intent !== 'CAPTURE') {
    return body.intent === 'AUTHORIZE'
      ? businessError('INTENT_NOT_SUPPORTED', 'The simulator takes intent CAPTURE only.')
      : validationError('/intent', body.intent === undefined ? 'MISSING_REQUIRED_PARAMETER' : 'INVALID_PARAMETER_VALUE', 'intent must be CAPTURE or AUTHORIZE.', body.intent);
  }
  const units = body.purchase_units;
  if (!Array.isArray(units) || units.length < 1 || units.length > 10) return validationError('/purchase_units', 'INVALID_ARRAY_MAX_ITEMS', 'purchase_units holds 1 to 10 items.');
  if (units.length > 1) return businessError('MULTIPLE_PURCHASE_UNITS_NOT_SUPPORTED', 'The simulator takes one purchase unit.');
  const unit = units[0];
  if (!isObject(unit)) return validationError('/purchase_units/@reference_id==\'default\'', 'MISSING_REQUIRED_PARAMETER', 'A purchase unit is an object.');
  const f = (k: string) => `/purchase_units/@reference_id=='default'/${k}`;
  const fields: Record<string, string | undefined> = {};
  for (const [k, max] of [['reference_id', 256], ['description', 127], ['custom_id', 127], ['invoice_id', 127], ['soft_descriptor', 22]] as const) {
    const v = text(unit, k, f(k), max);
    if (isAnswer(v)) return v;
    fields[k] = v;
  }
  const money = moneyUnits(unit.amount, f('amount'));
  if (isAnswer(money)) return money;

  let returnUrl: string | undefined;
  let cancelUrl: string | undefined;
  let experience = false;
  const ctx = isObject(body.payment_source) && isObject(body.payment_source.paypal) ? body.payment_source.paypal.experience_context : undefined;
  const legacy = body.application_context;
  for (const [where, c] of [['/payment_source/paypal/experience_context', ctx], ['/application_context', legacy]] as const) {
    if (c === undefined) continue;
    if (!isObject(c)) return validationError(where, 'INVALID_PARAMETER_SYNTAX', 'must be an object');
    for (const [k, allowed] of Object.entries(ENUMS)) {
      if (c[k] !== undefined && !allowed.includes(String(c[k]))) return validationError(`${where}/${k}`, 'INVALID_PARAMETER_VALUE', `must be one of ${allowed.join(', ')}`, c[k]);
    }
    for (const k of ['return_url', 'cancel_url'] as const) {
      const v = c[k];
      if (v === undefined) continue;
      // The simulator's one merchant is this gateway: payers go back to its cashier only (gateway-urls.ts).
      if (typeof v !== 'string' || v.length > 2048 || !isCashierUrl(deps.publicUrl, v, 'back')) return validationError(`${where}/${k}`, 'INVALID_PARAMETER_VALUE', `${k} ${GATEWAY_URL_RULE.back}`, v);
      if (k === 'return_url') returnUrl = v;
      else cancelUrl = v;
    }
    if (c === ctx) experience = true;
  }
  const t = nowSeconds();
  const order: SandboxOrder = {
    id: newObjectId(),
    merchantId: merchant.merchantId,
    status: experience ? 'PAYER_ACTION_REQUIRED' : 'CREATED',
    data: {
      currency: money.currency, value: money.value, referenceId: fields.reference_id ?? 'default', invoiceId: fields.invoice_id, customId: fields.custom_id,
      description: fields.description, returnUrl, cancelUrl, experience, createdAt: t, updatedAt: t,
    },
  };
  if (!(await insertOrder(deps.db, order))) return businessError('DUPLICATE_INVOICE_ID', 'Duplicate Invoice ID detected. To avoid a potential duplicate transaction your account setting requires that Invoice Id be unique for each transaction.');
  return { status: 201, body: orderJson(b, order) };
}

// --- capture -------------------------------------------------------------------------------------

async function captureOrder(deps: SandboxDeps, b: string, merchant: SandboxMerchant, id: string): Promise<Answer> {
  const order = await current(deps, id, merchant);
  if (!order) return notFound('order');
  if (order.status === 'COMPLETED') return businessError('ORDER_ALREADY_CAPTURED', 'Order already captured. If \'intent=CAPTURE\' only one capture per order is allowed.');
  if (order.status === 'VOIDED') return businessError('ORDER_EXPIRED', 'The order has expired (not approved or not captured within 3 hours).');
  if (order.status !== 'APPROVED') return businessError('ORDER_NOT_APPROVED', 'Payer has not yet approved the Order for payment.');
  const units = moneyUnits({ currency_code: order.data.currency, value: order.data.value }, 'amount') as { units: number };
  const t = nowSeconds();
  const funding = order.data.funding ?? 'complete';
  const capture: SandboxCapture = {
    id: newObjectId(), merchantId: merchant.merchantId, orderId: order.id,
    status: funding === 'decline' ? 'DECLINED' : funding === 'pending' ? 'PENDING' : 'COMPLETED',
    amount: units.units, amountRefunded: 0,
    data: { currency: order.data.currency, value: order.data.value, invoiceId: order.data.invoiceId, customId: order.data.customId, createdAt: t, updatedAt: t, reason: funding === 'pending' ? 'PENDING_REVIEW' : undefined },
  };
  if (!(await recordCapture(deps.db, order, capture))) {
    // A concurrent capture won, or the order moved on: answer as PayPal does for a second capture.
    const now = await current(deps, id, merchant);
    return now?.status === 'COMPLETED' ? businessError('ORDER_ALREADY_CAPTURED', 'Order already captured.') : businessError('ORDER_NOT_APPROVED', 'Payer has not yet approved the Order for payment.');
  }
  const done: SandboxOrder = { ...order, status: 'COMPLETED', data: { ...order.data, captureId: capture.id, updatedAt: t } };
  // The capture's own event follows the answer, as PayPal's does; a dropped approval drops it too.
  const mode = order.data.notifyMode === 'drop' ? 'drop' : 'normal';
  const type = capture.status === 'COMPLETED' ? 'PAYMENT.CAPTURE.COMPLETED' : capture.status === 'PENDING' ? 'PAYMENT.CAPTURE.PENDING' : 'PAYMENT.CAPTURE.DECLINED';
  setImmediate(() => void sendEvent(b, merchant, buildEvent(b, newEventId(), type, 'capture', captureJson(b, capture)), mode, deps.logger));
  return { status: 201, body: orderJson(b, done, capture) };
}

// --- refunds -------------------------------------------------------------------------------------

async function refundCapture(deps: SandboxDeps, b: string, merchant: SandboxMerchant, id: string, body: Json): Promise<Answer> {
  const capture = await findCapture(deps.db, id);
  if (!capture || capture.merchantId !== merchant.merchantId) return notFound('capture');
  if (capture.status === 'PENDING') return businessError('PENDING_CAPTURE', 'Cannot initiate a refund as the capture is pending.');
  if (capture.status === 'DECLINED') return businessError('CAPTURE_NOT_COMPLETED', 'The capture was declined: nothing to refund.');
  if (capture.status === 'REFUNDED') return businessError('CAPTURE_FULLY_REFUNDED', 'The capture has already been fully refunded.');
  const fields: Record<string, string | undefined> = {};
  for (const [k, max] of [['custom_id', 127], ['invoice_id', 127], ['note_to_payer', 255]] as const) {
    const v = text(body, k, `/${k}`, max);
    if (isAnswer(v)) return v;
    fields[k] = v;
  }
  let amount = capture.amount - capture.amountRefunded;
  if (body.amount !== undefined) {
    const money = moneyUnits(body.amount, '/amount');
    if (isAnswer(money)) return money;
    if (money.currency !== capture.data.currency) return businessError('REFUND_CAPTURE_CURRENCY_MISMATCH', `Refund must be in the currency of the capture (${capture.data.currency}).`);
    amount = money.units;
  }
  const refund: SandboxRefund = {
    id: newObjectId(), merchantId: merchant.merchantId, captureId: capture.id, status: 'COMPLETED', amount,
    data: { currency: capture.data.currency, value: valueOf(amount, capture.data.currency), customId: fields.custom_id, invoiceId: fields.invoice_id, note: fields.note_to_payer, createdAt: nowSeconds() },
  };
  const outcome = await recordRefund(deps.db, capture, refund);
  if (outcome.kind === 'fully_refunded') return businessError('CAPTURE_FULLY_REFUNDED', 'The capture has already been fully refunded.');
  if (outcome.kind === 'exceeds') return businessError('REFUND_AMOUNT_EXCEEDED', `The refund amount must be less than or equal to the capture amount that has not yet been refunded (${valueOf(outcome.left, capture.data.currency)}).`);
  setImmediate(() => void sendEvent(b, merchant, buildEvent(b, newEventId(), 'PAYMENT.CAPTURE.REFUNDED', 'refund', refundJson(b, refund)), 'normal', deps.logger));
  return { status: 201, body: refundJson(b, refund) };
}

// --- verify-webhook-signature -------------------------------------------------------------------

/** The postback: webhook_event is taken as the raw bytes the caller sent, as PayPal hashes them. */
async function verifyPostback(deps: SandboxDeps, merchant: SandboxMerchant, raw: string): Promise<Answer> {
  let body: Json;
  try {
    body = JSON.parse(raw) as Json;
  } catch {
    return validationError('', 'MALFORMED_REQUEST_JSON', 'The request JSON is not well formed.');
  }
  for (const k of ['auth_algo', 'cert_url', 'transmission_id', 'transmission_sig', 'transmission_time', 'webhook_id']) {
    if (typeof body[k] !== 'string') return validationError(`/${k}`, 'MISSING_REQUIRED_PARAMETER', 'A required field / parameter is missing.');
  }
  const event = rawMember(raw, 'webhook_event');
  if (event === undefined || !isObject(body.webhook_event)) return validationError('/webhook_event', 'MISSING_REQUIRED_PARAMETER', 'A required field / parameter is missing.');
  if (body.webhook_id !== merchant.webhookId) return { status: 200, body: { verification_status: 'FAILURE' } };
  try {
    const u = new URL(base(deps.publicUrl));
    await verifyTransmission({
      headers: {
        'paypal-transmission-id': String(body.transmission_id), 'paypal-transmission-time': String(body.transmission_time), 'paypal-transmission-sig': String(body.transmission_sig),
        'paypal-cert-url': String(body.cert_url), 'paypal-auth-algo': String(body.auth_algo),
      },
      body: Buffer.from(event, 'utf8'),
      webhookId: merchant.webhookId,
      certRule: { kind: 'origin', origin: u.origin, pathPrefix: `${u.pathname}/v1/notifications/certs/` },
    });
    return { status: 200, body: { verification_status: 'SUCCESS' } };
  } catch {
    return { status: 200, body: { verification_status: 'FAILURE' } };
  }
}

/** Approves a waiting order for the payer (the payer page and act()). */
export async function approveOrder(deps: SandboxDeps, order: SandboxOrder, funding: 'complete' | 'decline' | 'pending', notifyMode: string): Promise<{ ok: true; order: SandboxOrder; changed: boolean } | { ok: false; code: string; message: string }> {
  if (order.status === 'APPROVED') return { ok: true, order, changed: false };
  if (order.status === 'COMPLETED') return { ok: false, code: 'ORDER_ALREADY_CAPTURED', message: 'This order is paid already' };
  if (order.status === 'VOIDED') return { ok: false, code: 'ORDER_EXPIRED', message: 'This order has expired' };
  const data = { ...order.data, approvedAt: nowSeconds(), payerId: upperId(13), funding, notifyMode, eventIds: { ...order.data.eventIds, 'CHECKOUT.ORDER.APPROVED': newEventId() } };
  if (await transitionOrder(deps.db, order, 'APPROVED', data)) return { ok: true, order: { ...order, status: 'APPROVED', data }, changed: true };
  const now = await findOrder(deps.db, order.id);
  return now ? approveOrder(deps, now, funding, notifyMode) : { ok: false, code: 'RESOURCE_NOT_FOUND', message: 'No such order' };
}

/** CHECKOUT.ORDER.APPROVED for an approved order. */
export function approvedEvent(b: string, order: SandboxOrder) {
  return buildEvent(b, order.data.eventIds?.['CHECKOUT.ORDER.APPROVED'] ?? newEventId(), 'CHECKOUT.ORDER.APPROVED', 'checkout-order', orderJson(b, order));
}
