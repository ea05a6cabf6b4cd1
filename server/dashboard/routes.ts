import express, { Router, type ErrorRequestHandler, type RequestHandler } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { toApiError } from '../http/errors.ts';
import { findBadInput } from '../http/input.ts';
import { getApp } from '../apps/service.ts';
import { SESSION_COOKIE, clearHostCookie, loadSession, readCookie, setSessionMode } from './sessions.ts';
import { checkSessionToken, fromOwnOrigin } from './csrf.ts';
import { endpointAlerts } from './repo.ts';
import { consoleLocale, languageSwitch, tOf } from './i18n.ts';
import { BASE, one, renderPage, safeReturnPath, sessionOf } from './page.ts';
import { createLoginRoutes, createLogoutRoute } from './auth-routes.ts';
import { createPaymentPages, createRefundPages } from './payments-routes.ts';
import { createWebhookPages } from './webhooks-routes.ts';
import { createSettingsPages } from './settings-routes.ts';
import { createReconciliationPages } from './reconciliation-routes.ts';
import { statementUploadBody } from '../statements/multipart.ts';
import { createCouponPages, createCustomerPages } from './accounts-routes.ts';
import { createRedPacketPages, createTransferPages } from './money-out-routes.ts';
import { createAgreementPages, createSubscriptionPages } from './recurring-routes.ts';
import { createAppSwitchRoute, createInvitationRoutes, createTeamPages } from './team-routes.ts';
import { createAuditPages } from './audit-routes.ts';
import { certificateAlertLocals, createOnboardingPages } from './onboarding-routes.ts';
import { auditConsoleChanges, enforcePermissions, paymentCustomerLocals, teamLocals } from './permissions.ts';

/**
 * The merchant console at /console (DESIGN §2 "Console"): server-rendered pages scoped to the
 * logged-in user's app, in the mode (test/live) the console is switched to. Mounted inside the
 * HTML router, so every page already has its CSP nonce and security headers.
 */
export function createConsoleRoutes(deps: Deps): Router {
  const r = Router();
  const publicOrigin = new URL(deps.config.publicUrl).origin;

  r.use((_req, res, next) => {
    // Pages carry payment data and form tokens: never cached, never stored by a shared cache.
    res.set('Cache-Control', 'no-store');
    res.locals.base = BASE;
    next();
  });
  // The reader's language (cookie, then Accept-Language): t(), lang and h for every page, the login's too.
  r.use(consoleLocale());
  r.get('/lang', languageSwitch());
  // Channel credentials (several PEM keys) are the largest form; 64 kB is ample.
  r.use(express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 50 }));
  // The API's rule (http/input.ts) for every form and query: a NUL in a refund reason or a search
  // would otherwise reach PostgreSQL and come back as a 500.
  r.use((req, _res, next) => next(findBadInput(req.query as Record<string, unknown>) ?? (req.body ? findBadInput(req.body) : undefined)));
  r.use(createLoginRoutes(deps));
  r.use(createInvitationRoutes(deps));
  r.use(requireSession(deps));
  r.use(layoutLocals(deps));
  r.use(certificateAlertLocals(deps));
  r.use(teamLocals(deps));
  // The statement upload is multipart: read before the CSRF check, which needs its _csrf field.
  r.use('/reconciliation/statements/upload', statementUploadBody);
  r.use(checkCsrf(publicOrigin));
  // Roles (roles.ts's one table) and the audit log, for every route below.
  r.use(enforcePermissions(deps));
  r.use(auditConsoleChanges(deps));
  r.use(paymentCustomerLocals(deps));
  r.use(createLogoutRoute(deps));
  r.use(createAppSwitchRoute(deps));

  r.get('/', (_req, res) => res.redirect(303, `${BASE}/payments`));
  r.post('/mode', async (req, res) => {
    const mode = one(req.body?.mode);
    if (mode !== 'test' && mode !== 'live') throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', tOf(res)('Choose test or live mode.'));
    await setSessionMode(deps.db, sessionOf(res).idHash, mode === 'live');
    // A detail page belongs to one mode; the matching list of the other mode is the useful place.
    const back = safeReturnPath(req.body?.return_to)?.replace(/^(\/console\/[a-z]+)\/.*/, '$1');
    res.redirect(303, back ?? `${BASE}/payments`);
  });
  r.use('/payments', createPaymentPages(deps));
  r.use('/refunds', createRefundPages(deps));
  r.use('/customers', createCustomerPages(deps));
  r.use('/coupons', createCouponPages(deps));
  r.use('/transfers', createTransferPages(deps));
  r.use('/red_packets', createRedPacketPages(deps));
  r.use('/agreements', createAgreementPages(deps));
  r.use('/subscriptions', createSubscriptionPages(deps));
  r.use('/webhooks', createWebhookPages(deps));
  r.use(createSettingsPages(deps));
  r.use('/channels', createOnboardingPages(deps));
  r.use('/reconciliation', createReconciliationPages(deps));
  r.use('/team', createTeamPages(deps));
  r.use('/audit', createAuditPages(deps));

  r.use((_req, res) => renderPage(res, 'error', { title: tOf(res)('Not found'), message: tOf(res)('There is no such page or object in this app.') }, 404));
  r.use(consoleErrorHandler(deps));
  return r;
}

