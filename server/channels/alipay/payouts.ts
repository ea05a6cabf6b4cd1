/**
 * Alipay money out: transfers to an Alipay account (单笔转账, `alipay.fund.trans.uni.transfer`
 * with TRANS_ACCOUNT_NO_PWD / DIRECT_TRANSFER) and B2C cash red packets (the same API with
 * STD_RED_PACKET and business_params sub_biz_scene REDPACKET), their query
 * (`alipay.fund.trans.common.query`) and the `alipay.fund.trans.order.changed` message Alipay
 * pushes to the app's gateway URL. Protocol notes: protocols/app-and-money-out.md §4, §6.2, §7.
 *
 * Fund-out APIs are callable only in certificate mode (公钥证书): the config must hold app_cert,
 * alipay_public_cert and alipay_root_cert; callGateway then signs with the two SNs and checks the
 * answer's alipay_cert_sn (cert.ts).
 *
 * Exactly once: out_biz_no is the core's number and every resubmission carries the same
 * biz_content (Alipay answers a repeat with the original result). A 20000, a timeout, a
 * SYSTEM_ERROR or an unknown sub_code is thrown as ChannelUnavailable: the core queries, and
 * resubmits under the same out_biz_no only when the query finds nothing.
 */
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError } from '../../errors.ts';
import type {
  PayoutChannel, PayoutInputError, PayoutRequest, PayoutResult, PayoutStatus, RecipientType, RedPacketChannel, RedPacketNotification,
  RedPacketRequest, RedPacketResult, RedPacketStatus, TransferNotification,
} from '../payouts.ts';
import { callGateway, type AlipayCredentials } from './index.ts';
import { cleanText, fenToYuan, parseBeijingTime, yuanToFen, type AlipayResponse } from './transform.ts';

export const TRANSFER_METHOD = 'alipay.fund.trans.uni.transfer';
export const TRANSFER_QUERY_METHOD = 'alipay.fund.trans.common.query';
/** The message (消息服务) of a fund order's new status, posted to the app's gateway URL (应用网关). */
export const ORDER_CHANGED_MESSAGE = 'alipay.fund.trans.order.changed';

const TRANSFER_PRODUCT = 'TRANS_ACCOUNT_NO_PWD';
const RED_PACKET_PRODUCT = 'STD_RED_PACKET';
const BIZ_SCENE = 'DIRECT_TRANSFER';

/** trans_amount ranges (fen): TRANS_ACCOUNT_NO_PWD 0.1–100000000 yuan, STD_RED_PACKET 0.01–100000000. */
export const MIN_TRANSFER_FEN = 10;
export const MIN_RED_PACKET_FEN = 1;
const MAX_FEN = 10_000_000_000;
/** order_title String(128), remark String(200), the payee's name String(128) (AlipayFundTransUniTransferModel). */
const TITLE_MAX = 128;
const REMARK_MAX = 200;
const NAME_MAX = 128;

const IDENTITY_TYPE: Partial<Record<RecipientType, string>> = {
  alipay_user_id: 'ALIPAY_USER_ID',
  alipay_login_id: 'ALIPAY_LOGON_ID',
  alipay_open_id: 'ALIPAY_OPEN_ID',
};
const USER_ID = /^2088\d{12}$/;
const LOGON_ID = /^(?:1\d{10}|[^\s@]{1,64}@[^\s@]{1,190}\.[A-Za-z]{2,24})$/;
const OPEN_ID = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * Business refusals of a transfer (40004 sub_codes from the uni.transfer error list): Alipay paid
 * nothing, and the transfer failed. Anything not here is treated as unknown (queried).
 */
