/** The payment object's `next_action` (DESIGN §2.1): what the merchant's page or app does to let the customer pay. */
import type { PaymentAction } from '../channels/types.ts';

/** A channel QR code stays payable for 2 hours (WeChat's code_url limit); the cashier renews it after. */
export const QR_TTL_S = 7200;

export type NextAction =
  | { type: 'redirect_to_url'; redirect_to_url: { url: string } }
  | { type: 'post_form'; post_form: { url: string; fields: Record<string, string> } }
  | { type: 'display_qr_code'; display_qr_code: { data: string; image_url: string; expires_at: number } }
  | { type: 'wechat_jsapi'; wechat_jsapi: WechatJsapiParams }
  | { type: 'wechat_app'; wechat_app: WechatAppParams }
  | { type: 'alipay_app'; alipay_app: { order_string: string } };

/** What WeixinJSBridge's getBrandWCPayRequest takes, names as WeChat spells them. */
export interface WechatJsapiParams {
  appId: string;
  timeStamp: string;
  nonceStr: string;
  package: string;
  signType: string;
  paySign: string;
}

/** What the WeChat app SDK's PayReq takes, names as WeChat's APP-pay doc spells them. */
export interface WechatAppParams {
  appid: string;
  partnerid: string;
  prepayid: string;
  package: string;
  noncestr: string;
  timestamp: string;
  sign: string;
}

/** What the payment row keeps of the attempt placed through the API: the adapter's action, and until when it can be used. */
export interface StoredNextAction {
  action: PaymentAction;
  /** Unix seconds: the payment's expiry, or for a QR code the end of the code's life if sooner. */
  expires_at: number;
}

/** The error of the payment's last failed attempt, on the payment object. */
export interface AttemptError {
  channel: string;
  code: string;
  message: string;
}

/** How long the action of an attempt placed at `placedAt` can be used. */
export function actionExpiry(action: PaymentAction, paymentExpiresAt: number, placedAt: number): number {
  return action.type === 'qr' ? Math.min(paymentExpiresAt, placedAt + QR_TTL_S) : paymentExpiresAt;
}

/** The gateway's SVG of an attempt's QR code: reachable only with the payment's checkout token. */
export const qrImagePath = (checkoutToken: string, attemptId: string) => `/pay/${checkoutToken}/attempts/${attemptId}/qr.svg`;

const pick = <K extends string>(params: Record<string, string>, keys: readonly K[]): Record<K, string> =>
  Object.fromEntries(keys.map((k) => [k, params[k] ?? ''])) as Record<K, string>;

const JSAPI_KEYS = ['appId', 'timeStamp', 'nonceStr', 'package', 'signType', 'paySign'] as const;
const WECHAT_APP_KEYS = ['appid', 'partnerid', 'prepayid', 'package', 'noncestr', 'timestamp', 'sign'] as const;

/**
 * The one mapping from an adapter's PaymentAction to the public next_action. Every variant is
 * named: a new PaymentAction that is not mapped here fails the type check.
 */
export function nextActionOf(action: PaymentAction, qr: { imageUrl: string; expiresAt: number }): NextAction {
  switch (action.type) {
    case 'redirect':
      return { type: 'redirect_to_url', redirect_to_url: { url: action.url } };
    case 'form':
      return { type: 'post_form', post_form: { url: action.url, fields: { ...action.fields } } };
    case 'qr':
      return { type: 'display_qr_code', display_qr_code: { data: action.codeUrl, image_url: qr.imageUrl, expires_at: qr.expiresAt } };
    case 'jsapi':
      return { type: 'wechat_jsapi', wechat_jsapi: pick(action.params, JSAPI_KEYS) };
    case 'wechat_app':
      return { type: 'wechat_app', wechat_app: pick(action.params, WECHAT_APP_KEYS) };
    case 'alipay_app':
      return { type: 'alipay_app', alipay_app: { order_string: action.orderString } };
    default: {
      const unmapped: never = action;
      throw new Error(`no next_action for ${(unmapped as PaymentAction).type}`);
    }
  }
}
