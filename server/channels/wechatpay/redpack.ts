/**
 * WeChat Pay cash red packets (现金红包, API v2): `POST /mmpaymkttransfers/sendredpack` and
 * `POST /mmpaymkttransfers/gethbinfo`, XML bodies with the MD5 sign keyed by the v2 API key, over
 * mutual TLS with the merchant API certificate (protocols/app-and-money-out.md §6.1, §7).
 * WeChat sends no notify for red packets: the core polls query(). Stateless.
 *
 * Exactly once: mch_billno is the core's packetNo and every resend carries the same body; an
 * answer that does not say what happened (SYSTEMERROR, an unknown code, a timeout, anything not
 * XML) is thrown as ChannelUnavailable, and WeChat's doc says to resend under the same number.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../errors.ts';
import type { RedPacketChannel, RedPacketRequest, RedPacketResult } from '../payouts.ts';
import type { WechatpayCredentials, WechatpayV2Credentials } from './index.ts';
import { newNonce } from './sign.ts';
import { normalizeClientIp } from './transform.ts';
import { buildXml, parseXml, postXml, textFields, v2Sign, verifyV2Sign, type XmlMessage, type XmlRow } from './v2.ts';

const SEND_PATH = '/mmpaymkttransfers/sendredpack';
const QUERY_PATH = '/mmpaymkttransfers/gethbinfo';
const REQUEST_TIMEOUT_MS = 15_000;

/** Default per-packet range without scene_id (doc 4011974053: 1–200 yuan). */
const PLAIN_MIN = 100;
const PLAIN_MAX = 20_000;
/**
 * With scene_id the range is what the merchant's 产品设置 allows; 0.3 yuan is the floor of any
 * red packet and 499 yuan the ceiling we accept (the simulator enforces the same).
 */
export const SCENE_MIN = 30;
export const SCENE_MAX = 49_900;
/** Byte limits of the text fields (String(n) in the doc; WeChat counts UTF-8 bytes: 3 per Chinese character). */
const LIMITS = { senderName: 32, wishing: 128, actName: 32, remark: 256 } as const;
const SCENE_IDS = /^PRODUCT_[1-8]$/;
/** An openid under the 公众号: 28 base64url characters in practice. */
const OPENID = /^[A-Za-z0-9_-]{16,64}$/;

/** Codes that mean the merchant's setup is wrong (key, certificate, appid): nothing was sent, and no resend helps until it is fixed. */
const CONFIG_CODES = new Set(['SIGN_ERROR', 'SIGNERROR', 'CA_ERROR', 'ILLEGAL_APPID', 'MSGAPPID_ERROR', 'ACCEPTMODE_ERROR']);
/** Definite refusals of this packet: it was not sent and will not be. */
const DECLINE_CODES = new Set([
  'NOTENOUGH', 'SENDNUMLIMIT', 'MONEY_LIMIT', 'OPENID_ERROR', 'PARAM_ERROR', 'SEND_FAILED', 'NO_AUTH', 'SENDAMOUNTLIMIT', 'RCVDAMOUNTLIMIT',
]);
/** Refusals for now, not of the packet (too fast, night hours): resend later under the same number. */
const RETRY_LATER_CODES = new Set(['SYSTEMERROR', 'FREQ_LIMIT', 'SECOND_OVER_LIMITED', 'TIME_LIMITED']);