const DECLINE_SUB_CODES = new Set([
  'PAYEE_NOT_EXIST', 'PAYEE_USER_INFO_ERROR', 'PAYEE_ACCOUNT_STATUS_ERROR', 'PAYEE_ACCOUNT_NOT_EXSIT', 'PAYEE_CERT_INFO_ERROR',
  'PAYER_BALANCE_NOT_ENOUGH', 'BALANCE_IS_NOT_ENOUGH', 'PAYER_STATUS_ERROR', 'PAYER_CERTIFY_CHECK_FAIL', 'PAYER_USER_INFO_ERROR',
  'EXCEED_LIMIT_SM_AMOUNT', 'EXCEED_LIMIT_DM_AMOUNT', 'EXCEED_LIMIT_SM_MIN_AMOUNT', 'EXCEED_LIMIT_PERSONAL_SM_AMOUNT', 'EXCEED_LIMIT_UNRN_DM_AMOUNT',
  'PERMIT_CHECK_PERM_LIMITED', 'PERMIT_NON_BANK_LIMIT_PAYEE', 'PAYEE_TRUSTEESHIP_ACCOUNT_NOT_EXIST',
  'INVALID_PARAMETER', 'PRODUCT_NOT_SIGN', 'NO_ORDER_PERMISSION', 'PAYCARD_UNABLE_PAYMENT', 'PAYER_PAYEE_CANNOT_SAME',
  'PAYEE_NOT_RELNAME_CERTIFY', 'REMARK_HAS_SENSITIVE_WORD', 'CARD_BIN_ERROR', 'MONEY_PAY_CLOSED',
]);
/** The same out_biz_no with other terms: a bug of ours (a body must never change), not a failure of the transfer. */
const NUMBER_CONFLICT_SUB_CODES = new Set(['PAYMENT_INFO_INCONSISTENCY', 'ORDER_EXIST_WITH_DIFF_INFO', 'REQUEST_PARAM_DIFF']);
/** The query's "no such order" (and the transfer may still be placed under that number). */
const NOT_FOUND_SUB_CODES = new Set(['ORDER_NOT_EXIST']);

function requireCertMode(cred: AlipayCredentials): void {
  if (!cred.certMode) {
    throw new ChannelConfigError('Alipay fund-out (alipay.fund.trans.*) needs certificate mode: add app_cert, alipay_public_cert and alipay_root_cert to the Alipay config');
  }
}

/** The recipient's checks both products share. */
function validateRecipient(r: PayoutRequest['recipient']): PayoutInputError | null {
  const type = IDENTITY_TYPE[r.type];
  if (!type) return { param: 'recipient.type', message: 'Alipay pays alipay_user_id, alipay_login_id or alipay_open_id recipients' };
  if (r.type === 'alipay_user_id' && !USER_ID.test(r.account)) return { param: 'recipient.account', message: 'must be a 16-digit Alipay user id starting 2088' };
  if (r.type === 'alipay_login_id' && !LOGON_ID.test(r.account)) return { param: 'recipient.account', message: 'must be the Alipay login: an email address or an 11-digit mainland mobile number' };
  if (r.type === 'alipay_open_id' && !OPEN_ID.test(r.account)) return { param: 'recipient.account', message: 'must be an Alipay open id (16–128 letters, digits, _ and -)' };
  const name = r.name?.trim();
  if (r.name !== undefined && !name) return { param: 'recipient.name', message: 'must not be blank' };
  if (name !== undefined && [...name].length > NAME_MAX) return { param: 'recipient.name', message: `must be at most ${NAME_MAX} characters` };
  // Alipay checks a login id against the account holder's real name and requires it.
  if (r.type === 'alipay_login_id' && name === undefined) return { param: 'recipient.name', message: "is required for an alipay_login_id: Alipay checks it against the account holder's real name" };
  return null;
}

function validateAmount(amount: number, currency: string, min: number, what: string): PayoutInputError | null {
  if (currency.toUpperCase() !== 'CNY') return { param: 'currency', message: `Alipay ${what} are in CNY only` };
  if (!Number.isSafeInteger(amount) || amount < min) return { param: 'amount', message: `Alipay ${what} are at least ${min} fen (${fenToYuan(min)} CNY)` };
  if (amount > MAX_FEN) return { param: 'amount', message: `Alipay ${what} are at most ${MAX_FEN} fen` };
  return null;
}

