/** The Channel interface every adapter implements, and the normalized types it speaks. */
import type { RedPacketNotification, TransferNotification } from './payouts.ts';

export const CHANNEL_CODES = [
  'alipay_pc', 'alipay_wap', 'alipay_qr', 'alipay_app',
  'wechat_native', 'wechat_h5', 'wechat_jsapi', 'wechat_app',
  'unionpay_pc', 'unionpay_wap', 'paypal',
  'card', 'apple_pay',
  // The customer's stored value (DESIGN §2.3): no adapter and no provider; the payments service pays it.
  'balance',
  // A deduction through a signed Alipay 周期扣款 agreement (DESIGN §2.5): charged by subscriptions only.
  'alipay_agreement',
  // A deduction through a signed WeChat Pay 委托代扣 contract (pappayapply): charged by subscriptions only.
  'wechat_papay',
] as const;
export type ChannelCode = (typeof CHANNEL_CODES)[number];

/** For the merchant's own iOS/Android app: the direct API only, never offered by the cashier. */
export const APP_CODES: readonly ChannelCode[] = ['alipay_app', 'wechat_app'];
export const isAppCode = (code: ChannelCode): boolean => APP_CODES.includes(code);

/** Charged through an agreement by the subscription scheduler: never offered by the cashier, refused by the payments API. */
export const AGREEMENT_CODES: readonly ChannelCode[] = ['alipay_agreement', 'wechat_papay'];
export const isAgreementCode = (code: ChannelCode): boolean => AGREEMENT_CODES.includes(code);

export type Provider = 'alipay' | 'wechatpay' | 'unionpay' | 'paypal' | 'stripe';

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
  /**
   * Alipay Huabei installments (花呗分期, DESIGN §2.5): the periods (3, 6 or 12) and who pays the
   * fee. Only Alipay adapters take it; any other refuses such an order (ChannelRequestError).
   */
  installments?: { count: 3 | 6 | 12; feePayer: 'customer' | 'merchant' };
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

/**
 * A decline is a value; faults (config, signature, network) are thrown errors from ../errors.ts.
 * `reference`: what the adapter needs later about this order and cannot derive from its number
 * (PayPal's order id, the exact UnionPay txnTime sent); the gateway stores it on the attempt and
 * hands it back in every AttemptContext. At most 1,000 characters, never a secret.
 */
export type CreateResult = { ok: true; action: PaymentAction; reference?: string } | { ok: false; decline: Decline };

/** What the gateway stored about one attempt, handed back to the (stateless) adapter. */
export interface AttemptContext {
  channel: ChannelCode;
  /** What createPayment returned as `reference`, or null. */
  reference: string | null;
  /** The channel's trade number once the attempt succeeded (UnionPay queryId, PayPal capture id). */
  channelTradeNo: string | null;
  /** The payment's amount (minor units) and currency. */
  amount: number;
  currency: string;
  /** Unix seconds: when the attempt was placed, and when the payment expires (the channel's expiry matches it). */
  createdAt: number;
  expiresAt: number;
}

/**
 * A channel without a close (UnionPay) says until when its order can still be paid: the gateway
 * closes the payment at once but keeps asking the channel until then, so a late payment is
 * found (and refunded automatically, since the payment is closed).
 */
export interface CloseResult {
  /** Unix seconds after which the channel's answer about the order is final. */
  payableUntil: number;
}

/** Normalized payment status at the channel. Only an explicit success or failure is final. */
export type ChannelPaymentStatus = 'pending' | 'succeeded' | 'closed' | 'not_found';

export interface PaymentQueryResult {
  status: ChannelPaymentStatus;
  channelTradeNo?: string;
  /** Amount the channel holds for the order, in minor units. */
  amount?: number;
  /** Unix seconds. */
  paidAt?: number;
  /** The wallet the payer used, where the channel tells (Stripe: apple_pay, google_pay, card): shown in the console. */
  wallet?: string;
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
  /** Unix seconds when the refund was created: the same for every resubmission (UnionPay derives its txnTime from it). Always given by the core. */
  createdAt?: number;
  /** The paid attempt the refund is taken from. Always given by the core. */
  attempt?: AttemptContext;
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
      /** ISO 4217, when the message carries it: the core refuses one that is not the payment's. */
      currency?: string;
      /** The channel's id for the merchant app (Alipay app_id, WeChat appid), when the message carries it. */
      appId?: string;
      /** Alipay seller_id, WeChat mchid, when the message carries it. */
      merchantId?: string;
      paidAt?: number;
      /** As in PaymentQueryResult. */
      wallet?: string;
      notifyId: string;
    }
  | {
      kind: 'refund';
      orderNo: string;
      refundNo: string;
      channelRefundNo?: string;
      status: ChannelRefundStatus;
      amount: number;
      currency?: string;
      appId?: string;
      merchantId?: string;
      notifyId: string;
    }
  /**
   * A verified message the gateway has nothing to apply from (a chargeback it cannot reverse by
   * itself): acknowledged so the channel stops resending it, and logged as a warning with `reason`
   * for the operator.
   */
  | { kind: 'ignored'; notifyId: string; orderNo?: string; reason: string }
  /**
   * A mandate's change (DESIGN §2.5): signed, or ended (by the merchant's API call, or by the
   * wallet user, whose cancellation arrives unsolicited on the app's notify URL).
   */
  | {
      kind: 'agreement'; notifyId: string; appId?: string; externalAgreementNo?: string; channelAgreementNo?: string; status: 'active' | 'terminated'; orderNo?: undefined;
      /** Who ended it, when the message says (WeChat's contract_termination_mode); otherwise an unasked end is the wallet user's. */
      terminatedBy?: 'customer' | 'channel' | 'merchant';
    }
  /** Money out (DESIGN §2.4, payouts.ts): a transfer's or a red packet's result, pushed by the channel. */
  | TransferNotification
  | RedPacketNotification;

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
  /** `ctx` is what the gateway stored of the attempt (always given by the core; optional for old callers). */
  queryPayment(cred: Cred, orderNo: string, ctx?: AttemptContext): Promise<PaymentQueryResult>;
  /**
   * Closes an unpaid order; "already closed" or "no such order" count as success. A channel that
   * cannot close returns until when the order stays payable (CloseResult).
   */
  closePayment(cred: Cred, orderNo: string, ctx?: AttemptContext): Promise<void | CloseResult>;
  refund(cred: Cred, req: RefundRequest): Promise<RefundResult>;
  queryRefund(cred: Cred, orderNo: string, refundNo: string, ctx?: { attempt: AttemptContext; createdAt: number; channelRefundNo: string | null }): Promise<RefundResult>;
  /** Verifies and decodes a notification; throws SignatureError or MalformedMessageError. */
  parseNotification(cred: Cred, msg: InboundMessage): Promise<ChannelNotification>;
  /** The answer a channel expects for an accepted (true) or refused (false) notification (`msg`: the message answered, for channels that answer each API generation in its own words). */
  acknowledge(accepted: boolean, msg?: InboundMessage): Ack;
  /** Channels that deliver to an endpoint the merchant registers at them (Stripe): the event types to subscribe it to. */
  webhookEvents?: readonly string[];
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

/** The provider of an external channel's code; `balance` has none (the payments service pays it before any provider is asked). */
export const providerOf = (code: ChannelCode): Provider =>
  code === 'card' || code === 'apple_pay' ? 'stripe'
    : code.startsWith('alipay') ? 'alipay' : code.startsWith('wechat') ? 'wechatpay' : code.startsWith('unionpay') ? 'unionpay' : 'paypal';
