/**
 * The payer's side of the WeChat Pay simulator: the "scan" page a code_url leads to, the H5 page
 * at h5_url, the JSAPI stand-in for WeixinJSBridge getBrandWCPayRequest (it verifies paySign as
 * the WeChat client does), and the payer-action endpoint their buttons (and act()) post to.
 */
import express, { type Request, type Response } from 'express';
import type { SandboxDeps } from '../types.ts';
import { verifyJsapiPaySign } from '../../channels/wechatpay/sign.ts';
import { rfc3339Beijing } from '../../channels/wechatpay/transform.ts';
import { findMerchant, findMerchantByAppid, findOrderByToken, transitionOrder, type SandboxMerchant, type SandboxOrder } from './store.ts';
import { newNotifyId, notifyModeOf, sendNotify, transactionNotify } from './notify.ts';
import { GATEWAY_URL_RULE, isCashierUrl } from '../gateway-urls.ts';
import { newTransactionId, nowSeconds, sandboxOpenid, tokenOfCodeUrl, tokenOfPrepayId, yuanText } from './wire.ts';

type Mode = 'scan' | 'h5' | 'jsapi' | 'app';
const MODE_OF: Record<SandboxOrder['data']['tradeType'], Mode> = { NATIVE: 'scan', MWEB: 'h5', JSAPI: 'jsapi', APP: 'app' };