function payeeInfo(r: PayoutRequest['recipient']): Record<string, string> {
  const info: Record<string, string> = { identity: r.account, identity_type: IDENTITY_TYPE[r.type]! };
  const name = r.name?.trim();
  if (name) info.name = name;
  return info;
}

/** biz_content of a transfer; a function of the request alone, so every resubmission is identical. */
export function transferBizContent(req: PayoutRequest): Record<string, unknown> {
  return {
    out_biz_no: req.transferNo,
    trans_amount: fenToYuan(req.amount),
    product_code: TRANSFER_PRODUCT,
    biz_scene: BIZ_SCENE,
    order_title: cleanText(req.description, TITLE_MAX),
    payee_info: payeeInfo(req.recipient),
  };
}

/** biz_content of a B2C red packet: order_title is the packet's title in the recipient's Alipay, remark its note. */
export function redPacketBizContent(req: RedPacketRequest): Record<string, unknown> {
  return {
    out_biz_no: req.packetNo,
    trans_amount: fenToYuan(req.amount),
    product_code: RED_PACKET_PRODUCT,
    biz_scene: BIZ_SCENE,
    order_title: cleanText(req.wishing, TITLE_MAX),
    payee_info: payeeInfo(req.recipient),
    remark: cleanText(req.remark, REMARK_MAX),
    business_params: JSON.stringify({ sub_biz_scene: 'REDPACKET' }),
  };
}

