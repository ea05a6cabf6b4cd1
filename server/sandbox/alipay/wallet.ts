/**
 * The Alipay app stand-in ("fake wallet"), mounted at /sandbox/alipay/app: in-app pay has no
 * gateway page, the Alipay app SDK (payOrder / payV2) posts the merchant's order string to Alipay
 * itself. POST /app/pay takes that raw order string, checks it as Alipay does (signature with the
 * app's public key, common parameters, biz_content), creates the trade WAIT_BUYER_PAY, lets the
 * caller choose what the payer does (`?outcome=pay|fail|cancel`, `&notify=` as on the payer page),
 * sends the usual trade_status_sync notify, and answers what the SDK hands the app:
 * `{resultStatus, result, memo}` (app-and-money-out.md §1).
 */
import express from 'express';
import type { NotifyMode, SandboxDeps } from '../types.ts';
import { alipayJson, signRsa2 } from '../../channels/alipay/sign.ts';
import { fenToYuan, nowBeijing } from '../../channels/alipay/transform.ts';
import { APP_PAY_METHOD, authenticate, openOrder, settle, type GatewayAnswer } from './gateway.ts';
import { sendNotify, tradeNotifyParams } from './notify.ts';
import type { SandboxMerchant, SandboxOrder } from './store.ts';

const APP_METHODS: ReadonlySet<string> = new Set([APP_PAY_METHOD]);
const NOTIFY_MODE = /^(normal|duplicate|drop|delay:\d{1,5})$/;

/** What the SDK's callback gets. resultStatus: 9000 paid · 4000 failed · 6001 cancelled by the payer. */
export interface AppPayResult {
  resultStatus: string;
  result: string;
  memo: string;
}

export function createAlipayWalletRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  router.post('/pay', express.text({ type: () => true, limit: '32kb' }), async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const refuse = (error: GatewayAnswer) => {
      deps.logger.warn('alipay sandbox wallet refused an order string', { code: error.code, sub_code: error.sub_code });
      // What the SDK reports for an order it cannot pay: 4000, with Alipay's reason in memo.
      res.status(400).json({ resultStatus: '4000', result: '', memo: `${error.sub_msg ?? error.msg}`, code: error.code, sub_code: error.sub_code });
    };
    const q = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const outcome = q.get('outcome') ?? 'pay';
    if (outcome !== 'pay' && outcome !== 'fail' && outcome !== 'cancel') return refuse(invalidArgument('outcome', 'outcome must be pay, fail or cancel'));
    const notify = q.get('notify') ?? 'normal';
    if (!NOTIFY_MODE.test(notify)) return refuse(invalidArgument('notify', 'notify must be normal, duplicate, drop or delay:<seconds>'));

    const params = parseOrderString(typeof req.body === 'string' ? req.body : '');
    if (typeof params === 'string') return refuse(invalidArgument('order_string', params));
    const auth = await authenticate(deps, params, APP_METHODS);
    if (!auth.ok) return refuse(auth.error);
    // Nothing is stored before here: a refused order string leaves the simulator as it was.
    const opened = await openOrder(deps, auth.merchant, auth.method, auth.biz, params);
    if (!opened.ok) return refuse(opened.error);
    const merchant = auth.merchant;
    const order = opened.order;

    if (outcome === 'cancel') return res.json({ resultStatus: '6001', result: '', memo: '用户中途取消' } satisfies AppPayResult);
    const moved = await settle(deps, merchant, order, outcome === 'pay' ? 'TRADE_SUCCESS' : 'TRADE_CLOSED');
    if (!moved.ok) return refuse({ code: '40004', msg: 'Business Failed', sub_code: moved.code, sub_msg: moved.message });
    if (moved.changed) await sendNotify(moved.order.data.notifyUrl, tradeNotifyParams(merchant, moved.order, moved.order.data.notifyId!), notify as NotifyMode, deps.logger);
    if (outcome === 'fail') return res.json({ resultStatus: '4000', result: '', memo: '支付失败' } satisfies AppPayResult);
    res.json({ resultStatus: '9000', result: syncResult(merchant, moved.order), memo: '' } satisfies AppPayResult);
  });
  return router;
}

const invalidArgument = (field: string, what: string): GatewayAnswer =>
  ({ code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.invalid-parameter', sub_msg: `参数无效 (${field}: ${what})` });

/**
 * An order string as either SDK writes it: the Node SDK encodeURIComponent-s each value in
 * insertion order, the Java SDK URL-encodes a sorted map with `+` for spaces. So `+` is a space,
 * order does not matter (the signature is checked over the re-sorted parameters), and a
 * parameter given twice is refused (two readers could see two orders). A string is the reason.
 */
export function parseOrderString(raw: string): Record<string, string> | string {
  const text = raw.trim();
  if (!text) return 'empty: post the order string the merchant\'s server returned';
  const params: Record<string, string> = Object.create(null);
  for (const pair of text.split('&')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return `not k=v pairs joined by & (at ${JSON.stringify(pair.slice(0, 20))})`;
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(pair.slice(0, eq).replace(/\+/g, ' '));
      value = decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      return `bad URL encoding in ${JSON.stringify(pair.slice(0, eq).slice(0, 40))}`;
    }
    if (Object.hasOwn(params, key)) return `${key.slice(0, 40)} is given twice`;
    params[key] = value;
  }
  return params;
}

/**
 * The `result` of a 9000: `{"alipay_trade_app_pay_response":{…},"sign":…,"sign_type":"RSA2"}`,
 * signed with "Alipay"'s key over the exact bytes of the response object (verifiable like a
 * gateway answer; still display only for the merchant: the notify or a query settles).
 */
function syncResult(merchant: SandboxMerchant, order: SandboxOrder): string {
  const body = alipayJson({
    code: '10000',
    msg: 'Success',
    app_id: merchant.appId,
    auth_app_id: merchant.appId,
    charset: 'utf-8',
    timestamp: nowBeijing(),
    out_trade_no: order.outTradeNo,
    trade_no: order.tradeNo,
    total_amount: fenToYuan(order.amount),
    seller_id: merchant.sellerId,
  });
  return `{"alipay_trade_app_pay_response":${body},"sign":${JSON.stringify(signRsa2(body, merchant.alipayPrivateKey))},"sign_type":"RSA2"}`;
}