export const wechatpayRedPackets: RedPacketChannel<WechatpayCredentials> = {
  provider: 'wechatpay',
  recipientTypes: ['wechat_openid'],
  minAmount: SCENE_MIN,
  maxAmount: SCENE_MAX,

  validate(req) {
    if (req.recipient.type !== 'wechat_openid') return { param: 'recipient.type', message: 'WeChat red packets go to a wechat_openid (the openid under the merchant\'s Official Account appid)' };
    if (!OPENID.test(req.recipient.account)) return { param: 'recipient.account', message: 'must be a WeChat openid (letters, digits, - and _, as the Official Account OAuth gives it)' };
    if (req.currency.toUpperCase() !== 'CNY') return { param: 'currency', message: 'WeChat red packets are paid in CNY only' };
    if (!Number.isSafeInteger(req.amount) || req.amount <= 0) return { param: 'amount', message: 'must be a positive integer of fen' };
    if (req.sceneId !== undefined && !SCENE_IDS.test(req.sceneId)) return { param: 'scene_id', message: 'must be one of PRODUCT_1 … PRODUCT_8' };
    if (req.sceneId === undefined && (req.amount < PLAIN_MIN || req.amount > PLAIN_MAX)) {
      return { param: 'scene_id', message: `is required for a red packet below ${PLAIN_MIN} or above ${PLAIN_MAX} fen (1–200 yuan)` };
    }
    if (req.amount < SCENE_MIN || req.amount > SCENE_MAX) return { param: 'amount', message: `must be between ${SCENE_MIN} and ${SCENE_MAX} fen` };
    const text = [
      ['sender_name', req.senderName, LIMITS.senderName], ['wishing', req.wishing, LIMITS.wishing],
      ['act_name', req.actName, LIMITS.actName], ['remark', req.remark, LIMITS.remark],
    ] as const;
    for (const [param, value, max] of text) {
      if (!value || !value.trim()) return { param, message: 'is required by WeChat' };
      if (Buffer.byteLength(value, 'utf8') > max) return { param, message: `must be at most ${max} bytes of UTF-8 (a Chinese character takes 3)` };
    }
    return null;
  },

  async send(cred, req): Promise<RedPacketResult> {
    const v2 = v2Of(cred);
    const clientIp = normalizeClientIp(req.clientIp);
    // client_ip is String(15): an IPv4 address of the calling server.
    if (!clientIp || !net.isIPv4(clientIp)) throw new ChannelRequestError('client_ip_invalid', 'WeChat red packets need the IPv4 address of the calling server (client_ip)');
    const answer = await call(cred, v2, 'sendredpack', SEND_PATH, {
      nonce_str: nonceOf(req),
      mch_billno: req.packetNo,
      mch_id: cred.mchid,
      // The Official Account AppID: an Open Platform app AppID cannot send red packets.
      wxappid: cred.appid,
      send_name: req.senderName,
      re_openid: req.recipient.account,
      total_amount: req.amount,
      total_num: 1,
      wishing: req.wishing,
      client_ip: clientIp,
      act_name: req.actName,
      remark: req.remark,
      scene_id: req.sceneId,
    });
    if (answer.result_code === 'SUCCESS') {
      if (answer.mch_billno !== undefined && answer.mch_billno !== req.packetNo) throw new ChannelUnavailable('WeChat sendredpack answered about another mch_billno');
      const listid = str(answer.send_listid);
      if (!listid) throw new ChannelUnavailable('WeChat sendredpack answered SUCCESS without send_listid');
      return { status: 'sent', channelPacketNo: listid };
    }
    const code = str(answer.err_code);
    const words = describe('sendredpack', answer);
    if (code === 'PROCESSING') return { status: 'sending' };
    if (DECLINE_CODES.has(code)) return { status: 'failed', failureCode: code, failureMessage: str(answer.err_code_des).slice(0, 200) || code };
    // The number is taken by a packet with other terms: that packet stands; this request is a caller's mistake.
    if (code === 'FATAL_ERROR') throw new ChannelRequestError(code, `${words}; mch_billno ${req.packetNo.slice(0, 32)} already names a packet with other terms: query it`);
    if (code === 'XML_ERROR') throw new ChannelRequestError(code, words);
    if (CONFIG_CODES.has(code)) throw new ChannelConfigError(words);
    // SYSTEMERROR, the retry-later codes and every unknown code: the result is unknown.
    throw new ChannelUnavailable(RETRY_LATER_CODES.has(code) ? words : `${words} (not a known answer: resend with the same mch_billno)`);
  },

  async query(cred, req): Promise<RedPacketResult> {
    const v2 = v2Of(cred);
    const answer = await call(cred, v2, 'gethbinfo', QUERY_PATH, {
      nonce_str: newNonce(),
      mch_billno: req.packetNo,
      mch_id: cred.mchid,
      appid: cred.appid,
      bill_type: 'MCHT',
    });
    if (answer.result_code !== 'SUCCESS') {
      const code = str(answer.err_code);
      // "Not found" may mean still being sent (doc 4011983160): never a failure.
      if (code === 'NOT_FOUND') return { status: 'not_found' };
      if (CONFIG_CODES.has(code)) throw new ChannelConfigError(describe('gethbinfo', answer));
      if (code === 'PARAM_ERROR' || code === 'XML_ERROR') throw new ChannelRequestError(code, describe('gethbinfo', answer));
      throw new ChannelUnavailable(describe('gethbinfo', answer));
    }
    if (answer.mch_billno !== undefined && answer.mch_billno !== req.packetNo) throw new ChannelUnavailable('WeChat gethbinfo answered about another mch_billno');
    return queryResultOf(answer);
  },
};

// --- private helpers ---------------------------------------------------------------------------

