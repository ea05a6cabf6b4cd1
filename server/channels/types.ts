/** The Channel interface every adapter implements, and the normalized types it speaks. */

export const CHANNEL_CODES = [
  'alipay_pc', 'alipay_wap', 'alipay_qr', 'alipay_app',
  'wechat_native', 'wechat_h5', 'wechat_jsapi', 'wechat_app',
  'unionpay_pc', 'unionpay_wap', 'paypal',
] as const;
export type ChannelCode = (typeof CHANNEL_CODES)[number];

/** For the merchant's own iOS/Android app: the direct API only, never offered by the cashier. */
export const APP_CODES: readonly ChannelCode[] = ['alipay_app', 'wechat_app'];
export const isAppCode = (code: ChannelCode): boolean => APP_CODES.includes(code);

export type Provider = 'alipay' | 'wechatpay' | 'unionpay' | 'paypal';

/** One order placed at a channel (a payment attempt). Amounts are integers in minor units. */
export interface ChannelOrder {
  channel: ChannelCode;
  /** Our order number at the channel: one per attempt, never reused (≤ 32 chars, [A-Za-z0-9_]). */
  orderNo: string;
  amount: number;
  currency: string;
  subject: string;
  description?: string | null;
  /** Unix seconds; the channel's own expiry is set to match. */
  expiresAt: number;
  /** Where the channel posts its async notification. */
  notifyUrl: string;
  /** The gateway's return page for this attempt (the browser comes back here). */
  returnUrl: string;
  /** Where a mobile payer who gives up is sent (the cashier). */
  quitUrl?: string;
  clientIp?: string | null;
  /** wechat_jsapi: the payer's openid. */
  openid?: string;
}

/** What the cashier does next to let the customer pay. */
export type PaymentAction =
  | { type: 'redirect'; url: string }
  | { type: 'form'; url: string; fields: Record<string, string> }
  | { type: 'qr'; codeUrl: string }
  | { type: 'jsapi'; params: Record<string, string> }
  /** alipay_app: the signed order string the Alipay app SDK takes (payOrder / payV2). */
  | { type: 'alipay_app'; orderString: string }
  /** wechat_app: the seven fields of the WeChat SDK's PayReq (appid, partnerid, prepayid, package, noncestr, timestamp, sign). */
  | { type: 'wechat_app'; params: Record<string, string> };

export interface Decline {
  code: string;
  message: string;
}

/** A decline is a value; faults (config, signature, network) are thrown errors from ../errors.ts. */
export type CreateResult = { ok: true; action: PaymentAction } | { ok: false; decline: Decline };

/** Normalized payment status at the channel. Only an explicit success or failure is final. */
export type ChannelPaymentStatus = 'pending' | 'succeeded' | 'closed' | 'not_found';

export interface PaymentQueryResult {
  status: ChannelPaymentStatus;
  channelTradeNo?: string;
  /** Amount the channel holds for the order, in minor units. */
  amount?: number;
  /** Unix seconds. */
  paidAt?: number;
}

export interface RefundRequest {
  orderNo: string;
  /** Our refund number at the channel (unique per refund). */
  refundNo: string;
  amount: number;
  /** The payment's total (WeChat wants it). */
  totalAmount: number;
  currency: string;
  reason?: string | null;
  notifyUrl: string;
}

export type ChannelRefundStatus = 'pending' | 'succeeded' | 'failed';

export interface RefundResult {
  status: ChannelRefundStatus;
  channelRefundNo?: string;
  failureMessage?: string;
}

/** A verified channel notification, normalized. The core checks merchant, app and amount. */
export type ChannelNotification =
  | {
      kind: 'payment';
      orderNo: string;
      channelTradeNo: string;
      status: ChannelPaymentStatus;
      amount: number;
      /** The channel's id for the merchant app (Alipay app_id, WeChat appid). */
      appId: string;
      /** Alipay seller_id, WeChat mchid, when the message carries it. */
      merchantId?: string;
      paidAt?: number;
      notifyId: string;
    }
  | {
      kind: 'refund';
      orderNo: string;
      refundNo: string;
      channelRefundNo?: string;
      status: ChannelRefundStatus;
      amount: number;
      appId?: string;
      merchantId?: string;
      notifyId: string;
    };

/** An incoming HTTP message from a channel, as raw as it came. */
export interface InboundMessage {
  headers: Record<string, string | undefined>;
  contentType: string;
  body: Buffer;
  query?: Record<string, string>;
}

/** How to answer the channel: accepted, or refused so that it retries. */
export interface Ack {
  status: number;
  contentType: string;
  body: string;
}

export interface Channel<Cred = unknown> {
  provider: Provider;
  displayName: string;
  codes: readonly ChannelCode[];
  currencies: readonly string[];

  /** Validates a stored or uploaded config; throws ChannelConfigError naming the field. */
  parseCredentials(raw: unknown): Cred;
  /** The top-level keys a config may have: an upload with another (a misspelt optional field) is refused. */
  credentialKeys: readonly string[];
  /**
   * The channel's id for the app that places orders of `channel` (must match what their
   * notifications carry): WeChat's in-app code uses the Open Platform mobile AppID, the others
   * the configured one. Without `channel`, the configured one.
   */
  appIdOf(cred: Cred, channel?: ChannelCode): string;
  /** The merchant/seller id, where the config knows it. */
  merchantIdOf(cred: Cred): string | undefined;

  createPayment(cred: Cred, order: ChannelOrder): Promise<CreateResult>;
  queryPayment(cred: Cred, orderNo: string): Promise<PaymentQueryResult>;
  /** Closes an unpaid order; "already closed" or "no such order" count as success. */
  closePayment(cred: Cred, orderNo: string): Promise<void>;
  refund(cred: Cred, req: RefundRequest): Promise<RefundResult>;
  queryRefund(cred: Cred, orderNo: string, refundNo: string): Promise<RefundResult>;
  /** Verifies and decodes a notification; throws SignatureError or MalformedMessageError. */
  parseNotification(cred: Cred, msg: InboundMessage): Promise<ChannelNotification>;
  /** The answer a channel expects for an accepted (true) or refused (false) notification. */
  acknowledge(accepted: boolean): Ack;
  /** Verifies the browser's return parameters (display only); returns the order number. */
  parseReturn?(cred: Cred, query: Record<string, string>): { orderNo: string };
  /**
   * In-app payments that need the payer's id at the channel (WeChat JSAPI: the openid from the
   * OAuth snsapi_base redirect): where to send the payer, and how to read the code they bring back.
   */
  payerAuthorization?: {
    authorizeUrl(cred: Cred, redirectUri: string, state: string): string;
    exchangeCode(cred: Cred, code: string): Promise<string>;
  };
}

export const providerOf = (code: ChannelCode): Provider =>
  code.startsWith('alipay') ? 'alipay' : code.startsWith('wechat') ? 'wechatpay' : code.startsWith('unionpay') ? 'unionpay' : 'paypal';
