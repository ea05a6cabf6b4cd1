/** The payment object's `next_action` (DESIGN §2.1): what the merchant's page or app does to let the customer pay. */
import { z } from 'zod';
import { CHANNEL_CODES, type PaymentAction } from '../channels/types.ts';

const unixSeconds = z.number().int().describe('unix seconds');

/** A channel QR code stays payable for 2 hours (WeChat's code_url limit); the cashier renews it after. */
export const QR_TTL_S = 7200;

/** What WeixinJSBridge's getBrandWCPayRequest takes, names as WeChat spells them. */
const wechatJsapiParamsSchema = z.strictObject({ appId: z.string(), timeStamp: z.string(), nonceStr: z.string(), package: z.string(), signType: z.string(), paySign: z.string() });

/** What the WeChat app SDK's PayReq takes, names as WeChat's APP-pay doc spells them. */
const wechatAppParamsSchema = z.strictObject({
  appid: z.string(), partnerid: z.string(), prepayid: z.string(), package: z.string(), noncestr: z.string(), timestamp: z.string(), sign: z.string(),
});

/** What the payer's page or app does next to pay: the six shapes of DESIGN §2.1 (Stripe's next_action). */
export const nextActionSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('redirect_to_url'), redirect_to_url: z.strictObject({ url: z.string() }) })
      .describe('Send the browser to `url`: Alipay PC/WAP, WeChat H5, PayPal, cards.'),
    z.strictObject({ type: z.literal('post_form'), post_form: z.strictObject({ url: z.string(), fields: z.record(z.string(), z.string()) }) })
      .describe('Auto-post a form of `fields` to `url`: UnionPay.'),
    z.strictObject({
      type: z.literal('display_qr_code'),
      display_qr_code: z.strictObject({
        data: z.string().describe('the text the QR code encodes'),
        image_url: z.string().describe('an SVG of `data`, served by the gateway'),
        expires_at: unixSeconds,
      }),
    }).describe('Show a QR code for the payer to scan: Alipay QR, WeChat Native.'),
    z.strictObject({
      type: z.literal('wechat_jsapi'),
      wechat_jsapi: wechatJsapiParamsSchema,
    }).describe("The parameters of WeixinJSBridge's getBrandWCPayRequest, inside WeChat."),
    z.strictObject({
      type: z.literal('wechat_app'),
      wechat_app: wechatAppParamsSchema,
    }).describe("The fields of the WeChat app SDK's PayReq."),
    z.strictObject({ type: z.literal('alipay_app'), alipay_app: z.strictObject({ order_string: z.string() }) })
      .describe("The signed order string the Alipay app SDK's payOrder / payV2 takes."),
  ])
  .meta({ id: 'NextAction' });

/** Why the last channel order of a payment was declined; null when it was not. */
export const attemptErrorSchema = z
  .strictObject({ channel: z.enum(CHANNEL_CODES), code: z.string(), message: z.string() })
  .meta({ id: 'AttemptError' });

export type NextAction = z.infer<typeof nextActionSchema>;

/** What the payment row keeps of the attempt placed through the API: the adapter's action, and until when it can be used. */
export interface StoredNextAction {
  action: PaymentAction;
  /** Unix seconds: the payment's expiry, or for a QR code the end of the code's life if sooner. */
  expires_at: number;
}

/** The error of the payment's last failed attempt, on the payment object. */
export type AttemptError = z.infer<typeof attemptErrorSchema>;

/** How long the action of an attempt placed at `placedAt` can be used. */
export function actionExpiry(action: PaymentAction, paymentExpiresAt: number, placedAt: number): number {
  return action.type === 'qr' ? Math.min(paymentExpiresAt, placedAt + QR_TTL_S) : paymentExpiresAt;
}

/** The gateway's SVG of an attempt's QR code: reachable only with the payment's checkout token. */
export const qrImagePath = (checkoutToken: string, attemptId: string) => `/pay/${checkoutToken}/attempts/${attemptId}/qr.svg`;

const pick = <K extends string>(params: Record<string, string>, keys: readonly K[]): Record<K, string> =>
  Object.fromEntries(keys.map((k) => [k, params[k] ?? ''])) as Record<K, string>;

const JSAPI_KEYS = wechatJsapiParamsSchema.keyof().options;
const WECHAT_APP_KEYS = wechatAppParamsSchema.keyof().options;

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
