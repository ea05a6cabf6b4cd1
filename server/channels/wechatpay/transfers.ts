/**
 * WeChat Pay 商家转账 (user-confirmation mode, API v3 `/v3/fund-app/mch-transfer/transfer-bills`):
 * the payout adapter. The bill is created WAIT_USER_CONFIRM and the recipient confirms it in
 * WeChat (wx.requestMerchantTransfer with mchId, appId and the bill's package_info); the result
 * comes as the MCHTRANSFER.BILL.FINISHED notify, or by query. Protocol notes:
 * protocols/app-and-money-out.md §5 (create, states, cancel, query, notify) and §7 (status map).
 *
 * Exactly once: out_bill_no is the core's transferNo, and a resubmission carries the same body.
 * The one part that differs between resubmissions is user_name's ciphertext (RSA-OAEP is
 * randomised); WeChat compares the decrypted name. Any answer that does not say what WeChat did
 * (5xx, timeout, SYSTEM_ERROR, FREQUENCY_LIMITED, a code not listed here) is thrown as
 * ChannelUnavailable: WeChat's doc says never to switch to a new number then, only to query.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError } from '../../errors.ts';
import type { PayoutChannel, PayoutInputError, PayoutRequest, PayoutResult, PayoutStatus, TransferNotification } from '../payouts.ts';
import { callApi, describe, faultOf, isTransient, type Answer } from './client.ts';
import { parseRfc3339, type NotifyEnvelope } from './transform.ts';
import type { WechatpayCredentials } from './index.ts';

export const TRANSFER_BILLS_PATH = '/v3/fund-app/mch-transfer/transfer-bills';
/** The event of a transfer bill's final state. */
export const TRANSFER_EVENT = 'MCHTRANSFER.BILL.FINISHED';

/** 转账场景 and the report items each requires (transfer_scene_report_infos; wrong ones are PARAM_ERROR). */
export const TRANSFER_SCENES = {
  /** 现金营销: 活动名称, 奖励说明. */
  '1000': ['活动名称', '奖励说明'],
  /** 佣金报酬: 岗位类型, 报酬说明. */
  '1005': ['岗位类型', '报酬说明'],
} as const satisfies Record<string, readonly [string, string]>;
export type TransferSceneId = keyof typeof TRANSFER_SCENES;
export const DEFAULT_TRANSFER_SCENE: TransferSceneId = '1000';

/** WeChat: transfer_amount is at least 0.1 yuan; at 2000 yuan or more user_name is mandatory. */
export const MIN_TRANSFER_FEN = 10;
export const NAME_REQUIRED_FROM_FEN = 200_000;
/** transfer_remark is string(32), counted in characters (UTF-8). */
export const REMARK_MAX_CHARS = 32;
/** A name comfortably inside one RSA-2048 OAEP-SHA1 block (214 bytes). */
const NAME_MAX_CHARS = 50;
/** WeChat openids: 28 characters of base64url. */
const OPENID = /^[A-Za-z0-9_-]{28}$/;

/** Definite refusals of a create: WeChat created nothing, so the transfer failed (a new number may follow). */
const REFUSAL_CODES = new Set(['PARAM_ERROR', 'INVALID_REQUEST', 'NOT_ENOUGH', 'NO_AUTH', 'APPID_MCHID_NOT_MATCH', 'ACCOUNT_ERROR', 'QUOTA_EXCEED', 'OPENID_MISMATCH']);
/** Request-authentication faults: our keys or ids are wrong, nothing was considered. */
const AUTH_CODES = new Set(['SIGN_ERROR', 'INVALID_AUTHORIZATION', 'MCH_NOT_EXISTS']);
/** WeChat's answer to a reused out_bill_no with other terms (FAQ pay.weixin.qq.com/doc/v3/merchant/4013778940). */
const NUMBER_CONFLICT = /单号已存在|信息不一致/;