/** Everything past the login needs a live session; without one, GETs go to the login page. */
function requireSession(deps: Deps): RequestHandler {
  return async (req, res, next) => {
    const cookie = readCookie(req, SESSION_COOKIE);
    const session = await loadSession(deps.db, cookie);
    if (!session) {
      if (cookie) clearHostCookie(res, SESSION_COOKIE);
      const back = req.method === 'GET' ? safeReturnPath(`${BASE}${req.url === '/' ? '' : req.url}`) : undefined;
      return res.redirect(303, `${BASE}/login${back ? `?next=${encodeURIComponent(back)}` : ''}`);
    }
    res.locals.session = session;
    res.locals.csrfToken = session.csrfToken;
    next();
  };
}

/** Every state-changing request: our own origin and the session's synchronizer token (see csrf.ts). */
function checkCsrf(publicOrigin: string): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    if (!fromOwnOrigin(req, publicOrigin) || !checkSessionToken(sessionOf(res).csrfToken, req.body?._csrf)) {
      const t = tOf(res);
      return renderPage(res, 'error', { title: t('Form refused'), message: t('This form did not come from a console page of this gateway, or it expired. Go back, reload the page and try again.') }, 403);
    }
    next();
  };
}

/** What the layout shows on every page: the app, the mode switch and failing webhook endpoints. */
function layoutLocals(deps: Deps): RequestHandler {
  return async (req, res, next) => {
    const session = sessionOf(res);
    const [app, alerts] = await Promise.all([getApp(deps.db, session.appId), endpointAlerts(deps.db, session.appId)]);
    res.locals.appName = app?.name ?? session.appId;
    res.locals.alerts = alerts;
    res.locals.livemode = session.livemode;
    res.locals.email = session.email;
    res.locals.section = req.path.split('/')[1] ?? '';
    next();
  };
}

/** Errors as console pages: the API's error messages are written for people, so they are shown. */
function consoleErrorHandler(deps: Deps): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err);
    const apiErr = toApiError(err);
    const t = tOf(res);
    if (apiErr.status >= 500) {
      deps.logger.error('console request failed', { path: req.path, request_id: res.locals.requestId, err });
      return renderPage(res, 'error', { title: t('Something went wrong'), message: t('Please try again. Request id: {id}', { id: res.locals.requestId ?? '' }) }, 500);
    }
    res.locals.alerts ??= [];
    renderPage(res, 'error', { title: apiErr.status === 404 ? t('Not found') : t('That did not work'), message: t(apiErr.message) }, apiErr.status);
  };
}
