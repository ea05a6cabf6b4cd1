/**
 * HTTP face of the Alipay simulator, mounted at /sandbox/alipay: gateway.do (page and API
 * methods), the "scan" page a precreate QR code points to, and the payer-action endpoint the
 * payer page's buttons (and act()) post to.
 */
import express, { type Request, type Response } from 'express';
import type { SandboxDeps } from '../types.ts';
import { timingSafeEqualStr } from '../../crypto.ts';
import { alipayJson, signResponse } from '../../channels/alipay/sign.ts';
import { beijingTime, fenToYuan } from '../../channels/alipay/transform.ts';
import { API_METHODS, FUND_METHODS, PAGE_METHODS, authenticate, loadOrder, openOrder, payerToken, runApiMethod, settle, type GatewayAnswer } from './gateway.ts';
import { createAlipayWalletRouter } from './wallet.ts';
import { notifyModeOf, returnParams, sendNotify, tradeNotifyParams } from './notify.ts';
import { AGREEMENT_API_METHODS, SIGN_PAGE_METHOD, actOnMandate, findMandate, openMandate, runAgreementMethod, signerToken, type SandboxMandate } from './agreements.ts';
import { TRADE_PAY_METHOD, runTradePay } from './deduct.ts';
import { runFundMethod } from './fund.ts';
import { findMerchant, updateOrderData, type SandboxMerchant, type SandboxOrder } from './store.ts';
import { BILL_METHOD, createAlipayBillRouter, runBillQuery } from './statement.ts';

/** A wallet page's button or a test's JSON: the body's string fields, and a refusal in the form that was asked for. */
function actionForm(req: Request, res: Response) {
  const wantsJson = Boolean(req.is('application/json')) || /application\/json/i.test(req.get('accept') ?? '');
  const b = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
  const field = (name: string) => (typeof b[name] === 'string' ? (b[name] as string) : '');
  const refuse = (status: number, code: string, message: string) =>
    wantsJson ? res.status(status).json({ ok: false, error: { code, message } }) : renderResult(res, status, 'error', { code, message });
  return { wantsJson, b, field, refuse };
}