/** fail_reason texts (pay.weixin.qq.com/doc/v3/merchant/4013774966, 订单失败原因说明), for failureMessage. */
const FAIL_REASONS: Record<string, string> = {
  ACCOUNT_FROZEN: '该用户账户被冻结',
  ACCOUNT_NOT_EXIST: '该用户账户不存在',
  DAY_RECEIVED_COUNT_EXCEED: '超过用户日收款次数',
  DAY_RECEIVED_QUOTA_EXCEED: '超过用户日收款额度',
  ID_CARD_NOT_CORRECT: '收款人身份证校验不通过',
  MCH_CANCEL: '商户撤销付款',
  NAME_NOT_CORRECT: '收款人姓名校验不通过，请核实信息',
  OPENID_INVALID: 'OpenID格式错误或者不属于商家公众账号',
  OTHER_FAIL_REASON_TYPE: '其它失败原因',
  OVERDUE_CLOSE: '超过系统重试期，系统自动关闭 (the recipient did not confirm within 24 hours)',
  PAYEE_ACCOUNT_ABNORMAL: '用户账户收款异常',
  PAYER_ACCOUNT_ABNORMAL: '商户账户付款受限',
  PRODUCT_AUTH_CHECK_FAIL: '未开通该权限或权限被冻结',
  REAL_NAME_CHECK_FAIL: '收款人未实名认证',
  TRANSFER_QUOTA_EXCEED: '超过用户单笔收款额度',
  TRANSFER_RISK: '转账存在风险',
};

/** A transfer bill as create, query and cancel answer it (fields absent where that answer has none). */
export interface WechatpayTransferBill {
  mch_id?: string;
  mchid?: string;
  out_bill_no?: string;
  transfer_bill_no?: string;
  appid?: string;
  state?: string;
  transfer_amount?: number;
  transfer_remark?: string;
  fail_reason?: string;
  openid?: string;
  create_time?: string;
  update_time?: string;
  package_info?: string;
}

export const wechatpayPayouts: PayoutChannel<WechatpayCredentials> = {
  // --- metadata --------------------------------------------------------------------------------
  provider: 'wechatpay',
  recipientTypes: ['wechat_openid'],
  minAmount: MIN_TRANSFER_FEN,
  // The field's bound; the merchant's own per-transfer limit (产品设置) refuses more with INVALID_REQUEST.
  maxAmount: 100_000_000,

  validate(req): PayoutInputError | null {
    if (req.currency.toUpperCase() !== 'CNY') return { param: 'currency', message: 'WeChat Pay transfers are in CNY only' };
    if (!Number.isSafeInteger(req.amount) || req.amount < MIN_TRANSFER_FEN) return { param: 'amount', message: 'WeChat Pay transfers are at least 10 fen (0.10 CNY)' };
    if (req.amount > wechatpayPayouts.maxAmount) return { param: 'amount', message: `WeChat Pay transfers are at most ${wechatpayPayouts.maxAmount} fen` };
    if (req.recipient.type !== 'wechat_openid') return { param: 'recipient.type', message: 'WeChat Pay transfers go to a wechat_openid' };
    if (!OPENID.test(req.recipient.account)) return { param: 'recipient.account', message: 'must be a WeChat openid under the configured appid (28 characters of A-Z a-z 0-9 _ -)' };
    const name = req.recipient.name?.trim();
    if (req.recipient.name !== undefined && !name) return { param: 'recipient.name', message: 'must not be blank' };
    if (name !== undefined && [...name].length > NAME_MAX_CHARS) return { param: 'recipient.name', message: `must be at most ${NAME_MAX_CHARS} characters` };
    if (name === undefined && req.amount >= NAME_REQUIRED_FROM_FEN) {
      return { param: 'recipient.name', message: 'WeChat Pay requires the recipient\'s real name for transfers of 2000 CNY or more' };
    }
    if (!remarkOf(req.description)) return { param: 'description', message: 'is required: WeChat shows it to the recipient (transfer_remark)' };
    return null;
  },

  async submit(cred, req): Promise<PayoutResult> {
    const invalid = wechatpayPayouts.validate(req);
    if (invalid) throw new ChannelRequestError('invalid_transfer', `WeChat Pay transfer: ${invalid.param} ${invalid.message}`);
    const { body, headers } = transferRequest(cred, req);
    const answer = await callApi(cred, 'transfer', 'POST', TRANSFER_BILLS_PATH, body, headers);
    if (!answer.ok) return refusalOf(answer);
    return billResultOf(cred, req.transferNo, answer.data as WechatpayTransferBill);
  },

  async query(cred, req): Promise<PayoutResult> {
    const answer = await callApi(cred, 'transfer query', 'GET', `${TRANSFER_BILLS_PATH}/out-bill-no/${encodeURIComponent(req.transferNo)}`);
    if (!answer.ok) {
      if (answer.status === 404 && answer.error.code === 'NOT_FOUND') return { status: 'not_found' };
      throw faultOf('transfer query', answer);
    }
    return billResultOf(cred, req.transferNo, answer.data as WechatpayTransferBill);
  },

  async cancel(cred, req): Promise<PayoutResult> {
    const answer = await callApi(cred, 'transfer cancel', 'POST', `${TRANSFER_BILLS_PATH}/out-bill-no/${encodeURIComponent(req.transferNo)}/cancel`);
    if (!answer.ok) {
      if (answer.status === 404 && answer.error.code === 'NOT_FOUND') return { status: 'not_found' };
      // Too late (confirmed, paid, closed): the bill's own state is the answer.
      if (answer.error.code === 'INVALID_REQUEST') return wechatpayPayouts.query(cred, req);
      throw faultOf('transfer cancel', answer);
    }
    return billResultOf(cred, req.transferNo, answer.data as WechatpayTransferBill);
  },
};