export function createPayerRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  const form = [express.urlencoded({ extended: false, limit: '16kb' }), express.json({ limit: '16kb' })];

  // The customer's phone scanning a code_url (the cashier's sandbox "scan" link leads here).
  router.get('/scan', async (req, res) => {
    const token = tokenOfCodeUrl(String(req.query.code_url ?? ''));
    const order = token ? await findOrderByToken(deps.db, token) : undefined;
    if (!order || order.data.tradeType !== 'NATIVE') return renderResult(res, 404, 'error', { code: 'INVALID_CODE', message: '二维码已失效 · This code is not valid' });
    renderPayPage(req, res, order, {});
  });

  // h5_url (with the merchant's redirect_url appended) opened in the mobile browser.
  router.get('/h5/:token', async (req, res) => {
    const order = await findOrderByToken(deps.db, String(req.params.token));
    const prepayId = typeof req.query.prepay_id === 'string' ? req.query.prepay_id : undefined;
    if (!order || order.data.tradeType !== 'MWEB' || (prepayId !== undefined && prepayId !== order.data.prepayId)) {
      return renderResult(res, 404, 'error', { code: 'INVALID_REQUEST', message: '支付链接已失效 · This payment link is not valid' });
    }
    const redirectUrl = typeof req.query.redirect_url === 'string' ? req.query.redirect_url : undefined;
    if (redirectUrl !== undefined && !onMerchantDomain(deps, redirectUrl)) return renderResult(res, 400, 'error', { code: 'INVALID_REDIRECT', message: DOMAIN_MESSAGE });
    renderPayPage(req, res, order, { redirectUrl });
  });

  // The stand-in for getBrandWCPayRequest: the merchant page hands over the signed parameters.
  const jsapi = async (req: Request, res: Response) => {
    const p = paramsOf(req);
    const merchant = await findMerchantByAppid(deps.db, deps.masterKey, p.appId ?? '');
    if (!merchant) return renderResult(res, 400, 'error', { code: 'INVALID_APPID', message: 'appId 参数错误 · Unknown appId' });
    if (!verifyJsapiPaySign(p, merchant.merchantPublicKey)) {
      return renderResult(res, 400, 'error', { code: 'SIGN_ERROR', message: '支付验证签名失败 · paySign does not verify with the merchant API public key' });
    }
    const token = tokenOfPrepayId((p.package ?? '').replace(/^prepay_id=/, ''));
    const order = token ? await findOrderByToken(deps.db, token) : undefined;
    if (!order || order.data.tradeType !== 'JSAPI' || order.data.appid !== p.appId || order.mchid !== merchant.mchid) {
      return renderResult(res, 400, 'error', { code: 'INVALID_REQUEST', message: 'prepay_id 无效 · prepay_id is not valid' });
    }
    const returnUrl = p.return_url || undefined;
    if (returnUrl !== undefined && !onMerchantDomain(deps, returnUrl)) return renderResult(res, 400, 'error', { code: 'INVALID_REDIRECT', message: DOMAIN_MESSAGE });
    renderPayPage(req, res, order, { returnUrl });
  };
  router.get('/jsapi', jsapi);
  router.post('/jsapi', ...form, jsapi);

  router.post('/payer/action', ...form, async (req, res) => {
    const wantsJson = Boolean(req.is('application/json')) || /application\/json/i.test(req.get('accept') ?? '');
    const b = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
    const field = (name: string) => (typeof b[name] === 'string' ? (b[name] as string) : '');
    const refuse = (status: number, code: string, message: string) =>
      wantsJson ? res.status(status).json({ ok: false, error: { code, message } }) : renderResult(res, status, 'error', { code, message });

    const action = field('action');
    const order = await findOrderByToken(deps.db, field('token'));
    const merchant = order && (await findMerchant(deps.db, deps.masterKey, order.mchid));
    if (!order || !merchant) return refuse(404, 'ORDER_NOT_EXIST', '订单不存在 · No such order at the simulator');
    if (action !== 'pay' && action !== 'fail' && action !== 'cancel') return refuse(400, 'INVALID_ACTION', 'action must be pay, fail or cancel');
    const back = field('redirect_url') || field('return_url') || undefined;
    if (back !== undefined && !onMerchantDomain(deps, back)) return refuse(400, 'INVALID_REDIRECT', DOMAIN_MESSAGE);
    const mode = MODE_OF[order.data.tradeType];
    // The JSAPI page tells the merchant's page the outcome as WeixinJSBridge does: res.err_msg.
    const jsapiBack = (outcome: 'ok' | 'fail' | 'cancel') => `${back}${back!.includes('?') ? '&' : '?'}err_msg=${encodeURIComponent(`get_brand_wcpay_request:${outcome}`)}`;

    if (action === 'cancel') {
      if (wantsJson) return res.json({ ok: true, trade_state: order.state });
      if (back) return res.redirect(303, mode === 'jsapi' ? jsapiBack('cancel') : back);
      return renderResult(res, 200, 'cancelled', { message: '已取消支付 · Payment cancelled' });
    }

    const moved = await settle(deps, merchant, order, action === 'pay' ? 'SUCCESS' : 'PAYERROR');
    if (!moved.ok) return refuse(409, moved.code, moved.message);
    // WeChat notifies successes only; a failed payment is learnt by querying.
    if (moved.changed && moved.order.state === 'SUCCESS') {
      await sendNotify(merchant, transactionNotify(merchant, moved.order), notifyModeOf(b.notify ?? b.notify_mode, b.notify_delay), deps.logger);
    }
    if (wantsJson) return res.json({ ok: true, trade_state: moved.order.state, transaction_id: moved.order.data.transactionId ?? null });
    if (action === 'pay') {
      if (back) return res.redirect(303, mode === 'jsapi' ? jsapiBack('ok') : back);
      return renderResult(res, 200, 'paid', { message: `支付成功 · Paid ¥${yuanText(moved.order.amount)}` });
    }
    if (back && mode === 'jsapi') return res.redirect(303, jsapiBack('fail'));
    return renderResult(res, 200, 'failed', { message: '支付失败，请重新下单支付 · Payment failed', link: back });
  });

  return router;
}

const DOMAIN_MESSAGE = `商家参数格式有误，请联系商家解决 · The return address is not on the merchant's domain: it ${GATEWAY_URL_RULE.back}`;

/**
 * WeChat only sends the payer back to the merchant's configured H5 / JSAPI domain; the simulator's
 * one merchant is this gateway, whose payers go back to its cashier (see gateway-urls.ts).
 */
const onMerchantDomain = (deps: SandboxDeps, url: string): boolean => isCashierUrl(deps.publicUrl, url, 'back');

