import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { nowSeconds, timingSafeEqualStr } from '../crypto.ts';
import { CHANNEL_CODES, isAppCode, providerOf, type ChannelCode, type PaymentAction } from '../channels/types.ts';
import { channelFor, sandboxFor } from '../channels/registry.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { getApp, type AppRow } from '../apps/service.ts';
import { findPaymentByToken, listAttempts, type AttemptRow, type PaymentRow } from '../payments/repo.ts';
import { startAttempt, toPaymentObject } from '../payments/service.ts';
import { applyCouponCode, payPendingWithBalance } from '../customers/payments.ts';
import { accountLocals, cashierAccountsOf, type CashierAccounts } from './accounts.ts';
import { ApiError } from '../errors.ts';
import { errorBody, toApiError } from '../http/errors.ts';
import { allowFraming } from '../http/security.ts';
import { declinedText, formatAmount, formatCountdown, messagesFor, pickLang, type Lang } from './i18n.ts';
import {
  attemptNotice, attemptStateOf, channelsFor, checkFormToken, confirmOnReturn, environmentOf, findAttempt, formTokenFor,
  installmentsViewOf, merchantReturnUrl, stateOf, walletsFor, watchAttempt,
} from './service.ts';
import { statusBody, streamStatus } from './status.ts';
import { createPaymentPageCache } from './page-cache.ts';
import { createCashierViews, type CashierView } from './views.ts';
import { qrSvg } from './qr.ts';
import { QR_TTL_S } from '../payments/next-action.ts';
import { recordBrowserReturn } from '../channel-messages/service.ts';

export { QR_TTL_S };

const tokenPattern = /^[A-Za-z0-9]{32}$/;
const QR_CHANNELS: ReadonlySet<ChannelCode> = new Set(['alipay_qr', 'wechat_native']);
const attemptParamPattern = /^att_[A-Za-z0-9]{1,64}$/;

/**
 * The hosted cashier at /pay/:token. No step depends on a cookie (it runs inside cross-site
 * iframes). `limit` guards the steps that reach a channel (placing orders, OAuth, the return's
 * query), `imageLimit` (a budget of its own) the aggregate QR image; plain page views and status
 * reads are not limited.
 */