// --- requests ------------------------------------------------------------------------------------

/** The create body (and its Wechatpay-Serial header when user_name is sealed). */
export function transferRequest(cred: WechatpayCredentials, req: PayoutRequest): { body: Record<string, unknown>; headers: Record<string, string> } {
  const scene = cred.transferSceneId ?? DEFAULT_TRANSFER_SCENE;
  const [first, second] = TRANSFER_SCENES[scene];
  const remark = remarkOf(req.description);
  const body: Record<string, unknown> = {
    appid: cred.appid,
    out_bill_no: req.transferNo,
    transfer_scene_id: scene,
    openid: req.recipient.account,
    transfer_amount: req.amount,
    transfer_remark: remark,
    notify_url: req.notifyUrl,
    transfer_scene_report_infos: [
      { info_type: first, info_content: remark },
      { info_type: second, info_content: remark },
    ],
  };
  const headers: Record<string, string> = {};
  const name = req.recipient.name?.trim();
  if (name) {
    const key = encryptionKeyOf(cred);
    body.user_name = encryptSensitive(name, key.key);
    headers['Wechatpay-Serial'] = key.serial;
  }
  return { body, headers };
}

/** transfer_remark: the description, whitespace folded, cut at 32 characters. */
export function remarkOf(description: string): string {
  return [...description.replace(/\s+/g, ' ').trim()].slice(0, REMARK_MAX_CHARS).join('');
}

/** RSA-OAEP (SHA-1, MGF1-SHA1), base64: WeChat's sensitive-field encryption (wechatpay-go utils/rsa_crypto.go). */
export function encryptSensitive(plaintext: string, publicKey: KeyObject): string {
  return crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(plaintext, 'utf8')).toString('base64');
}

/** The inverse (the simulator's side, with the platform private key); throws on anything that does not decrypt. */
export function decryptSensitive(ciphertext: string, privateKey: KeyObject): string {
  return crypto.privateDecrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(ciphertext, 'base64')).toString('utf8');
}

/** The key to seal user_name with: the WeChat Pay public key (recommended by WeChat), else the newest valid platform certificate. */
function encryptionKeyOf(cred: WechatpayCredentials): { serial: string; key: KeyObject } {
  const now = Math.floor(Date.now() / 1000);
  let best: { serial: string; key: KeyObject; notAfter: number } | undefined;
  for (const [serial, entry] of cred.verificationKeys) {
    if (serial.startsWith('PUB_KEY_ID_')) return { serial, key: entry.key };
    if ((entry.notBefore !== undefined && now < entry.notBefore) || (entry.notAfter !== undefined && now > entry.notAfter)) continue;
    const notAfter = entry.notAfter ?? Number.MAX_SAFE_INTEGER;
    if (!best || notAfter > best.notAfter) best = { serial, key: entry.key, notAfter };
  }
  if (!best) throw new ChannelConfigError('WeChat Pay config: no valid WeChat Pay public key or platform certificate to encrypt user_name with');
  return { serial: best.serial, key: best.key };
}

// --- answers -------------------------------------------------------------------------------------