/** One gethbinfo answer → our status, by §7's table (one switch, default: still sending). */
export function queryResultOf(a: XmlMessage): RedPacketResult {
  const channelPacketNo = str(a.detail_id) || undefined;
  const status = str(a.status);
  switch (status) {
    case 'SENT':
    // Refunding after 24 h unopened: until REFUND it still counts as delivered and unopened.
    case 'RFUND_ING':
      return { status: 'sent', channelPacketNo };
    case 'RECEIVED': {
      const row: XmlRow | undefined = Array.isArray(a.hblist) ? a.hblist[0] : undefined;
      return { status: 'received', channelPacketNo, receivedAt: beijingSeconds(row?.rcv_time) };
    }
    case 'REFUND':
      return { status: 'refunded', channelPacketNo, refundedAt: beijingSeconds(str(a.refund_time)) };
    case 'FAILED':
      return { status: 'failed', channelPacketNo, failureCode: 'FAILED', failureMessage: str(a.reason).slice(0, 200) || '发放失败' };
    case 'SENDING':
    default:
      return { status: 'sending', channelPacketNo };
  }
}

function v2Of(cred: WechatpayCredentials): WechatpayV2Credentials {
  if (!cred.v2) {
    throw new ChannelConfigError('WeChat Pay config: red packets use API v2 and need api_v2_key (the 32-character API密钥) and apiclient_cert (the merchant API certificate of private_key)');
  }
  return cred.v2;
}

/**
 * The resend carries the same body, nonce included: derived from the packet number and its
 * creation time, so the sign (and every byte) of a resend matches the first request.
 */
function nonceOf(req: RedPacketRequest): string {
  return crypto.createHash('sha256').update(`sendredpack\n${req.packetNo}\n${req.createdAt}`).digest('hex').slice(0, 32);
}

/** Signs, posts, parses and verifies one v2 call; throws for anything that is not a readable, authentic answer (papay.ts uses it too). */
export async function call(cred: WechatpayCredentials, v2: WechatpayV2Credentials, op: string, path: string, fields: Record<string, string | number | undefined>): Promise<XmlMessage> {
  const key = v2.apiKey.reveal();
  const body = buildXml({ ...fields, sign: v2Sign(fields, key) });
  const privateKeyPem = cred.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const outcome = await postXml(v2.baseUrl + path, body, { key: privateKeyPem, cert: v2.certificate, ca: v2.ca }, REQUEST_TIMEOUT_MS);
  if (outcome.kind === 'timeout') throw new ChannelUnavailable(`WeChat ${op}: no answer within ${REQUEST_TIMEOUT_MS / 1000}s`);
  if (outcome.kind === 'unreachable') {
    // A refused handshake is how WeChat answers a missing or foreign client certificate.
    throw new ChannelUnavailable(`WeChat ${op}: API v2 unreachable (${outcome.code.slice(0, 40)})`);
  }
  let answer: XmlMessage;
  try {
    answer = parseXml(outcome.body);
  } catch (err) {
    if (!(err instanceof MalformedMessageError)) throw err;
    throw new ChannelUnavailable(`WeChat ${op}: unreadable answer (HTTP ${outcome.status}, ${err.message})`);
  }
  const plain = textFields(answer);
  if (plain.sign !== undefined && !verifyV2Sign(plain, key)) {
    // Believed neither as a result nor as a refusal.
    throw new SignatureError(`WeChat ${op}: the answer's sign does not verify with api_v2_key`);
  }
  if (plain.return_code !== 'SUCCESS' && !plain.err_code) {
    // return_code FAIL without err_code: the request itself was refused; return_msg says why.
    const msg = str(plain.return_msg).slice(0, 200);
    if (/签名|sign/i.test(msg) || /证书|cert/i.test(msg)) throw new ChannelConfigError(`WeChat ${op}: return_code FAIL: ${msg}`);
    throw new ChannelUnavailable(`WeChat ${op}: return_code ${str(plain.return_code).slice(0, 20) || '(none)'}: ${msg}`);
  }
  return answer;
}

function describe(op: string, a: XmlMessage): string {
  const code = str(a.err_code) || str(a.return_code) || 'no code';
  const words = str(a.err_code_des) || str(a.return_msg);
  return `WeChat ${op}: ${code.slice(0, 40)}${words ? `: ${words.slice(0, 200)}` : ''}`;
}

const str = (v: string | XmlRow[] | undefined): string => (typeof v === 'string' ? v : '');

/** `yyyy-MM-dd HH:mm:ss` in Beijing time → unix seconds. */
function beijingSeconds(text: string | undefined): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text ?? '');
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}+08:00`);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}
