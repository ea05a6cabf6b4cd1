import path from 'node:path';
import express, { type ErrorRequestHandler } from 'express';
import type { Deps } from './deps.ts';
import { randomId } from './crypto.ts';
import { apiKeyAuth } from './http/auth.ts';
import { idempotency } from './http/idempotency.ts';
import { jsonBody } from './http/json-body.ts';
import { checkUrlInput } from './http/input.ts';
import { apiRateLimit, cashierRateLimit } from './http/rate-limit.ts';
import { apiErrorHandler, apiNotFound } from './http/errors.ts';
import { CHANNEL_FORM_TARGETS, securityHeaders } from './http/security.ts';
import { serverTiming } from './http/server-timing.ts';
import { createPaymentRoutes, createTestHelperRoutes } from './payments/routes.ts';
import { createNotifyRoutes } from './payments/notify-routes.ts';
import { createCheckoutRoutes } from './checkout/routes.ts';
import { createRefundRoutes } from './refunds/routes.ts';
import { createWidgetRoutes } from './widget/routes.ts';
import { createWebhookEndpointRoutes } from './webhooks/routes.ts';
import { createEventRoutes } from './events/routes.ts';
import { createCustomerRoutes } from './customers/routes.ts';
import { createAgreementRoutes } from './agreements/routes.ts';
import { createSubscriptionRoutes, createSubscriptionTestHelperRoutes } from './subscriptions/routes.ts';
import { createCouponRoutes } from './coupons/routes.ts';
import { createTransferRoutes, createTransferTestHelperRoutes } from './transfers/routes.ts';
import { createRedPacketRoutes, createRedPacketTestHelperRoutes } from './red-packets/routes.ts';
import { createApiKeyRoutes } from './api-keys/routes.ts';
import { createOpenApiRoutes } from './openapi/routes.ts';
import { createAlipaySandboxRouter } from './sandbox/alipay/index.ts';
import { createConsoleRoutes } from './dashboard/routes.ts';
import { createWechatpaySandboxRouter } from './sandbox/wechatpay/index.ts';
import { createUnionpaySandboxRouter } from './sandbox/unionpay/index.ts';
import { createPaypalSandboxRouter } from './sandbox/paypal/index.ts';
import { createStripeSandboxRouter } from './sandbox/stripe/index.ts';
import { ROOT } from './root.ts';

export { ROOT };

/** Builds the Express app; never listens (tests run it in-process, index.ts starts it). */
export function createApp(deps: Deps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // API answers are no-store and pages are per-request: ETags would only cost a hash per response.
  app.set('etag', false);
  app.set('view engine', 'ejs');
  app.set('views', path.join(ROOT, 'views'));
  // Compiled templates are kept whatever NODE_ENV says: recompiling per request costs more than the render.
  app.set('view cache', true);
  // Includes are written from the views root ('/partials/head'): EJS then resolves them without
  // the existsSync it makes for every relative include of every render.
  app.set('view options', { root: path.join(ROOT, 'views') });
  app.set('query parser', 'simple');
  app.set('trust proxy', deps.config.trustProxy);

  app.use((req, res, next) => {
    res.locals.requestId = `req_${randomId(16)}`;
    res.set('Request-Id', res.locals.requestId);
    next();
  });

  // The cashier first: it is what customers load, and it needs none of the layers below.
  const pageHeaders = securityHeaders(["'self'", new URL(deps.config.publicUrl).origin, ...CHANNEL_FORM_TARGETS]);
  app.use('/pay', pageHeaders, createCheckoutRoutes(deps, cashierRateLimit(deps.config.cashierRateLimit), cashierRateLimit(deps.config.cashierRateLimit)));

  // The API's description and its reference page: public, before the API key is asked for.
  app.use(createOpenApiRoutes(deps.config.publicUrl));

  const api = express.Router();
  api.use(checkUrlInput, jsonBody(100 * 1024));
  api.use(apiKeyAuth(deps.db));
  api.use(apiRateLimit(deps.config.apiRateLimit));
  api.use(idempotency(deps.db, deps.config.masterKeyBytes));
  api.use('/payments', createPaymentRoutes(deps));
  api.use('/refunds', createRefundRoutes(deps).refunds);
  api.use('/webhook_endpoints', createWebhookEndpointRoutes(deps));
  api.use('/events', createEventRoutes(deps));
  api.use('/customers', createCustomerRoutes(deps));
  api.use('/agreements', createAgreementRoutes(deps));
  api.use('/subscriptions', createSubscriptionRoutes(deps));
  api.use('/coupons', createCouponRoutes(deps));
  api.use('/transfers', createTransferRoutes(deps));
  api.use('/red_packets', createRedPacketRoutes(deps));
  api.use('/api_keys', createApiKeyRoutes(deps));
  api.use('/test_helpers', createTestHelperRoutes(deps), createTransferTestHelperRoutes(deps), createRedPacketTestHelperRoutes(deps), createSubscriptionTestHelperRoutes(deps));
  api.use(apiNotFound);
  api.use(apiErrorHandler(deps.logger));
  app.use('/v1', (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  }, api);

  app.use('/notify', createNotifyRoutes(deps));

  app.use('/assets', express.static(path.join(ROOT, 'public', 'assets'), { maxAge: '1h', index: false }));
  // Outside the HTML router: the widget is a cross-origin script, not a page (no page CSP, CORP cross-origin).
  app.use(createWidgetRoutes());

  const html = express.Router();
  html.use(serverTiming);
  if (deps.config.sandbox) {
    const sandboxDeps = { db: deps.db, publicUrl: deps.config.publicUrl, masterKey: deps.config.masterKeyBytes, logger: deps.logger };
    // The payer pages' forms lead back to this gateway's cashier only (sandbox/gateway-urls.ts), but
    // form-action also governs the redirects after it: the cashier's return goes on to the
    // merchant's return_url, on any origin.
    html.use('/sandbox', securityHeaders(["'self'", 'https:', 'http:']));
    html.use('/sandbox/alipay', createAlipaySandboxRouter(sandboxDeps));
    html.use('/sandbox/wechatpay', createWechatpaySandboxRouter(sandboxDeps));
    html.use('/sandbox/unionpay', createUnionpaySandboxRouter(sandboxDeps));
    html.use('/sandbox/paypal', createPaypalSandboxRouter(sandboxDeps));
    html.use('/sandbox/stripe', createStripeSandboxRouter(sandboxDeps));
  }
  html.use(pageHeaders);
  html.use('/console', createConsoleRoutes(deps));
  html.get('/', (_req, res) => {
    res.type('text/plain').send('Checkstand payment gateway. API: /v1 · Cashier: /pay/<token>\n');
  });
  app.use(html);

  app.use((_req, res) => {
    res.status(404).type('text/plain').send('Not found\n');
  });
  const lastResort: ErrorRequestHandler = (err, req, res, _next) => {
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status >= 500) deps.logger.error('request failed', { path: req.path, request_id: res.locals.requestId, err });
    if (res.headersSent) return;
    res.status(status).type('text/plain').send(status >= 500 ? 'Something went wrong. Please try again.\n' : 'Bad request\n');
  };
  app.use(lastResort);
  return app;
}