/** A non-2xx answer to a create: a definite refusal, a core bug (number reused), or a fault. */
function refusalOf(answer: Extract<Answer, { ok: false }>): PayoutResult {
  if (isTransient(answer)) throw new ChannelUnavailable(describe('transfer', answer));
  if (AUTH_CODES.has(answer.error.code)) throw new ChannelConfigError(describe('transfer', answer));
  if (answer.error.code === 'INVALID_REQUEST' && NUMBER_CONFLICT.test(answer.error.message)) {
    // The same out_bill_no with other terms: the core changed a body it must keep, never a payment failure.
    throw new ChannelRequestError('transfer_no_reused', describe('transfer', answer));
  }
  if (answer.status >= 400 && answer.status < 500 && REFUSAL_CODES.has(answer.error.code)) {
    return { status: 'failed', failureCode: answer.error.code, failureMessage: answer.error.message.slice(0, 200) };
  }
  throw new ChannelUnavailable(describe('transfer', answer));
}

/** A bill (create, query or cancel answer) → our result, by §7's table. */
function billResultOf(cred: WechatpayCredentials, transferNo: string, bill: WechatpayTransferBill): PayoutResult {
  if (bill.out_bill_no !== undefined && bill.out_bill_no !== transferNo) throw new ChannelUnavailable('WeChat Pay answered about another transfer bill');
  const status = transferStatusOf(bill.state);
  const out: PayoutResult = { status };
  if (str(bill.transfer_bill_no)) out.channelTransferNo = bill.transfer_bill_no;
  if (status === 'failed') Object.assign(out, failureOf(bill.fail_reason));
  if (status === 'succeeded') out.paidAt = timeOf(bill.update_time);
  if (status === 'awaiting_recipient' && str(bill.package_info)) {
    out.nextAction = { type: 'wechat_transfer_confirm', wechat_transfer_confirm: { mch_id: cred.mchid, app_id: str(bill.appid) ?? cred.appid, package_info: bill.package_info! } };
  }
  return out;
}

/**
 * state → ours: SUCCESS, FAIL and CANCELLED are final; WAIT_USER_CONFIRM waits for the recipient;
 * everything else (ACCEPTED, PROCESSING, TRANSFERING, CANCELING, unknown) is pending.
 */
export function transferStatusOf(state: string | undefined): Exclude<PayoutStatus, 'not_found'> {
  switch (state) {
    case 'SUCCESS':
      return 'succeeded';
    case 'FAIL':
      return 'failed';
    case 'CANCELLED':
      return 'canceled';
    case 'WAIT_USER_CONFIRM':
      return 'awaiting_recipient';
    case 'ACCEPTED':
    case 'PROCESSING':
    case 'TRANSFERING':
    case 'CANCELING':
    default:
      return 'pending';
  }
}

function failureOf(reason: string | undefined): { failureCode: string; failureMessage: string } {
  const code = str(reason)?.slice(0, 64) ?? 'OTHER_FAIL_REASON_TYPE';
  return { failureCode: code, failureMessage: FAIL_REASONS[code] ?? code };
}

// --- notifies ------------------------------------------------------------------------------------

/** A verified, decrypted MCHTRANSFER.BILL.FINISHED → TransferNotification (plaintext: mchid, out_bill_no, transfer_bill_no, state, transfer_amount, fail_reason, openid, times). */
export function transferNotificationOf(envelope: NotifyEnvelope, plaintext: Record<string, unknown>): TransferNotification {
  if (envelope.resource.original_type !== undefined && envelope.resource.original_type !== 'mch_payment') {
    throw new MalformedMessageError('WeChat Pay MCHTRANSFER notify does not carry a mch_payment');
  }
  const b = plaintext as WechatpayTransferBill;
  const transferNo = str(b.out_bill_no);
  if (!transferNo) throw new MalformedMessageError('WeChat Pay transfer notify plaintext lacks out_bill_no');
  if (!Number.isSafeInteger(b.transfer_amount) || b.transfer_amount! < 0) throw new MalformedMessageError('WeChat Pay transfer notify plaintext lacks an integer transfer_amount');
  const status = transferStatusOf(str(b.state));
  const n: TransferNotification = {
    kind: 'transfer',
    notifyId: envelope.id,
    transferNo,
    channelTransferNo: str(b.transfer_bill_no),
    status,
    amount: b.transfer_amount!,
    merchantId: str(b.mchid) ?? str(b.mch_id),
  };
  if (status === 'failed') Object.assign(n, failureOf(b.fail_reason));
  if (status === 'succeeded') n.paidAt = timeOf(b.update_time);
  return n;
}

// --- helpers -------------------------------------------------------------------------------------

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function timeOf(v: unknown): number | undefined {
  const s = str(v);
  if (!s) return undefined;
  try {
    return parseRfc3339(s);
  } catch {
    return undefined;
  }
}
