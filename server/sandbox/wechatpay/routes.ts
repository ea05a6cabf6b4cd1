/**
 * HTTP face of the WeChat Pay simulator, mounted at /sandbox/wechatpay: the API v3 endpoints
 * under /v3, the payer pages (scan, H5, JSAPI stand-in) with their action endpoint, and the
 * Official Account OAuth stand-ins (/connect/oauth2/authorize, /sns/oauth2/access_token), and the
 * WeChat app stand-in that takes an APP PayReq (/app/pay).
 */
import { Server } from 'node:http';
import express from 'express';
import type { SandboxDeps } from '../types.ts';
import { createV3Router } from './api.ts';
import { createPayerRouter } from './pages.ts';
import { createOAuthRouter } from './oauth.ts';
import { createWechatpayWalletRouter } from './wallet.ts';
import { createTransferRecipientRouter } from './transfers.ts';
import { createV2Router } from './redpack.ts';
import { acceptSandboxTls } from './v2-tls.ts';
import { createPapayPageRouter } from './papay.ts';

/**
 * Makes the gateway's HTTP server also speak TLS for the API v2 simulator (v2-tls.ts):
 * startGateway calls it; a server that does not gets it at the first simulator request it serves.
 */
export function acceptWechatpaySandboxTls(server: Server, deps: () => SandboxDeps | undefined): void {
  acceptSandboxTls(server, deps, createV2Router);
}

export function createWechatpaySandboxRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  router.use((req, res, next) => {
    res.set('Cache-Control', 'no-store');
    const server = (req.socket as { server?: unknown }).server;
    if (server instanceof Server) acceptWechatpaySandboxTls(server, () => deps);
    next();
  });
  // Over plain HTTP the v2 routes answer CA_ERROR, as WeChat answers a request without its certificate.
  router.use('/v2', createV2Router(deps));
  router.use('/v3', createV3Router(deps));
  router.use('/app', createWechatpayWalletRouter(deps));
  // The recipient's side of 商家转账: the confirm sheet and the 24 h clock.
  router.use('/transfer', createTransferRecipientRouter(deps));
  // 委托代扣: the signing page (entrustweb) and the WeChat user's hands (papay.ts).
  router.use('/papay', createPapayPageRouter(deps));
  router.use(createPayerRouter(deps));
  router.use(createOAuthRouter(deps));
  return router;
}