export function createAlipaySandboxRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  // Before the form parser: the wallet reads the order string as the raw bytes the SDK sent.
  router.use('/app', createAlipayWalletRouter(deps));
  router.use(express.urlencoded({ extended: false, limit: '100kb' }));
  router.use(express.json({ limit: '16kb' }));
  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  const gateway = async (req: Request, res: Response) => {
    const params = gatewayParams(req);
    if (!params) return sendApiAnswer(res, undefined, { code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.invalid-parameter', sub_msg: '参数重复 (a parameter was sent twice)' });
    const auth = await authenticate(deps, params);
    const isPage = PAGE_METHODS.has(auth.method ?? '');
    if (!auth.ok) {
      // Logged so a merchant can see why the "gateway" refused them (the answer itself names it too).
      deps.logger.warn('alipay sandbox refused a request', { app_id: params.app_id, method: auth.method, code: auth.error.code, sub_code: auth.error.sub_code });
      return isPage ? renderGatewayError(res, auth.error) : sendApiAnswer(res, auth.method, auth.error, auth.merchant, auth.alipayCertSn);
    }
    if (auth.method === SIGN_PAGE_METHOD) {
      const opened = await openMandate(deps, auth.merchant, auth.biz, params);
      if (!opened.ok) return renderGatewayError(res, opened.error);
      return renderSignPage(req, res, deps, opened.mandate);
    }
    if (AGREEMENT_API_METHODS.has(auth.method)) {
      return sendApiAnswer(res, auth.method, await runAgreementMethod(deps, auth.merchant, auth.method, auth.biz, params), auth.merchant, auth.alipayCertSn);
    }
    if (auth.method === TRADE_PAY_METHOD) {
      return sendApiAnswer(res, auth.method, await runTradePay(deps, auth.merchant, auth.biz, params), auth.merchant, auth.alipayCertSn);
    }
    if (auth.method === BILL_METHOD) return sendApiAnswer(res, auth.method, await runBillQuery(deps, auth.merchant, auth.biz), auth.merchant, auth.alipayCertSn);
    if (FUND_METHODS.has(auth.method)) {
      return sendApiAnswer(res, auth.method, await runFundMethod(deps, auth.merchant, auth.method, auth.biz), auth.merchant, auth.alipayCertSn);
    }
    if (isPage) {
      const opened = await openOrder(deps, auth.merchant, auth.method, auth.biz, params);
      if (!opened.ok) return renderGatewayError(res, opened.error);
      return renderCashier(req, res, deps, opened.order);
    }
    return sendApiAnswer(res, auth.method, await runApiMethod(deps, auth.merchant, auth.method, auth.biz, params), auth.merchant, auth.alipayCertSn);
  };
  // The bill download links that alipay.data.dataservice.bill.downloadurl.query hands out (statement.ts).
  router.use('/bill', createAlipayBillRouter(deps));
  router.get('/gateway.do', gateway);
  router.post('/gateway.do', gateway);

  // The QR code of a precreated trade leads here: scanning it "creates" the trade at Alipay.
  router.get('/scan', async (req, res) => {
    const q = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const appId = q.get('app_id') ?? '';
    const outTradeNo = q.get('out_trade_no') ?? '';
    if (!validToken(deps, appId, outTradeNo, q.get('t'))) return renderResult(res, 403, 'error', { code: 'INVALID_LINK', message: '二维码无效 · This code is not valid' });
    const order = await loadOrder(deps, appId, { outTradeNo });
    if (!order) return renderResult(res, 404, 'error', { code: 'ACQ.TRADE_NOT_EXIST', message: '交易不存在 · No such trade' });
    if (!order.data.scanned) await updateOrderData(deps.db, order, { ...order.data, scanned: true });
    return renderCashier(req, res, deps, order);
  });

  // The signing page's buttons, the wallet's "cancel auto-debit" (解约), and the tests' hands.
  router.post('/agreement/action', async (req, res) => {
    const { wantsJson, b, field, refuse } = actionForm(req, res);
    const appId = field('app_id');
    const external = field('external_agreement_no');
    const action = field('action');
    const token = field('t');
    if (!appId || !external || !token || !timingSafeEqualStr(token, signerToken(deps.masterKey, appId, external))) return refuse(403, 'INVALID_TOKEN', '无效的签约请求 · This signing link is not valid');
    if (action !== 'sign' && action !== 'refuse' && action !== 'unsign') return refuse(400, 'INVALID_ACTION', 'action must be sign, refuse or unsign');
    const merchant = await findMerchant(deps.db, deps.masterKey, appId);
    const mandate = merchant && (await findMandate(deps.db, appId, { external }));
    if (!merchant || !mandate) return refuse(404, 'USER_AGREEMENT_NOT_EXIST', '用户协议不存在 · No such agreement (it exists once its signing page was opened)');
    const acted = await actOnMandate(deps, merchant, mandate, action, notifyModeOf(b.notify ?? b.notify_mode, b.notify_delay));
    if (!acted.ok) return refuse(409, acted.code, acted.message);
    if (wantsJson) return res.json({ ok: true, status: acted.mandate.status, agreement_no: acted.mandate.status === 'TEMP' ? undefined : acted.mandate.agreementNo });
    const back = acted.mandate.data.returnUrl;
    if (action === 'sign' && back) return res.redirect(303, back);
    return renderResult(res, 200, action === 'sign' ? 'paid' : 'cancelled', {
      message: action === 'sign' ? '签约成功 · Auto-debit signed' : action === 'refuse' ? '已放弃签约 · Signing refused' : '已解约 · Auto-debit cancelled',
      link: back,
    });
  });

  router.post('/payer/action', async (req, res) => {
    const { wantsJson, b, field, refuse } = actionForm(req, res);

    const appId = field('app_id');
    const outTradeNo = field('out_trade_no');
    const action = field('action');
    if (!validToken(deps, appId, outTradeNo, field('t'))) return refuse(403, 'INVALID_TOKEN', '无效的支付请求 · This payment link is not valid');
    if (action !== 'pay' && action !== 'fail' && action !== 'cancel') return refuse(400, 'INVALID_ACTION', 'action must be pay, fail or cancel');
    const merchant = await findMerchant(deps.db, deps.masterKey, appId);
    const order = merchant && (await loadOrder(deps, appId, { outTradeNo }));
    if (!merchant || !order) {
      return refuse(404, 'ACQ.TRADE_NOT_EXIST', '交易不存在 · No such trade at the simulator (a page-pay trade exists once its payment page was opened)');
    }
    const mode = notifyModeOf(b.notify ?? b.notify_mode, b.notify_delay);

    if (action === 'cancel') {
      if (wantsJson) return res.json({ ok: true, trade_status: order.status });
      const back = (order.data.method === 'alipay.trade.wap.pay' && order.data.quitUrl) || order.data.returnUrl;
      return back ? res.redirect(303, back) : renderResult(res, 200, 'cancelled', { message: '已取消支付 · Payment cancelled' });
    }

    const target = action === 'pay' ? 'TRADE_SUCCESS' : 'TRADE_CLOSED';
    const moved = await settle(deps, merchant, order, target);
    if (!moved.ok) return refuse(409, moved.code, moved.message);
    if (moved.changed) await sendNotify(moved.order.data.notifyUrl, tradeNotifyParams(merchant, moved.order, moved.order.data.notifyId!), mode, deps.logger);

    if (wantsJson) return res.json({ ok: true, trade_status: moved.order.status, trade_no: moved.order.tradeNo });
    const returnUrl = moved.order.data.returnUrl;
    if (action === 'pay') {
      if (!returnUrl) return renderResult(res, 200, 'paid', { message: `支付成功 · Paid ¥${fenToYuan(moved.order.amount)}` });
      const sep = returnUrl.includes('?') ? '&' : '?';
      return res.redirect(303, `${returnUrl}${sep}${new URLSearchParams(returnParams(merchant, moved.order))}`);
    }
    return renderResult(res, 200, 'failed', {
      message: '支付失败，交易已关闭 · Payment failed; the trade is closed',
      link: returnUrl ?? moved.order.data.quitUrl,
    });
  });

  return router;
}

/** All request parameters (URL and form body); undefined when one is given twice. */
function gatewayParams(req: Request): Record<string, string> | undefined {
  const params: Record<string, string> = Object.create(null);
  const add = (k: string, v: unknown): boolean => {
    if (typeof v !== 'string' || Object.hasOwn(params, k)) return false;
    params[k] = v;
    return true;
  };
  // Read the raw query ourselves: the app's query parser may be configured differently.
  for (const [k, v] of new URLSearchParams(req.originalUrl.split('?')[1] ?? '')) if (!add(k, v)) return undefined;
  if (req.method === 'POST' && req.body && typeof req.body === 'object') {
    for (const [k, v] of Object.entries(req.body as Record<string, unknown>)) if (!add(k, v)) return undefined;
  }
  return params;
}

/** An API answer written like Alipay's (signResponse), signed when the app is known, naming alipay_cert_sn in certificate mode. */
function sendApiAnswer(res: Response, method: string | undefined, answer: GatewayAnswer, merchant?: SandboxMerchant, alipayCertSn?: string): void {
  const key = method && API_METHODS.has(method) ? `${method.replace(/\./g, '_')}_response` : 'error_response';
  const body = merchant ? signResponse(key, answer, merchant.alipayPrivateKey, alipayCertSn) : `{${JSON.stringify(key)}:${alipayJson(answer)}}`;
  res.status(200).type('application/json; charset=utf-8').send(body);
}

function renderCashier(req: Request, res: Response, deps: SandboxDeps, order: SandboxOrder): void {
  if (order.status !== 'WAIT_BUYER_PAY') {
    const paid = order.status !== 'TRADE_CLOSED' || order.data.gmtPayment !== undefined;
    return renderResult(res, 409, paid ? 'paid' : 'error', paid
      ? { message: '该交易已支付 · This trade is already paid' }
      : { code: 'ACQ.TRADE_HAS_CLOSE', message: '交易已经关闭 · This trade is closed' });
  }
  res.render('sandbox/alipay-cashier', {
    cspNonce: res.locals.cspNonce ?? '',
    actionUrl: `${req.baseUrl}/payer/action`,
    appId: order.appId,
    outTradeNo: order.outTradeNo,
    tradeNo: order.tradeNo,
    token: payerToken(deps.masterKey, order.appId, order.outTradeNo),
    subject: order.data.subject,
    body: order.data.body ?? '',
    amount: fenToYuan(order.amount),
    mobile: order.data.method === 'alipay.trade.wap.pay',
    viaQr: order.data.method === 'alipay.trade.precreate',
    expiresAt: order.data.expiresAt !== undefined ? beijingTime(order.data.expiresAt) : '',
    installments: order.data.installments ?? null,
  });
}

function renderSignPage(req: Request, res: Response, deps: SandboxDeps, m: SandboxMandate): void {
  if (m.status !== 'TEMP') return renderResult(res, 409, 'error', { code: 'USER_AGREEMENT_ALREADY_EXIST', message: '该协议已签约或已解约 · This agreement was signed or unsigned already' });
  const d = m.data;
  res.render('sandbox/alipay-agreement', {
    cspNonce: res.locals.cspNonce ?? '',
    actionUrl: `${req.baseUrl}/agreement/action`,
    appId: m.appId,
    externalAgreementNo: m.externalAgreementNo,
    token: signerToken(deps.masterKey, m.appId, m.externalAgreementNo),
    rule: d.periodType === 'MONTH' ? `每 ${d.period} 个月 · every ${d.period} month(s)` : `每 ${d.period} 天 · every ${d.period} days`,
    executeTime: d.executeTime,
    singleAmount: fenToYuan(d.singleAmount),
    logon: d.externalLogonId ?? '',
  });
}

/** Alipay shows gateway errors of page methods as a page naming the error code. */
function renderGatewayError(res: Response, error: GatewayAnswer): void {
  renderResult(res, 400, 'error', { code: error.sub_code ?? error.code, message: `${error.msg}: ${error.sub_msg ?? ''}` });
}

function renderResult(res: Response, status: number, kind: 'paid' | 'failed' | 'cancelled' | 'error', info: { code?: string; message: string; link?: string }): void {
  res.status(status).render('sandbox/alipay-result', { cspNonce: res.locals.cspNonce ?? '', kind, code: info.code ?? '', message: info.message, link: info.link ?? '' });
}

function validToken(deps: SandboxDeps, appId: string, outTradeNo: string, token: string | null | undefined): boolean {
  return Boolean(appId && outTradeNo && token) && timingSafeEqualStr(token!, payerToken(deps.masterKey, appId, outTradeNo));
}