function paramsOf(req: Request): Record<string, string | undefined> {
  const source = req.method === 'POST' && req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : (req.query as Record<string, unknown>);
  const out: Record<string, string | undefined> = {};
  for (const k of ['appId', 'timeStamp', 'nonceStr', 'package', 'signType', 'paySign', 'return_url']) out[k] = typeof source[k] === 'string' ? (source[k] as string) : undefined;
  return out;
}

type Settled = { ok: true; changed: boolean; order: SandboxOrder } | { ok: false; code: string; message: string };

/** Pays or fails a waiting order; asking again for the state it is already in changes nothing. */
export async function settle(deps: SandboxDeps, merchant: SandboxMerchant, order: SandboxOrder, to: 'SUCCESS' | 'PAYERROR'): Promise<Settled> {
  if (order.state !== 'NOTPAY') {
    const paid = order.data.successTime !== undefined;
    if ((to === 'SUCCESS' && paid) || (to === 'PAYERROR' && order.state === 'PAYERROR')) return { ok: true, changed: false, order };
    if (paid) return { ok: false, code: 'ORDERPAID', message: '该订单已支付 · This order is already paid' };
    if (order.state === 'CLOSED') return { ok: false, code: 'ORDER_CLOSED', message: '订单已关闭 · This order is closed' };
    return { ok: false, code: 'PAYERROR', message: '订单支付失败，请重新下单 · This order failed; the merchant must place a new one' };
  }
  if (order.data.timeExpire !== undefined && order.data.timeExpire <= nowSeconds()) {
    return { ok: false, code: 'ORDER_EXPIRED', message: '订单已过期 · This order has expired' };
  }
  const data = to === 'SUCCESS'
    ? {
        ...order.data, transactionId: newTransactionId(), successTime: nowSeconds(), notifyId: newNotifyId(),
        payerOpenid: order.data.openid ?? sandboxOpenid(deps.masterKey, order.data.appid),
      }
    : order.data;
  if (await transitionOrder(deps.db, order, to, data)) return { ok: true, changed: true, order: { ...order, state: to, data } };
  const current = await findOrderByToken(deps.db, order.token);
  return current ? settle(deps, merchant, current, to) : { ok: false, code: 'ORDER_NOT_EXIST', message: '订单不存在' };
}

function renderPayPage(req: Request, res: Response, order: SandboxOrder, back: { redirectUrl?: string; returnUrl?: string }): void {
  if (order.state !== 'NOTPAY') {
    const paid = order.data.successTime !== undefined;
    return renderResult(res, 409, paid ? 'paid' : 'error', paid
      ? { message: '该订单已支付 · This order is already paid' }
      : { code: order.state === 'CLOSED' ? 'ORDER_CLOSED' : 'PAYERROR', message: order.state === 'CLOSED' ? '订单已关闭 · This order is closed' : '订单支付失败 · This order failed' });
  }
  if (order.data.timeExpire !== undefined && order.data.timeExpire <= nowSeconds()) {
    return renderResult(res, 409, 'error', { code: 'ORDER_EXPIRED', message: '订单已过期 · This order has expired' });
  }
  res.render('sandbox/wechatpay-pay', {
    cspNonce: res.locals.cspNonce ?? '',
    mode: MODE_OF[order.data.tradeType],
    actionUrl: `${req.baseUrl}/payer/action`,
    token: order.token,
    mchid: order.mchid,
    outTradeNo: order.outTradeNo,
    description: order.data.description,
    amount: yuanText(order.amount),
    expiresAt: order.data.timeExpire !== undefined ? rfc3339Beijing(order.data.timeExpire) : '',
    redirectUrl: back.redirectUrl ?? '',
    returnUrl: back.returnUrl ?? '',
  });
}

export function renderResult(res: Response, status: number, kind: 'paid' | 'failed' | 'cancelled' | 'error', info: { code?: string; message: string; link?: string }): void {
  res.status(status).render('sandbox/wechatpay-result', { cspNonce: res.locals.cspNonce ?? '', kind, code: info.code ?? '', message: info.message, link: info.link ?? '' });
}
