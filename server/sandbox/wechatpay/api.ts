/**
 * The simulated API v3 endpoints under /v3: each request's Authorization is checked against the
 * merchant's registered API public key and certificate serial (within the 5-minute window), and
 * every answer is signed with the "WeChat Pay" platform key, as WeChat signs its own.
 */
import crypto from 'node:crypto';
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import type { SandboxDeps } from '../types.ts';
import { parseAuthorization, signedHeaders, verifyAuthorization } from '../../channels/wechatpay/sign.ts';
import { findMerchant, type SandboxMerchant, type TradeType } from './store.ts';
import { closeOrder, placeOrder, queryOrder, queryRefund, refundOrder, type Answer } from './orders.ts';
import { v3Error, type V3Error } from './wire.ts';
import { createTransferBillsRouter } from './transfers.ts';
import { preDeductNotice } from './papay-deduct.ts';
import { createWechatpayBillRouter } from './statement.ts';

const TRADE_TYPES: Record<string, TradeType> = { native: 'NATIVE', h5: 'MWEB', jsapi: 'JSAPI', app: 'APP' };

interface Authenticated {
  merchant: SandboxMerchant;
  body: Record<string, unknown>;
}

export function createV3Router(deps: SandboxDeps): express.Router {
  const router = express.Router();
  // Raw bytes: the signature covers the body exactly as sent.
  router.use(express.raw({ type: () => true, limit: '64kb' }));
  router.use(async (req, res, next) => {
    const outcome = await authenticate(deps, req);
    if ('error' in outcome) {
      // Logged so a merchant can see why the "API" refused them (the answer names it too).
      deps.logger.warn('wechatpay sandbox refused a request', { path: req.path, code: outcome.error.body.code });
      return reply(res, outcome.merchant, outcome.error);
    }
    res.locals.wechatpay = outcome;
    next();
  });

  const run = (fn: (auth: Authenticated, req: Request) => Promise<Answer>) => async (req: Request, res: Response) => {
    const auth = res.locals.wechatpay as Authenticated;
    reply(res, auth.merchant, await fn(auth, req));
  };
  router.post('/pay/transactions/:kind', run(async ({ merchant, body }, req) => {
    const tradeType = TRADE_TYPES[String(req.params.kind)];
    return tradeType ? placeOrder(deps, merchant, tradeType, body) : notFound();
  }));
  router.get('/pay/transactions/out-trade-no/:no', run(({ merchant }, req) => queryOrder(deps, merchant, String(req.params.no), rawQuery(req))));
  router.post('/pay/transactions/out-trade-no/:no/close', run(({ merchant, body }, req) => closeOrder(deps, merchant, String(req.params.no), body)));
  router.post('/refund/domestic/refunds', run(({ merchant, body }) => refundOrder(deps, merchant, body)));
  router.get('/refund/domestic/refunds/:no', run(({ merchant }, req) => queryRefund(deps, merchant, String(req.params.no))));
  // 商家转账 (transfers.ts).
  router.use('/fund-app/mch-transfer', createTransferBillsRouter(deps, run));
  // 委托代扣's pre-deduction notice (papay-deduct.ts).
  router.post('/papay/contracts/:id/notify', run(({ merchant, body }, req) => preDeductNotice(deps, merchant, String(req.params.id), body)));
  // 对账单: the trade and fund-flow bills and their download (statement.ts).
  router.use(createWechatpayBillRouter(deps, run));
  router.use((_req, res) => reply(res, (res.locals.wechatpay as Authenticated | undefined)?.merchant, notFound()));

  const refuse: ErrorRequestHandler = (err, _req, res, _next) => {
    const tooLarge = (err as { status?: number }).status === 413;
    if (!tooLarge) deps.logger.error('wechatpay sandbox request failed', { err });
    reply(res, undefined, tooLarge ? v3Error(413, 'PARAM_ERROR', '请求体过大 (body too large)') : v3Error(500, 'SYSTEM_ERROR', '系统错误'));
  };
  router.use(refuse);
  return router;
}

const notFound = (): Answer => ({ status: 404, body: { code: 'NOT_FOUND', message: '请求的资源不存在 (no such endpoint at the simulator)' } });

const rawQuery = (req: Request) => new URLSearchParams(req.originalUrl.split('?')[1] ?? '');

const signError = (message: string) => v3Error(401, 'SIGN_ERROR', message);

/** Checks the Authorization header and the body, in the order WeChat Pay reports them. */
async function authenticate(deps: SandboxDeps, req: Request): Promise<Authenticated | { error: V3Error; merchant?: SandboxMerchant }> {
  const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  const auth = parseAuthorization(req.get('authorization'));
  if (!auth) {
    return { error: signError('Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》 (expected WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…")') };
  }
  const merchant = await findMerchant(deps.db, deps.masterKey, auth.mchid);
  if (!merchant) return { error: v3Error(400, 'MCH_NOT_EXISTS', '商户号不存在 (unknown mchid)') };
  const fail = (error: V3Error) => ({ error, merchant });
  if (auth.serial_no.toUpperCase() !== merchant.serialNo) return fail(signError('商户证书序列号有误 (serial_no is not the merchant API certificate registered for this mchid)'));
  // originalUrl: the path as the client sent it, mount prefix and query included, as it was signed.
  const check = verifyAuthorization(auth, { method: req.method, pathWithQuery: req.originalUrl, body: raw }, merchant.merchantPublicKey);
  if (check === 'bad_timestamp' || check === 'expired') return fail(signError('请求时间戳无效或已过期 (timestamp must be unix seconds within 5 minutes of now)'));
  if (check === 'bad_signature') {
    return fail(signError('签名错误，请检查后再试 (signature does not verify with the merchant API public key; the signed message is METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n)'));
  }
  // A POST may have no body at all (the transfer-bill cancel): there is nothing to parse.
  if (req.method !== 'POST' || raw === '') return { merchant, body: {} };
  if (!req.is('application/json')) return fail(v3Error(400, 'PARAM_ERROR', 'Content-Type 必须为 application/json'));
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return fail(v3Error(400, 'PARAM_ERROR', '请求体不是合法的 JSON (body is not JSON)'));
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return fail(v3Error(400, 'PARAM_ERROR', '请求体必须是 JSON 对象 (body must be a JSON object)'));
  return { merchant, body: body as Record<string, unknown> };
}

/** Writes an answer; signed with the platform key whenever the merchant is known (WeChat signs its errors too). */
function reply(res: Response, merchant: SandboxMerchant | undefined, a: Answer | V3Error): void {
  const text = a.body === undefined ? '' : JSON.stringify(a.body);
  res.status(a.status);
  res.set('Request-ID', crypto.randomBytes(20).toString('hex').toUpperCase());
  if (merchant) res.set(signedHeaders(text, merchant.platformPrivateKey, merchant.platformSerial));
  if (a.status === 204) {
    res.end();
    return;
  }
  res.type('application/json; charset=utf-8').send(text);
}