export function createCheckoutRoutes(deps: Deps, limit: RequestHandler = (_req, _res, next) => next(), imageLimit: RequestHandler = limit): Router {
  const r = Router();
  const publicOrigin = new URL(deps.config.publicUrl).origin;

  const pages = createPaymentPageCache(deps.bus, (token) => findPaymentByToken(deps.db, token));
  const views = createCashierViews();

  /** The payment of this checkout; `view` (page views only) may come from the page cache. */
  async function load(req: Request, res: Response, view = false): Promise<PaymentRow | undefined> {
    const token = String(req.params.token);
    const payment = !tokenPattern.test(token) ? undefined : view ? await pages.get(token) : await findPaymentByToken(deps.db, token);
    if (!payment) {
      res.status(404);
      render(req, res, 'result', { kind: 'not_found', payment: undefined });
      return undefined;
    }
    const app = await getApp(deps.db, payment.app_id);
    res.locals.appName = app?.name ?? '';
    allowFraming(res, app?.allowedOrigins ?? []);
    res.locals.payment = payment;
    res.locals.parentOrigin = parentOriginOf(req, app);
    res.locals.accounts = await cashierAccountsOf(deps, payment);
    return payment;
  }

  /** The embedding page's origin, trusted only when it is one of the app's registered origins. */
  function parentOriginOf(req: Request, app: AppRow | undefined): string | undefined {
    const origin = req.query.parent_origin;
    return req.query.embed === '1' && typeof origin === 'string' && app?.allowedOrigins.includes(origin) ? origin : undefined;
  }

  /** The query string that travels with every cashier link: language and embedding (plus `extra`). */
  function carried(req: Request, res: Response, extra: Record<string, string | undefined> = {}): string {
    const more = Object.entries(extra).filter((e): e is [string, string] => e[1] !== undefined);
    if (req.query.lang === undefined && !res.locals.parentOrigin && !more.length) return '';
    const q = new URLSearchParams();
    if (req.query.lang === 'en' || req.query.lang === 'zh-CN') q.set('lang', req.query.lang);
    if (res.locals.parentOrigin) {
      q.set('embed', '1');
      q.set('parent_origin', res.locals.parentOrigin);
    }
    for (const [k, v] of more) q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  /** The channel choice, telling the payer how `attempt` went when one is named. */
  const choiceUrl = (req: Request, res: Response, payment: PaymentRow, attempt?: AttemptRow) =>
    `/pay/${payment.checkout_token}${carried(req, res, { attempt: attempt?.id })}`;

  /**
   * What a page waiting on `attempt` needs: status URLs that report the attempt too (and keep it
   * queried while watched), and where to go once it ended unpaid.
   */
  const watching = (req: Request, res: Response, payment: PaymentRow, attempt: AttemptRow) => ({
    watchQuery: `?attempt=${attempt.id}`,
    choiceUrl: choiceUrl(req, res, payment, attempt),
  });

  function render(req: Request, res: Response, view: CashierView, locals: Record<string, unknown>) {
    const lang: Lang = pickLang(req.query.lang, req.get('accept-language'));
    const payment = (locals.payment ?? res.locals.payment) as PaymentRow | undefined;
    const otherLang = lang === 'en' ? 'zh-CN' : 'en';
    const query = payment ? carried(req, res) : '';
    const langQuery = new URLSearchParams(query.slice(1));
    langQuery.set('lang', otherLang);
    res.setHeader('Cache-Control', 'no-store');
    const t = messagesFor(lang);
    const now = nowSeconds();
    const html = views(view, {
      appName: res.locals.appName,
      cspNonce: res.locals.cspNonce,
      lang,
      t,
      otherLang,
      langQuery: `?${langQuery}`,
      amountText: payment ? formatAmount(payment.amount, payment.currency, lang) : '',
      countdownText: payment ? formatCountdown(payment.expires_at - now, t) : '',
      parentOrigin: res.locals.parentOrigin,
      query,
      payment,
      ...locals,
    });
    // Sent as a string: Node writes it after the head in one go (res.send would copy it to a Buffer).
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(html));
    res.end(html);
  }

  function showState(req: Request, res: Response, payment: PaymentRow): boolean {
    const state = stateOf(payment);
    if (state === 'open') return false;
    render(req, res, 'result', { kind: state, payment, returnUrl: merchantReturnUrl(payment) });
    return true;
  }

  /** The channel choice; after an attempt that ended unpaid (`came back from`), with a line saying how it went. */
  function renderCashier(req: Request, res: Response, payment: PaymentRow, error?: string, status = 200, cameBackFrom?: AttemptRow) {
    const env = environmentOf(req.get('user-agent'));
    if (status !== 200) res.status(status);
    const t = messagesFor(pickLang(req.query.lang, req.get('accept-language')));
    const notice = cameBackFrom && attemptNotice(cameBackFrom, t);
    // A phone cannot scan its own screen: the aggregate QR code is for desktops.
    const wallets = env === 'desktop' ? walletsFor(payment) : [];
    const accounts = res.locals.accounts as CashierAccounts | undefined;
    render(req, res, 'cashier', {
      payment,
      env,
      channels: channelsFor(payment, env, req.get('user-agent')),
      ...accountLocals(payment, accounts, pickLang(req.query.lang, req.get('accept-language'))),
      installmentsView: installmentsViewOf(payment, t, pickLang(req.query.lang, req.get('accept-language'))),
      walletQr: wallets.length ? { src: `/pay/${payment.checkout_token}/qr.svg`, caption: t[wallets.length > 1 ? 'wallet_qr_both' : `wallet_qr_${wallets[0]}` as const] } : undefined,
      qrChannels: QR_CHANNELS,
      formToken: formTokenFor(deps.config.masterKeyBytes, payment.checkout_token),
      error,
      notice,
      // Not confirmed yet: the page keeps watching, so a late success still moves on and a failure shows.
      ...(notice?.kind === 'pending' ? watching(req, res, payment, cameBackFrom!) : { watchQuery: '', choiceUrl: '' }),
    });
  }

  r.get('/:token', async (req, res) => {
    const payment = await load(req, res, true);
    if (!payment || showState(req, res, payment)) return;
    // ?attempt= names the attempt the payer came back from (a page of ours sends them here with it).
    const cameBackFrom = req.query.attempt === undefined ? undefined : await findAttempt(deps, payment, req.query.attempt);
    if (!cameBackFrom && (await openPlacedStep(req, res, payment))) return;
    renderCashier(req, res, payment, undefined, 200, cameBackFrom);
  });

  /**
   * A payment whose order was placed through the API (create with channel, confirm) opens that
   * order's step at once: the QR view, the redirect, the auto-posted form, the JSAPI page. An
   * in-app order (*_app) cannot be paid in a browser: the usual choice is shown. Returns whether
   * it answered.
   */
  /** Channels whose pages refuse to be framed (hosted Stripe Checkout): opened in the top window only. */
  const TOP_LEVEL_ONLY: ReadonlySet<ChannelCode> = new Set(['card', 'apple_pay']);

  async function openPlacedStep(req: Request, res: Response, payment: PaymentRow): Promise<boolean> {
    if (!payment.next_action || !payment.next_action_attempt_id || payment.next_action.expires_at <= nowSeconds()) return false;
    const action: PaymentAction = payment.next_action.action;
    if (action.type === 'alipay_app' || action.type === 'wechat_app') return false;
    const row = await findAttempt(deps, payment, payment.next_action_attempt_id);
    if (!row || row.status !== 'pending') return false;
    if (action.type === 'redirect' && TOP_LEVEL_ONLY.has(row.channel) && (res.locals.parentOrigin || req.get('sec-fetch-dest') === 'iframe')) {
      // Hosted Stripe Checkout refuses to run in a frame, and a frame may navigate the top window
      // only on a click: the payer gets one button that opens the page there.
      render(req, res, 'cashier-top', { payment, action, channel: row.channel });
    } else if (action.type === 'redirect') {
      res.redirect(303, action.url);
    } else if (action.type === 'form') {
      render(req, res, 'cashier-form', { payment, action });
    } else if (action.type === 'qr') {
      // The QR view finds this order: the newest live QR order of its channel.
      const q = new URLSearchParams(carried(req, res).slice(1));
      q.set('channel', row.channel);
      res.redirect(303, `/pay/${payment.checkout_token}/qr?${q}`);
    } else {
      renderInApp(req, res, payment, row.channel, row, action.params);
    }
    return true;
  }

  r.post('/:token/channel', limit, express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    const payment = await load(req, res);
    if (!payment) return;
    if (!formAllowed(req, payment)) {
      res.status(403);
      return render(req, res, 'result', { kind: 'forbidden', payment });
    }
    if (showState(req, res, payment)) return;
    const t = messagesFor(pickLang(req.query.lang, req.get('accept-language')));
    const channel = String(req.body?.channel ?? '') as ChannelCode;
    if (channel === 'balance') return payWithBalance(req, res, payment);
    const offered = channelsFor(payment, environmentOf(req.get('user-agent')), req.get('user-agent'));
    if (!CHANNEL_CODES.includes(channel) || !offered.includes(channel)) return renderCashier(req, res, payment, t.channel_unavailable, 400);
    // QR codes get a page of their own (reloadable, renewable); the channel order is placed there.
    if (QR_CHANNELS.has(channel)) {
      const q = new URLSearchParams(carried(req, res).slice(1));
      q.set('channel', channel);
      return res.redirect(303, `/pay/${payment.checkout_token}/qr?${q}`);
    }
    if (channel === 'wechat_jsapi') return authorizePayer(req, res, payment, channel);
    const outcome = await attempt(req, res, payment, channel);
    if (!outcome) return;
    const action = outcome.action;
    if (action.type === 'redirect') return res.redirect(303, action.url);
    if (action.type === 'form') return render(req, res, 'cashier-form', { payment, action });
    return renderCashier(req, res, payment, t.channel_unavailable, 400);
  });

  /** Cookies can't protect the cashier's forms (cross-site iframes), so: an HMAC-bound token and the Origin. */
  function formAllowed(req: Request, payment: PaymentRow): boolean {
    const origin = req.get('origin');
    const site = req.get('sec-fetch-site');
    return !((origin && origin !== publicOrigin) || (site && site !== 'same-origin' && site !== 'none') || !checkFormToken(deps.config.masterKeyBytes, payment.checkout_token, req.body?.form_token));
  }

  /** "Pay with balance": offered only when the payment names a customer (accounts.ts); a balance too low re-renders the choice. */
  async function payWithBalance(req: Request, res: Response, payment: PaymentRow) {
    const t = messagesFor(pickLang(req.query.lang, req.get('accept-language')));
    const accounts = res.locals.accounts as CashierAccounts | undefined;
    if (!accounts?.balance) return renderCashier(req, res, payment, t.channel_unavailable, 400);
    try {
      const paid = await payPendingWithBalance(deps, payment, (p) => toPaymentObject(p, deps.config.publicUrl));
      const target = merchantReturnUrl(paid);
      return res.redirect(303, target ?? `/pay/${payment.checkout_token}${carried(req, res)}`);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) throw err;
      deps.logger.warn('cashier balance payment refused', { payment_id: payment.id, code: apiErr.code });
      const fresh = (await findPaymentByToken(deps.db, payment.checkout_token))!;
      if (showState(req, res, fresh)) return;
      res.locals.accounts = await cashierAccountsOf(deps, fresh);
      return renderCashier(req, res, fresh, apiErr.code === 'balance_insufficient' ? t.balance_too_low : t.channel_unavailable, apiErr.status);
    }
  }

  /** The payer's coupon code: re-prices the payment while no channel order exists (customers/payments.ts applyCouponCode). */
  r.post('/:token/coupon', limit, express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    const payment = await load(req, res);
    if (!payment) return;
    if (!formAllowed(req, payment)) {
      res.status(403);
      return render(req, res, 'result', { kind: 'forbidden', payment });
    }
    if (showState(req, res, payment)) return;
    const t = messagesFor(pickLang(req.query.lang, req.get('accept-language')));
    const code = String(req.body?.coupon ?? '').trim();
    try {
      if (!/^[A-Za-z0-9_\-.]{1,64}$/.test(code)) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Not a coupon code.', 'coupon');
      await applyCouponCode(deps, payment, code);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) throw err;
      return renderCashier(req, res, payment, t.coupon_refused, 400);
    }
    // Cached cashier pages of this payment show the old amount: they drop it on this message.
    await deps.bus.publish(`payment:${payment.id}`, 'pending');
    res.redirect(303, choiceUrl(req, res, payment));
  });

  /**
   * In-app payment inside WeChat needs the payer's openid: the OAuth snsapi_base redirect (silent
   * for the payer) brings back a code. The state binds the round trip to this checkout by an HMAC.
   */
  async function authorizePayer(req: Request, res: Response, payment: PaymentRow, channel: ChannelCode) {
    const provider = providerOf(channel);
    const adapter = channelFor(provider)!;
    const cred = await getCredentials(deps, payment.app_id, provider, payment.livemode);
    const back = new URLSearchParams(carried(req, res).slice(1));
    back.set('channel', channel);
    const redirectUri = `${deps.config.publicUrl}/pay/${payment.checkout_token}/authorized?${back}`;
    res.redirect(303, adapter.payerAuthorization!.authorizeUrl(cred, redirectUri, payerState(payment)));
  }

  /** WeChat allows only letters and digits in the OAuth state: the HMAC goes as hex. */
  const payerState = (payment: PaymentRow) =>
    Buffer.from(formTokenFor(deps.config.masterKeyBytes, `payer:${payment.checkout_token}`), 'base64url').toString('hex');

  r.get('/:token/authorized', limit, async (req, res) => {
    const payment = await load(req, res);
    if (!payment || showState(req, res, payment)) return;
    const channel = String(req.query.channel ?? '') as ChannelCode;
    const t = messagesFor(pickLang(req.query.lang, req.get('accept-language')));
    // An in-app code is never the cashier's: refused like an unknown one.
    const adapter = CHANNEL_CODES.includes(channel) && !isAppCode(channel) ? channelFor(providerOf(channel)) : undefined;
    if (!adapter?.payerAuthorization || typeof req.query.state !== 'string' || !timingSafeEqualStr(payerState(payment), req.query.state) || typeof req.query.code !== 'string') {
      res.status(403);
      return render(req, res, 'result', { kind: 'forbidden', payment });
    }
    let openid: string;
    try {
      const cred = await getCredentials(deps, payment.app_id, adapter.provider, payment.livemode);
      openid = await adapter.payerAuthorization.exchangeCode(cred, req.query.code);
    } catch (err) {
      deps.logger.warn('payer authorization failed', { payment_id: payment.id, err });
      return renderCashier(req, res, payment, t.channel_unavailable, 502);
    }
    const placed = await attempt(req, res, payment, channel, openid);
    if (!placed || placed.action.type !== 'jsapi') return;
    renderInApp(req, res, payment, channel, placed.row, placed.action.params);
  });

  /** The page that opens WeChat's payment sheet (getBrandWCPayRequest) with these parameters. */
  function renderInApp(req: Request, res: Response, payment: PaymentRow, channel: ChannelCode, row: AttemptRow, params: Record<string, string>) {
    const sandbox = payment.livemode ? undefined : sandboxFor(deps.config, providerOf(channel));
    // Whatever the sheet answers, the return page asks WeChat and then goes on or offers the choice again.
    const confirmUrl = `/pay/${payment.checkout_token}/return${carried(req, res, { out_trade_no: row.channel_order_no })}`;
    render(req, res, 'cashier-inapp', {
      payment,
      channel,
      params,
      confirmUrl,
      sandboxUrl: sandbox?.inAppPayUrl?.(deps.config.publicUrl, params, `${deps.config.publicUrl}${confirmUrl}`),
      ...watching(req, res, payment, row),
    });
  }

  /** Places the channel order; a decline or a fault re-renders the cashier with a message. */
  async function attempt(req: Request, res: Response, payment: PaymentRow, channel: ChannelCode, openid?: string) {
    const t = messagesFor(pickLang(req.query.lang, req.get('accept-language')));
    try {
      const { attempt: row, result } = await startAttempt(deps, payment, channel, { clientIp: req.ip, openid });
      if (!result.ok) {
        renderCashier(req, res, payment, declinedText(t, result.decline.message), 402);
        return undefined;
      }
      return { row, action: result.action };
    } catch (err) {
      const apiErr = toApiError(err);
      // The API's messages are English and for the merchant ("alipay is not configured for this
      // app in live mode"): the payer gets the cashier's own line, the merchant the log.
      if (apiErr.status >= 500) deps.logger.error('cashier could not start a payment', { payment_id: payment.id, err });
      else deps.logger.warn('cashier could not start a payment', { payment_id: payment.id, code: apiErr.code, message: apiErr.message });
      renderCashier(req, res, payment, t.channel_unavailable, apiErr.status >= 500 ? 502 : 400);
      return undefined;
    }
  }

  /**
   * The aggregate QR code (聚合码): the checkout URL itself, which WeChat opens inside WeChat
   * (JSAPI) and Alipay inside Alipay (WAP). Its bytes never change for a token, so browsers and
   * caches keep it until the payment expires; once the payment cannot be paid it is gone (410).
   */
  r.get('/:token/qr.svg', imageLimit, async (req, res) => {
    const token = String(req.params.token);
    const payment = tokenPattern.test(token) ? await pages.get(token) : undefined;
    if (!payment || stateOf(payment) !== 'open') {
      res.status(payment ? 410 : 404).set('Cache-Control', 'no-store').type('text/plain');
      res.send(payment ? 'This checkout can no longer be paid.\n' : 'No such checkout.\n');
      return;
    }
    const svg = await qrSvg(checkoutUrlOf(payment), { margin: 2, width: 256 });
    res.setHeader('Cache-Control', `public, max-age=${payment.expires_at - nowSeconds()}, immutable`);
    res.setHeader('Content-Type', 'image/svg+xml; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(svg));
    res.end(svg);
  });

  /** The payment's checkout_url, as the API gives it. */
  const checkoutUrlOf = (payment: PaymentRow) => `${deps.config.publicUrl}/pay/${payment.checkout_token}`;

  r.get('/:token/qr', limit, async (req, res) => {
    const payment = await load(req, res);
    if (!payment || showState(req, res, payment)) return;
    const channel = String(req.query.channel ?? '') as ChannelCode;
    if (!QR_CHANNELS.has(channel) || !channelsFor(payment, environmentOf(req.get('user-agent'))).includes(channel)) {
      return renderCashier(req, res, payment, messagesFor(pickLang(req.query.lang, req.get('accept-language'))).channel_unavailable, 400);
    }
    // The no-script refresh names the QR's attempt: once it failed, the payer goes back to the choice.
    const named = req.query.attempt === undefined ? undefined : await findAttempt(deps, payment, req.query.attempt);
    if (named && attemptStateOf(named) === 'failed') return res.redirect(303, choiceUrl(req, res, payment, named));
    let row = await liveQrAttempt(payment, channel);
    if (!row) {
      const placed = await attempt(req, res, payment, channel);
      if (!placed) return;
      row = placed.row;
    }
    const codeUrl = row.action?.type === 'qr' ? row.action.codeUrl : '';
    const svg = await qrSvg(codeUrl);
    const qrExpiresAt = Math.min(payment.expires_at, row.created + QR_TTL_S);
    const sandbox = payment.livemode ? undefined : sandboxFor(deps.config, providerOf(channel));
    render(req, res, 'cashier-qr', {
      payment,
      svg,
      channel,
      qrExpiresAt,
      scanUrl: sandbox ? sandbox.scanUrl?.(deps.config.publicUrl, codeUrl) ?? codeUrl : undefined,
      refreshUrl: `/pay/${payment.checkout_token}/qr${carried(req, res, { channel, attempt: row.id })}`,
      ...watching(req, res, payment, row),
    });
  });

  /**
   * display_qr_code.image_url of the direct API: the attempt's channel QR code as SVG, for the
   * merchant's own page. It takes the checkout token (the payment's only credential a page holds)
   * and one of that payment's attempt ids, and shows only what next_action already carries.
   */
  r.get('/:token/attempts/:attempt/qr.svg', async (req, res) => {
    const token = String(req.params.token);
    const payment = tokenPattern.test(token) && attemptParamPattern.test(String(req.params.attempt)) ? await findPaymentByToken(deps.db, token) : undefined;
    const row = payment && (await findAttempt(deps, payment, req.params.attempt));
    res.set('Cache-Control', 'no-store');
    if (!row || row.action?.type !== 'qr') return void res.status(404).type('text/plain').send('No such QR code.');
    const svg = await qrSvg(row.action.codeUrl);
    // An <img> on the merchant's own site shows it: helmet's same-origin resource policy would block that.
    res.set('Cross-Origin-Resource-Policy', 'cross-origin');
    // The code of an attempt never changes: the browser may keep it while the code lives.
    res.set('Cache-Control', `private, max-age=${Math.max(0, Math.min(payment.expires_at, row.created + QR_TTL_S) - nowSeconds())}`);
    res.type('image/svg+xml').send(svg);
  });

  /** The newest still-payable QR order of this channel; older expired ones are handed to the worker to close. */
  async function liveQrAttempt(payment: PaymentRow, channel: ChannelCode): Promise<AttemptRow | undefined> {
    const now = nowSeconds();
    const open = (await listAttempts(deps.db, payment.id)).filter((a) => a.channel === channel && a.status === 'pending' && a.action?.type === 'qr');
    const live = open.filter((a) => a.created + QR_TTL_S > now);
    const stale = open.filter((a) => !live.includes(a)).map((a) => a.id);
    if (stale.length) {
      await deps.db('payment_attempts').whereIn('id', stale).where({ status: 'pending' }).update({ status: 'closing', next_query_at_ms: Date.now(), updated_ms: Date.now() });
    }
    return live[live.length - 1];
  }

  /**
   * The browser is back from the channel: by a GET (Alipay, PayPal) or by a cross-site form POST
   * (UnionPay's frontUrl), which carries no cookie and no form token; the signature it may carry
   * is not needed, since nothing here is trusted: the channel is asked.
   */
  const returned: RequestHandler = async (req, res) => {
    const payment = await load(req, res);
    if (!payment) return;
    // The return's parameters only pick which of this payment's own attempts to ask the channel
    // about: the order number the gateway put in the return URL.
    const orderNo = typeof req.query.out_trade_no === 'string' ? req.query.out_trade_no : undefined;
    // Kept for the payment's timeline (scrubbed, in the background): what the browser brought back.
    recordBrowserReturn(deps, payment, orderNo, { ...req.query, ...(req.method === 'POST' && req.body && typeof req.body === 'object' ? req.body : {}) });
    const attempt = await confirmOnReturn(deps, payment, orderNo);
    const fresh = (await findPaymentByToken(deps.db, payment.checkout_token))!;
    const target = merchantReturnUrl(fresh);
    if (fresh.status === 'succeeded' && target) return res.redirect(303, target);
    if (showState(req, res, fresh)) return;
    // Not paid: failed, cancelled (the channel still says WAIT_BUYER_PAY, NOTPAY or no such trade)
    // or not confirmed yet. The payer never waits here: back to the choice, told how it went.
    res.redirect(303, choiceUrl(req, res, fresh, attempt));
  };
  r.get('/:token/return', limit, returned);
  r.post('/:token/return', limit, express.urlencoded({ extended: false, limit: '16kb' }), returned);

  async function byToken(req: Request): Promise<PaymentRow> {
    const token = String(req.params.token);
    const payment = tokenPattern.test(token) ? await findPaymentByToken(deps.db, token) : undefined;
    if (!payment) throw new ApiError(404, 'invalid_request_error', 'resource_missing', 'No such checkout.');
    return payment;
  }

  /** The attempt a waiting page watches (?attempt=); one not of this checkout is a 400 naming the parameter. */
  async function watchedAttempt(req: Request, payment: PaymentRow): Promise<AttemptRow | undefined> {
    if (req.query.attempt === undefined) return undefined;
    const attempt = await findAttempt(deps, payment, req.query.attempt);
    if (!attempt) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'attempt must name an attempt of this checkout.', 'attempt');
    return attempt;
  }

  /** The status endpoints are read by scripts: their errors are the API's error object, not a page. */
  const jsonErrors = (handler: RequestHandler): RequestHandler => async (req, res, next) => {
    try {
      await handler(req, res, next);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500 || res.headersSent) return next(err);
      res.status(apiErr.status).set('Cache-Control', 'no-store').json(errorBody(apiErr, String(res.locals.requestId ?? '')));
    }
  };

  r.get('/:token/status', jsonErrors(async (req, res) => {
    const payment = await byToken(req);
    const attempt = await watchedAttempt(req, payment);
    if (attempt) await watchAttempt(deps, attempt);
    res.set('Cache-Control', 'no-store').json(statusBody(payment, attempt));
  }));

  r.get('/:token/events', jsonErrors(async (req, res) => {
    const payment = await byToken(req);
    streamStatus(deps, req, res, payment, await watchedAttempt(req, payment));
  }));

  return r;
}
