import express, { Router, type Request, type Response } from 'express';
import QRCode from 'qrcode';
import type { Deps } from '../deps.ts';
import { nowSeconds } from '../crypto.ts';
import { CHANNEL_CODES, type ChannelCode } from '../channels/types.ts';
import { getApp } from '../apps/service.ts';
import { findPaymentByToken, type PaymentRow } from '../payments/repo.ts';
import { minorUnits, startAttempt } from '../payments/service.ts';
import { ApiError } from '../errors.ts';
import { toApiError } from '../http/errors.ts';
import { allowFraming } from '../http/security.ts';
import { formatAmount, messagesFor, pickLang, type Lang } from './i18n.ts';
import {
  channelsFor, checkFormToken, confirmOnReturn, environmentOf, formTokenFor, merchantReturnUrl, stateOf,
} from './service.ts';

const tokenPattern = /^[A-Za-z0-9]{32}$/;

/** The hosted cashier at /pay/:token. No step depends on a cookie (it runs inside cross-site iframes). */
export function createCheckoutRoutes(deps: Deps): Router {
  const r = Router();
  const publicOrigin = new URL(deps.config.publicUrl).origin;

  async function load(req: Request, res: Response): Promise<PaymentRow | undefined> {
    const token = String(req.params.token);
    const payment = tokenPattern.test(token) ? await findPaymentByToken(deps.db, token) : undefined;
    if (!payment) {
      res.status(404);
      render(req, res, 'result', { kind: 'not_found', payment: undefined });
      return undefined;
    }
    const app = await getApp(deps.db, payment.app_id);
    res.locals.appName = app?.name ?? '';
    allowFraming(res, app?.allowedOrigins ?? []);
    res.locals.payment = payment;
    return payment;
  }

  function render(req: Request, res: Response, view: string, locals: Record<string, unknown>) {
    const lang: Lang = pickLang(req.query.lang, req.get('accept-language'));
    const payment = (locals.payment ?? res.locals.payment) as PaymentRow | undefined;
    res.set('Cache-Control', 'no-store');
    res.render(view, {
      lang,
      t: messagesFor(lang),
      otherLang: lang === 'en' ? 'zh-CN' : 'en',
      amountText: payment ? formatAmount(payment.amount, payment.currency, minorUnits(payment.currency)) : '',
      now: nowSeconds(),
      ...locals,
    });
  }

  function showState(req: Request, res: Response, payment: PaymentRow): boolean {
    const state = stateOf(payment);
    if (state === 'open') return false;
    render(req, res, 'result', { kind: state, payment, returnUrl: merchantReturnUrl(payment) });
    return true;
  }

  r.get('/:token', async (req, res) => {
    const payment = await load(req, res);
    if (!payment || showState(req, res, payment)) return;
    const env = environmentOf(req.get('user-agent'));
    render(req, res, 'cashier', {
      payment,
      channels: channelsFor(payment, env),
      formToken: formTokenFor(deps.config.masterKeyBytes, payment.checkout_token),
      error: undefined,
    });
  });

  r.post('/:token/channel', express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    const payment = await load(req, res);
    if (!payment) return;
    // Cookies can't protect this form (cross-site iframes), so: an HMAC-bound token and the Origin.
    const origin = req.get('origin');
    const site = req.get('sec-fetch-site');
    if ((origin && origin !== publicOrigin) || (site && site !== 'same-origin' && site !== 'none') || !checkFormToken(deps.config.masterKeyBytes, payment.checkout_token, req.body?.form_token)) {
      res.status(403);
      return render(req, res, 'result', { kind: 'forbidden', payment });
    }
    if (showState(req, res, payment)) return;
    const env = environmentOf(req.get('user-agent'));
    const offered = channelsFor(payment, env);
    const channel = String(req.body?.channel ?? '') as ChannelCode;
    const again = (status: number, error: string) => {
      res.status(status);
      render(req, res, 'cashier', { payment, channels: offered, formToken: formTokenFor(deps.config.masterKeyBytes, payment.checkout_token), error });
    };
    const t = messagesFor(pickLang(req.query.lang, req.get('accept-language')));
    if (!CHANNEL_CODES.includes(channel) || !offered.includes(channel)) return again(400, t.channel_unavailable);
    let outcome;
    try {
      outcome = await startAttempt(deps, payment, channel, { clientIp: req.ip });
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) deps.logger.error('cashier could not start a payment', { payment_id: payment.id, err });
      return again(apiErr.status >= 500 ? 502 : 400, apiErr.status >= 500 ? t.channel_unavailable : apiErr.message);
    }
    if (!outcome.result.ok) return again(402, `${t.declined}${outcome.result.decline.message}. ${t.try_again}`);
    const action = outcome.result.action;
    switch (action.type) {
      case 'redirect':
        return res.redirect(303, action.url);
      case 'form':
        return render(req, res, 'cashier-form', { payment, action });
      case 'qr': {
        const svg = await QRCode.toString(action.codeUrl, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
        return render(req, res, 'cashier-qr', { payment, svg, channel, codeUrl: action.codeUrl });
      }
      case 'jsapi':
        return render(req, res, 'cashier-form', { payment, action: { type: 'form', url: '', fields: {} } });
    }
  });

  r.get('/:token/return', async (req, res) => {
    const payment = await load(req, res);
    if (!payment) return;
    // The return's parameters only pick which of this payment's own attempts to ask the channel about.
    const orderNo = typeof req.query.out_trade_no === 'string' ? req.query.out_trade_no : undefined;
    await confirmOnReturn(deps, payment, orderNo);
    const fresh = (await findPaymentByToken(deps.db, payment.checkout_token))!;
    const target = merchantReturnUrl(fresh);
    if (fresh.status === 'succeeded' && target) return res.redirect(303, target);
    render(req, res, 'result', { kind: fresh.status === 'succeeded' ? 'succeeded' : fresh.status === 'closed' ? 'closed' : 'pending', payment: fresh, returnUrl: target });
  });

  r.get('/:token/status', async (req, res) => {
    const token = String(req.params.token);
    const payment = tokenPattern.test(token) ? await findPaymentByToken(deps.db, token) : undefined;
    if (!payment) throw new ApiError(404, 'invalid_request_error', 'resource_missing', 'No such checkout.');
    res.set('Cache-Control', 'no-store').json({ status: stateOf(payment), return_url: payment.status === 'succeeded' ? merchantReturnUrl(payment) ?? null : null });
  });

  return r;
}
