/**
 * The hosted payer page at session.url (`/sandbox/stripe/pay/<session>`): Apple Pay, card,
 * 3-D Secure (a challenge step, then pay), decline (the buyer stays on the page) and cancel
 * (back to cancel_url). A paid session redirects to success_url with the session id substituted.
 * The session id in the URL is the page's credential, as on checkout.stripe.com.
 */
import express, { type Request, type Response } from 'express';
import type { SandboxDeps } from '../types.ts';
import { notifyModeOf } from '../notify-delivery.ts';
import { findSessionById, type StripeSession } from './store.ts';
import { buyerAction, expireIfDue, type BuyerAction } from './session.ts';
import { fromStripeAmount } from '../../channels/stripe/transform.ts';
import { toDecimalString } from '../../payments/currencies.ts';

const ACTIONS = new Set<string>(['pay', 'apple_pay', 'decline', '3ds', '3ds_pay', '3ds_fail', 'cancel']);

export function createStripePagesRouter(deps: SandboxDeps): express.Router {
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '8kb' }));
  r.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  r.get('/pay/:id', async (req, res) => {
    const s = await load(String(req.params.id));
    if (!s) return result(res, 404, 'error', 'No such Checkout Session', 'resource_missing', 'This payment link is not valid.');
    if (s.status !== 'open') return closedPage(res, s);
    const challenge = s.data.piStatus === 'requires_action';
    page(req, res, s, challenge ? '3ds' : 'pay', String(req.query.notify ?? 'normal'));
  });

  r.post('/pay/:id', async (req, res) => {
    const wantsJson = /application\/json/i.test(req.get('accept') ?? '');
    const action = String(req.body?.action ?? '');
    const mode = notifyModeOf(req.body?.notify);
    const s = await load(String(req.params.id));
    const refuse = (status: number, code: string, message: string) =>
      wantsJson ? res.status(status).json({ ok: false, error: { code, message } }) : result(res, status, 'error', 'Something is wrong', code, message);
    if (!s) return refuse(404, 'resource_missing', 'No such Checkout Session');
    if (!ACTIONS.has(action)) return refuse(400, 'invalid_action', 'action must be pay, apple_pay, decline, 3ds or cancel');
    if (action === 'cancel') {
      // The buyer leaves; the session stays open until it expires or is expired.
      if (wantsJson) return res.json({ ok: true, status: s.status, redirect: s.data.cancelUrl ?? null });
      return s.data.cancelUrl ? res.redirect(303, s.data.cancelUrl) : result(res, 200, 'cancelled', 'Cancelled', '', 'You left the payment page.');
    }
    const out = await buyerAction(deps, s, action as BuyerAction, mode);
    if (!out.ok) return refuse(out.status, out.code, out.message);
    if (wantsJson) return res.json({ ok: true, status: out.session.status, payment_status: out.session.data.paymentStatus, redirect: out.redirect ?? null, challenge: Boolean(out.challenge) });
    if (out.redirect) return res.redirect(303, out.redirect);
    if (out.challenge) return page(req, res, out.session, '3ds', mode);
    return page(req, res, out.session, 'pay', mode, out.session.data.lastPaymentError);
  });
  return r;

  async function load(id: string): Promise<StripeSession | undefined> {
    if (!/^cs_test_[A-Za-z0-9]{10,80}$/.test(id)) return undefined;
    const s = await findSessionById(deps.db, id);
    return s ? expireIfDue(deps, s) : undefined;
  }
}

function page(req: Request, res: Response, s: StripeSession, view: 'pay' | '3ds', notify: string, error?: { code: string; message: string }): void {
  const currency = s.data.currency.toUpperCase();
  const amount = fromStripeAmount(s.data.amountTotal, currency);
  res.render('sandbox/stripe-checkout', {
    cspNonce: res.locals.cspNonce ?? '',
    view,
    merchant: 'Checkstand sandbox merchant',
    subject: s.data.lineItems[0]?.name ?? '',
    amount,
    amountText: `${currency} ${toDecimalString(amount, currency)}`,
    actionUrl: `${req.baseUrl}/pay/${s.id}`,
    notify,
    error,
    title: '', kind: '', code: '', message: '', link: '',
  });
}

function closedPage(res: Response, s: StripeSession): void {
  const paid = s.status === 'complete';
  result(res, 409, paid ? 'paid' : 'error', paid ? 'Already paid' : 'Session expired', paid ? '' : 'session_expired',
    paid ? 'This Checkout Session is complete.' : 'This Checkout Session has expired.', paid ? s.data.successUrl.replace('{CHECKOUT_SESSION_ID}', s.id) : s.data.cancelUrl);
}

function result(res: Response, status: number, kind: string, title: string, code: string, message: string, link?: string): void {
  res.status(status).render('sandbox/stripe-checkout', {
    cspNonce: res.locals.cspNonce ?? '', view: 'result', merchant: 'Checkstand sandbox merchant', kind, title, code, message, link: link ?? '',
  });
}
