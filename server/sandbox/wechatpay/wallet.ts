/**
 * The WeChat app stand-in ("fake wallet"), mounted at /sandbox/wechatpay/app: in-app pay has no
 * payer page, the merchant's app hands the OpenSDK a PayReq and WeChat takes it from there.
 * POST /app/pay takes the seven PayReq fields (JSON: appid, partnerid, prepayid, package,
 * noncestr, timestamp, sign), checks them as the WeChat client does (sign with the merchant's API
 * public key; the prepay_id exists, belongs to that appid and merchant, is under 2 hours old and
 * not paid or closed), lets the caller choose what the payer does (`?outcome=pay|fail|cancel`,
 * `&notify=`), sends TRANSACTION.SUCCESS as usual, and answers the SDK's `{errCode}`:
 * 0 paid (display only), -1 error, -2 cancelled (app-and-money-out.md §2).
 */
import express from 'express';
import type { NotifyMode, SandboxDeps } from '../types.ts';
import { verifyAppPaySign, type AppPayParams } from '../../channels/wechatpay/sign.ts';
import { findMerchantByAppid, findOrderByToken } from './store.ts';
import { sendNotify, transactionNotify } from './notify.ts';
import { settle } from './pages.ts';
import { nowSeconds, tokenOfPrepayId } from './wire.ts';

/** WeChat: a prepay_id can be paid for 2 hours (pay.weixin.qq.com/doc/v3/merchant/4012265144). */
export const PREPAY_TTL_S = 2 * 3600;
const FIELDS = ['appid', 'partnerid', 'prepayid', 'package', 'noncestr', 'timestamp', 'sign'] as const satisfies readonly (keyof AppPayParams)[];
const NOTIFY_MODE = /^(normal|duplicate|drop|delay:\d{1,5})$/;

/** A refused PayReq: the SDK's errCode -1, WeChat's code, and the field at fault. */
interface Refusal {
  status: number;
  code: string;
  field: string;
  message: string;
}

export function createWechatpayWalletRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  router.post('/pay', express.json({ limit: '8kb', type: () => true }), async (req, res) => {
    const refuse = (r: Refusal) => {
      deps.logger.warn('wechatpay sandbox wallet refused a PayReq', { code: r.code, field: r.field });
      res.status(r.status).json({ errCode: -1, errStr: `${r.message} (${r.field})`, code: r.code, field: r.field });
    };
    const q = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const outcome = q.get('outcome') ?? 'pay';
    if (outcome !== 'pay' && outcome !== 'fail' && outcome !== 'cancel') return refuse(param('outcome', 'must be pay, fail or cancel'));
    const notify = q.get('notify') ?? 'normal';
    if (!NOTIFY_MODE.test(notify)) return refuse(param('notify', 'must be normal, duplicate, drop or delay:<seconds>'));

    const b = (req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? req.body : {}) as Record<string, unknown>;
    const p: Partial<Record<(typeof FIELDS)[number], string>> = {};
    for (const f of FIELDS) {
      if (typeof b[f] !== 'string' || !b[f]) return refuse(param(f, '必填 (required): a non-empty string'));
      p[f] = b[f] as string;
    }
    if (p.package !== 'Sign=WXPay') return refuse(param('package', 'must be the literal Sign=WXPay'));
    if (!/^\d{10}$/.test(p.timestamp!)) return refuse(param('timestamp', 'Unix seconds, a 10-digit string'));
    if (p.noncestr!.length > 32) return refuse(param('noncestr', 'at most 32 characters'));

    const merchant = await findMerchantByAppid(deps.db, deps.masterKey, p.appid!);
    if (!merchant) return refuse({ status: 400, code: 'INVALID_APPID', field: 'appid', message: 'appid 未注册 · This AppID is not registered' });
    if (p.appid !== merchant.appAppid) {
      return refuse({ status: 400, code: 'INVALID_APPID', field: 'appid', message: 'appid 不是移动应用 · Not an Open Platform mobile-app AppID (the 公众号 AppID cannot pay in an app)' });
    }
    if (p.partnerid !== merchant.mchid) return refuse({ status: 400, code: 'APPID_MCHID_NOT_MATCH', field: 'partnerid', message: 'partnerid 与 appid 不匹配 · Not the mchid this AppID is bound to' });
    if (!verifyAppPaySign(p, merchant.merchantPublicKey)) {
      return refuse({ status: 400, code: 'SIGN_ERROR', field: 'sign', message: '签名错误 · sign does not verify with the merchant API public key over appid\\ntimestamp\\nnoncestr\\nprepayid\\n' });
    }
    const token = tokenOfPrepayId(p.prepayid!);
    const order = token ? await findOrderByToken(deps.db, token) : undefined;
    if (!order || order.data.tradeType !== 'APP' || order.data.prepayId !== p.prepayid || order.data.appid !== p.appid || order.mchid !== merchant.mchid) {
      return refuse({ status: 400, code: 'INVALID_REQUEST', field: 'prepayid', message: 'prepay_id 无效 · No APP prepay_id of this appid and merchant' });
    }
    const now = nowSeconds();
    if (order.data.createdAt + PREPAY_TTL_S <= now || (order.data.timeExpire !== undefined && order.data.timeExpire <= now)) {
      return refuse({ status: 400, code: 'ORDER_EXPIRED', field: 'prepayid', message: 'prepay_id 已过期 · This prepay_id has expired (2 hours, or the order\'s time_expire)' });
    }
    if (order.state !== 'NOTPAY') {
      const paid = order.data.successTime !== undefined;
      return refuse(paid
        ? { status: 409, code: 'ORDERPAID', field: 'prepayid', message: '该订单已支付 · This prepay_id was already paid' }
        : { status: 409, code: order.state === 'CLOSED' ? 'ORDER_CLOSED' : 'PAYERROR', field: 'prepayid', message: '订单已关闭或支付失败 · This order is closed or failed; the merchant must place a new one' });
    }

    if (outcome === 'cancel') return res.json({ errCode: -2, errStr: '用户取消' });
    const moved = await settle(deps, merchant, order, outcome === 'pay' ? 'SUCCESS' : 'PAYERROR');
    if (!moved.ok) return refuse({ status: 409, code: moved.code, field: 'prepayid', message: moved.message });
    // WeChat notifies successes only; a failed payment is learnt by querying.
    if (moved.changed && moved.order.state === 'SUCCESS') await sendNotify(merchant, transactionNotify(merchant, moved.order), notify as NotifyMode, deps.logger);
    res.json(outcome === 'pay' ? { errCode: 0 } : { errCode: -1, errStr: '支付失败' });
  });
  return router;
}

const param = (field: string, rule: string): Refusal => ({ status: 400, code: 'PARAM_ERROR', field, message: `参数错误 · ${field}: ${rule}` });
