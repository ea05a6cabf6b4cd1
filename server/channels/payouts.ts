/**
 * Money out (DESIGN §2.4): the interface the transfer and red-packet adapters implement, and the
 * normalized types they speak. The core (server/transfers, server/red-packets) keeps the state
 * machine, the exactly-once rules and the ledger; an adapter only speaks the channel's wire
 * protocol (protocols/app-and-money-out.md §4–7) and maps its statuses by §7's table.
 *
 * Exactly once, the adapter's half: `transferNo` / `packetNo` is fixed by the core when the
 * object is created and handed in unchanged on every retry, with an identical body (the same
 * `createdAt`, amount, recipient, texts). An answer that does not say for certain what the channel
 * did (timeout, 5xx, SYSTEM_ERROR, 20000, an unknown code) is thrown as ChannelUnavailable: the
 * core then queries, and resubmits under the same number only when the query says not_found.
 * A definite refusal is a result with status `failed` (and a failure code), never a throw.
 */
import type { InboundMessage } from './types.ts';

export const RECIPIENT_TYPES = ['alipay_login_id', 'alipay_user_id', 'alipay_open_id', 'wechat_openid'] as const;
export type RecipientType = (typeof RECIPIENT_TYPES)[number];

export interface Recipient {
  type: RecipientType;
  /** Alipay logon id (email / phone), 2088… user id, open id; or the WeChat openid under the config's appid. */
  account: string;
  /** The recipient's real name: checked by the channel when given (Alipay), encrypted on the wire (WeChat). */
  name?: string;
}

export interface PayoutRequest {
  /** Our number at the channel (Alipay out_biz_no, WeChat out_bill_no): ≤ 32 letters and digits, fixed at creation. */
  transferNo: string;
  /** Fen. */
  amount: number;
  currency: string;
  recipient: Recipient;
  /** Shown to the recipient (Alipay order_title, WeChat transfer_remark); the adapter trims to the channel's length. */
  description: string;
  /** Where the channel posts its result: Checkstand's notify URL of the app (/notify/<provider>/<app id>). */
  notifyUrl: string;
  /** Unix seconds when the transfer was created: the same on every resubmission. */
  createdAt: number;
}

/** Normalized transfer status at the channel (§7); `not_found`: the channel has no such number (yet). */
export type PayoutStatus = 'pending' | 'awaiting_recipient' | 'succeeded' | 'failed' | 'canceled' | 'not_found';

/** What the merchant's page hands to WeChat (wx.requestMerchantTransfer / WeixinJSBridge / OpenSDK). */
export interface WechatTransferConfirm {
  type: 'wechat_transfer_confirm';
  wechat_transfer_confirm: { mch_id: string; app_id: string; package_info: string };
}

export interface PayoutResult {
  status: PayoutStatus;
  /** Alipay order_id, WeChat transfer_bill_no. */
  channelTransferNo?: string;
  /** With `failed` (and `canceled` where the channel says why): the channel's code and words. */
  failureCode?: string;
  failureMessage?: string;
  /** With `awaiting_recipient`. */
  nextAction?: WechatTransferConfirm;
  /** Unix seconds, with `succeeded` when the channel says. */
  paidAt?: number;
}

/** A channel's refusal of a request before anything is sent: the parameter (of the API) and why. */
export interface PayoutInputError {
  param: 'amount' | 'recipient' | 'recipient.type' | 'recipient.account' | 'recipient.name' | 'description' | 'currency';
  message: string;
}

/** A verified transfer result pushed by the channel (Alipay alipay.fund.trans.order.changed, WeChat MCHTRANSFER.BILL.FINISHED). */
export interface TransferNotification {
  kind: 'transfer';
  notifyId: string;
  transferNo: string;
  channelTransferNo?: string;
  status: Exclude<PayoutStatus, 'not_found'>;
  /** Fen. */
  amount: number;
  /** The channel's id of the merchant app / merchant, when the message carries them. */
  appId?: string;
  merchantId?: string;
  failureCode?: string;
  failureMessage?: string;
  paidAt?: number;
  orderNo?: undefined;
}

export interface PayoutChannel<Cred = unknown> {
  provider: 'alipay' | 'wechatpay';
  recipientTypes: readonly RecipientType[];
  /** Fen, inclusive. */
  minAmount: number;
  maxAmount: number;
  /** Checks what the channel would refuse for certain (amount range, account shape, name length). */
  validate(req: Omit<PayoutRequest, 'transferNo' | 'notifyUrl' | 'createdAt'>): PayoutInputError | null;
  /** Places (or re-places, same number, same body) the transfer. */
  submit(cred: Cred, req: PayoutRequest): Promise<PayoutResult>;
  /** The channel's view of the transfer; `not_found` when it has none. */
  query(cred: Cred, req: PayoutRequest): Promise<PayoutResult>;
  /** Cancels one the recipient has not confirmed yet (WeChat); the result is the channel's state after it. */
  cancel?(cred: Cred, req: PayoutRequest): Promise<PayoutResult>;
}

// --- red packets ---------------------------------------------------------------------------------

export interface RedPacketRequest {
  /** WeChat mch_billno (≤ 28: mch_id + yyyymmdd + 10 digits), Alipay out_biz_no; fixed at creation. */
  packetNo: string;
  amount: number;
  currency: string;
  recipient: Recipient;
  senderName: string;
  wishing: string;
  actName: string;
  remark: string;
  /** WeChat PRODUCT_1…PRODUCT_8; mandatory below 1 or above 200 yuan. */
  sceneId?: string;
  /** The merchant server's IP WeChat wants in client_ip. */
  clientIp: string;
  createdAt: number;
}

export type RedPacketStatus = 'sending' | 'sent' | 'received' | 'refunded' | 'failed' | 'not_found';

export interface RedPacketResult {
  status: RedPacketStatus;
  /** WeChat send_listid / detail_id, Alipay order_id. */
  channelPacketNo?: string;
  failureCode?: string;
  failureMessage?: string;
  /** Unix seconds. */
  receivedAt?: number;
  refundedAt?: number;
}

/** A verified red-packet result pushed by the channel (Alipay's order.changed for STD_RED_PACKET; WeChat has none). */
export interface RedPacketNotification {
  kind: 'red_packet';
  notifyId: string;
  packetNo: string;
  channelPacketNo?: string;
  status: Exclude<RedPacketStatus, 'not_found'>;
  amount: number;
  appId?: string;
  merchantId?: string;
  failureCode?: string;
  failureMessage?: string;
  orderNo?: undefined;
}

export interface RedPacketChannel<Cred = unknown> {
  provider: 'alipay' | 'wechatpay';
  recipientTypes: readonly RecipientType[];
  minAmount: number;
  maxAmount: number;
  validate(req: Omit<RedPacketRequest, 'packetNo' | 'createdAt' | 'clientIp'>): PayoutInputError | { param: 'sender_name' | 'wishing' | 'act_name' | 'remark' | 'scene_id'; message: string } | null;
  send(cred: Cred, req: RedPacketRequest): Promise<RedPacketResult>;
  /** WeChat gethbinfo; "not found" while sending is `not_found`, never `failed`. */
  query(cred: Cred, req: RedPacketRequest): Promise<RedPacketResult>;
}

export type { InboundMessage };
