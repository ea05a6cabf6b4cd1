/**
 * The payer's side of the PayPal simulator: the approval page at /checkoutnow?token=<order id>
 * (pay, pay with the capture declined, pay with the capture pending, cancel), the action its
 * buttons and act() post to, and sandbox controls (Basic-authenticated with the REST app's
 * credentials) that settle a pending capture or revoke the merchant's tokens.
 */
import express, { type Response } from 'express';
import type { SandboxDeps } from '../types.ts';
import { notifyModeOf } from '../notify-delivery.ts';
import { withQuery } from '../../channels/paypal/transform.ts';
import { findCapture, findMerchant, revokeTokens, settleCapture } from './store.ts';
import { approveOrder, approvedEvent, basicAuth, current } from './api.ts';
import { buildEvent, newEventId, sendEvent } from './webhooks.ts';
import { base, captureJson } from './wire.ts';

const FUNDING = { pay: 'complete', fail: 'decline', 'pay-pending': 'pending' } as const;
type PayAction = keyof typeof FUNDING;

export function createPayerRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  const b = base(deps.publicUrl);
  const form = [express.urlencoded({ extended: false, limit: '16kb' }), express.json({ limit: '16kb' })];

  router.get('/checkoutnow', async (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token : '';
    const order = await current(deps, token);
    if (!order) return renderResult(res, 404, 'error', { code: 'INVALID_TOKEN', message: 'This PayPal checkout link is not valid.' });
    if (order.status === 'VOIDED') return renderResult(res, 409, 'error', { code: 'ORDER_EXPIRED', message: 'This order has expired.' });
    if (order.status === 'COMPLETED') return renderResult(res, 409, 'paid', { message: 'This order is paid already.' });
    res.render('sandbox/paypal-checkout', {
      cspNonce: res.locals.cspNonce ?? '',
      actionUrl: `${req.baseUrl}/payer/action`,
      token: order.id,
      merchantId: order.merchantId,
      description: order.data.description ?? '',
      invoiceId: order.data.invoiceId ?? '',
      amount: `${order.data.value} ${order.data.currency}`,
      approved: order.status === 'APPROVED',
    });
  });

  router.post('/payer/action', ...form, async (req, res) => {
    const wantsJson = Boolean(req.is('application/json')) || /application\/json/i.test(req.get('accept') ?? '');
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
    const field = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '');
    const refuse = (status: number, code: string, message: string) =>
      wantsJson ? res.status(status).json({ ok: false, error: { code, message } }) : renderResult(res, status, 'error', { code, message });
    const order = await current(deps, field('token'));
    const merchant = order && (await findMerchant(deps.db, deps.masterKey, order.merchantId));
    if (!order || !merchant) return refuse(404, 'INVALID_TOKEN', 'No such order at the simulator');
    const action = field('action');
    if (action === 'cancel') {
      const back = order.data.cancelUrl ? withQuery(order.data.cancelUrl, { token: order.id }) : undefined;
      if (wantsJson) return res.json({ ok: true, status: order.status, cancel_url: back ?? null });
      return back ? res.redirect(303, back) : renderResult(res, 200, 'cancelled', { message: 'You cancelled this payment.' });
    }
    if (!(action in FUNDING)) return refuse(400, 'INVALID_ACTION', 'action must be pay, fail, pay-pending or cancel');
    const mode = notifyModeOf(body.notify ?? body.notify_mode, body.notify_delay);
    const approved = await approveOrder(deps, order, FUNDING[action as PayAction], mode);
    if (!approved.ok) return refuse(409, approved.code, approved.message);
    // The approval's webhook; the gateway captures while handling it (then PAYMENT.CAPTURE.* follows).
    if (approved.changed) await sendEvent(b, merchant, approvedEvent(b, approved.order), mode, deps.logger);
    const back = approved.order.data.returnUrl ? withQuery(approved.order.data.returnUrl, { token: order.id, PayerID: approved.order.data.payerId ?? '' }) : undefined;
    if (wantsJson) return res.json({ ok: true, status: approved.order.status, return_url: back ?? null });
    return back ? res.redirect(303, back) : renderResult(res, 200, 'paid', { message: 'Approved. The merchant captures the payment now.' });
  });

  // Sandbox controls, authenticated as the REST app.
  router.post('/controls/captures/:id/:outcome', async (req, res) => {
    const merchant = await basicAuth(deps, req);
    if (!merchant) return void res.status(401).json({ error: 'invalid_client', error_description: 'Client Authentication failed' });
    const outcome = req.params.outcome === 'complete' ? 'COMPLETED' : req.params.outcome === 'decline' ? 'DECLINED' : undefined;
    const capture = await findCapture(deps.db, String(req.params.id));
    if (!outcome || !capture || capture.merchantId !== merchant.merchantId) return void res.status(404).json({ ok: false, error: { code: 'RESOURCE_NOT_FOUND', message: 'No such pending capture (outcome complete or decline)' } });
    if (!(await settleCapture(deps.db, capture, outcome))) return void res.status(409).json({ ok: false, error: { code: 'CAPTURE_NOT_PENDING', message: 'The capture is not pending' } });
    const settled = { ...capture, status: outcome } as typeof capture;
    const type = outcome === 'COMPLETED' ? 'PAYMENT.CAPTURE.COMPLETED' : 'PAYMENT.CAPTURE.DECLINED';
    await sendEvent(b, merchant, buildEvent(b, newEventId(), type, 'capture', captureJson(b, settled)), 'normal', deps.logger);
    res.json({ ok: true, status: outcome });
  });
  router.post('/controls/revoke-tokens', async (req, res) => {
    const merchant = await basicAuth(deps, req);
    if (!merchant) return void res.status(401).json({ error: 'invalid_client', error_description: 'Client Authentication failed' });
    res.json({ ok: true, revoked: await revokeTokens(deps.db, merchant.merchantId) });
  });

  return router;
}

export function renderResult(res: Response, status: number, kind: 'paid' | 'cancelled' | 'error', info: { code?: string; message: string }): void {
  res.status(status).render('sandbox/paypal-result', { cspNonce: res.locals.cspNonce ?? '', kind, code: info.code ?? '', message: info.message });
}
