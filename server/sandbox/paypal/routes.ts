/**
 * HTTP face of the PayPal simulator, mounted at /sandbox/paypal: the REST API at PayPal's own
 * paths (/v1/oauth2/token, /v2/checkout/orders…, /v2/payments…, /v1/notifications…), the payer's
 * approval page (/checkoutnow) and the sandbox controls.
 */
import express from 'express';
import type { SandboxDeps } from '../types.ts';
import { createRestRouter } from './api.ts';
import { createPayerRouter } from './pages.ts';

export function createPaypalSandboxRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  // The payer pages first: the REST router answers every other path with its JSON 404.
  router.use(createPayerRouter(deps));
  router.use(createRestRouter(deps));
  return router;
}