/** One fund order's answer (create or query), read into a status and its details. */
interface FundOrder {
  status: string | undefined;
  orderId?: string;
  failureCode?: string;
  failureMessage?: string;
  at?: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function timeOf(v: unknown): number | undefined {
  const s = str(v);
  if (!s) return undefined;
  try {
    return parseBeijingTime(s);
  } catch {
    return undefined;
  }
}

function fundOrderOf(r: AlipayResponse, outBizNo: string): FundOrder {
  if (r.out_biz_no !== undefined && r.out_biz_no !== outBizNo) throw new ChannelUnavailable('Alipay answered about another out_biz_no');
  const status = str(r.status);
  const o: FundOrder = { status, orderId: str(r.order_id), at: timeOf(r.pay_date) ?? timeOf(r.trans_date) };
  if (status === 'FAIL') {
    o.failureCode = str(r.error_code)?.slice(0, 64) ?? 'FAIL';
    o.failureMessage = (str(r.fail_reason) ?? o.failureCode).slice(0, 200);
  }
  return o;
}

/** §7: SUCCESS paid, FAIL failed, REFUND returned after success (bank-card payees), DEALING and anything else pending. */
export function transferStatusOf(status: string | undefined): Exclude<PayoutStatus, 'not_found'> {
  switch (status) {
    case 'SUCCESS':
      return 'succeeded';
    case 'FAIL':
      return 'failed';
    case 'REFUND':
    case 'CLOSED':
      return 'canceled';
    default:
      return 'pending';
  }
}

/** A red packet to an Alipay account is in the recipient's balance once SUCCESS: received at once. */
export function redPacketStatusOf(status: string | undefined): Exclude<RedPacketStatus, 'not_found'> {
  switch (status) {
    case 'SUCCESS':
      return 'received';
    case 'FAIL':
    case 'CLOSED':
      return 'failed';
    case 'REFUND':
      return 'refunded';
    default:
      return 'sending';
  }
}

/**
 * Places (or places again, same number and body) a fund order. A definite refusal is returned as
 * FAIL with its sub_code; an unknown answer is thrown as ChannelUnavailable.
 */
async function placeFundOrder(cred: AlipayCredentials, biz: Record<string, unknown>, outBizNo: string): Promise<FundOrder> {
  requireCertMode(cred);
  const r = await callGateway(cred, TRANSFER_METHOD, biz);
  if (r.code === '10000') {
    const o = fundOrderOf(r, outBizNo);
    if (!o.status) throw new ChannelUnavailable(`Alipay ${TRANSFER_METHOD} answered 10000 without status`);
    return o;
  }
  const sub = r.sub_code ?? '';
  const words = `${sub}: ${String(r.sub_msg ?? r.msg ?? '').slice(0, 200)}`;
  if (NUMBER_CONFLICT_SUB_CODES.has(sub)) throw new ChannelRequestError('transfer_no_reused', `Alipay ${TRANSFER_METHOD}: out_biz_no ${outBizNo} already names an order with other terms (${words})`);
  if (DECLINE_SUB_CODES.has(sub)) return { status: 'FAIL', failureCode: sub, failureMessage: words.slice(0, 200) };
  // SYSTEM_ERROR and every sub_code not known as a refusal: Alipay may have placed it.
  throw new ChannelUnavailable(`Alipay ${TRANSFER_METHOD}: 40004 ${words} (not a known refusal: query, then resubmit with the same out_biz_no)`);
}

async function queryFundOrder(cred: AlipayCredentials, outBizNo: string, productCode: string): Promise<FundOrder | undefined> {
  requireCertMode(cred);
  const r = await callGateway(cred, TRANSFER_QUERY_METHOD, { out_biz_no: outBizNo, product_code: productCode, biz_scene: BIZ_SCENE });
  if (r.code === '10000') return fundOrderOf(r, outBizNo);
  if (NOT_FOUND_SUB_CODES.has(r.sub_code ?? '')) return undefined;
  throw new ChannelUnavailable(`Alipay ${TRANSFER_QUERY_METHOD}: 40004 ${r.sub_code ?? ''} ${String(r.sub_msg ?? '').slice(0, 200)}`);
}

function payoutResultOf(o: FundOrder): PayoutResult {
  const status = transferStatusOf(o.status);
  const out: PayoutResult = { status };
  if (o.orderId) out.channelTransferNo = o.orderId;
  if (status === 'failed') Object.assign(out, { failureCode: o.failureCode ?? 'FAIL', failureMessage: o.failureMessage });
  if (status === 'succeeded' && o.at !== undefined) out.paidAt = o.at;
  return out;
}

function redPacketResultOf(o: FundOrder): RedPacketResult {
  const status = redPacketStatusOf(o.status);
  const out: RedPacketResult = { status };
  if (o.orderId) out.channelPacketNo = o.orderId;
  if (status === 'failed') Object.assign(out, { failureCode: o.failureCode ?? 'FAIL', failureMessage: o.failureMessage });
  if (status === 'received' && o.at !== undefined) out.receivedAt = o.at;
  return out;
}

export const alipayPayouts: PayoutChannel<AlipayCredentials> = {
  provider: 'alipay',
  recipientTypes: ['alipay_user_id', 'alipay_login_id', 'alipay_open_id'],
  minAmount: MIN_TRANSFER_FEN,
  maxAmount: MAX_FEN,

  validate(req): PayoutInputError | null {
    const bad = validateAmount(req.amount, req.currency, MIN_TRANSFER_FEN, 'transfers') ?? validateRecipient(req.recipient);
    if (bad) return bad;
    if (!cleanText(req.description, TITLE_MAX)) return { param: 'description', message: "is required: Alipay shows it in the recipient's bill (order_title)" };
    return null;
  },

  async submit(cred, req) {
    const invalid = alipayPayouts.validate(req);
    if (invalid) throw new ChannelRequestError('invalid_transfer', `Alipay transfer: ${invalid.param} ${invalid.message}`);
    return payoutResultOf(await placeFundOrder(cred, transferBizContent(req), req.transferNo));
  },

  async query(cred, req) {
    const o = await queryFundOrder(cred, req.transferNo, TRANSFER_PRODUCT);
    return o ? payoutResultOf(o) : { status: 'not_found' };
  },
};

export const alipayRedPackets: RedPacketChannel<AlipayCredentials> = {
  provider: 'alipay',
  recipientTypes: ['alipay_user_id', 'alipay_login_id', 'alipay_open_id'],
  minAmount: MIN_RED_PACKET_FEN,
  maxAmount: MAX_FEN,

  validate(req) {
    const bad = validateAmount(req.amount, req.currency, MIN_RED_PACKET_FEN, 'red packets') ?? validateRecipient(req.recipient);
    if (bad) return bad;
    if (req.sceneId !== undefined) return { param: 'scene_id', message: 'is a WeChat red packet field; Alipay red packets have no scene' };
    if (!cleanText(req.wishing, TITLE_MAX)) return { param: 'wishing', message: "is required: it is the packet's title in Alipay (order_title)" };
    if ([...req.wishing.trim()].length > TITLE_MAX) return { param: 'wishing', message: `must be at most ${TITLE_MAX} characters for Alipay` };
    if ([...req.remark.trim()].length > REMARK_MAX) return { param: 'remark', message: `must be at most ${REMARK_MAX} characters for Alipay` };
    return null;
  },

  async send(cred, req) {
    const invalid = alipayRedPackets.validate(req);
    if (invalid) throw new ChannelRequestError('invalid_red_packet', `Alipay red packet: ${invalid.param} ${invalid.message}`);
    return redPacketResultOf(await placeFundOrder(cred, redPacketBizContent(req), req.packetNo));
  },

  async query(cred, req) {
    const o = await queryFundOrder(cred, req.packetNo, RED_PACKET_PRODUCT);
    return o ? redPacketResultOf(o) : { status: 'not_found' };
  },
};

// --- the order.changed message -------------------------------------------------------------------

/**
 * A verified `alipay.fund.trans.order.changed` message (its form fields, signature checked by the
 * caller) → the transfer's or red packet's notification. biz_content is JSON text: out_biz_no,
 * order_id, pay_fund_order_id, product_code, biz_scene, origin_interface, status, action_type,
 * trans_amount, pay_date (and error_code / fail_reason on FAIL).
 */
export function fundMessageNotificationOf(params: Record<string, string>): TransferNotification | RedPacketNotification {
  if (params.msg_method !== ORDER_CHANGED_MESSAGE) throw new MalformedMessageError(`Alipay message ${String(params.msg_method).slice(0, 60)} is not handled`);
  if (!params.notify_id) throw new MalformedMessageError('Alipay message lacks notify_id');
  let biz: Record<string, unknown>;
  try {
    biz = JSON.parse(params.biz_content ?? '');
  } catch {
    throw new MalformedMessageError('Alipay message biz_content is not JSON');
  }
  if (!biz || typeof biz !== 'object' || Array.isArray(biz)) throw new MalformedMessageError('Alipay message biz_content is not a JSON object');
  const outBizNo = str(biz.out_biz_no);
  if (!outBizNo) throw new MalformedMessageError('Alipay message biz_content lacks out_biz_no');
  let amount: number;
  try {
    amount = yuanToFen(str(biz.trans_amount) ?? '');
  } catch {
    throw new MalformedMessageError('Alipay message biz_content lacks a yuan trans_amount');
  }
  const o = fundOrderOf({ code: '10000', msg: 'Success', ...biz } as AlipayResponse, outBizNo);
  const base = { notifyId: params.notify_id, amount, appId: str(params.app_id) };
  if (str(biz.product_code) === RED_PACKET_PRODUCT) {
    const r = redPacketResultOf(o);
    if (r.status === 'sending' || r.status === 'not_found') throw new MalformedMessageError(`Alipay message status ${String(o.status).slice(0, 20)} is not a final red-packet status`);
    return { kind: 'red_packet', ...base, packetNo: outBizNo, channelPacketNo: r.channelPacketNo, status: r.status, failureCode: r.failureCode, failureMessage: r.failureMessage };
  }
  const r = payoutResultOf(o);
  return {
    kind: 'transfer', ...base, transferNo: outBizNo, channelTransferNo: r.channelTransferNo, status: r.status as Exclude<PayoutStatus, 'not_found'>,
    failureCode: r.failureCode, failureMessage: r.failureMessage, paidAt: r.paidAt,
  };
}
