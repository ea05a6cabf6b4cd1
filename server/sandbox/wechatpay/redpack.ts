/**
 * The simulated WeChat Pay API v2 for cash red packets, under /sandbox/wechatpay/v2:
 * `POST /mmpaymkttransfers/sendredpack` and `POST /mmpaymkttransfers/gethbinfo`, XML in and out,
 * served over mutual TLS on the gateway's own port (v2-tls.ts). A request over plain HTTP, or
 * without a client certificate issued by the simulator's CA for the merchant, answers CA_ERROR.
 *
 * Checks, in WeChat's order: the client certificate, a known mch_id whose certificate it is, the
 * MD5 sign with the merchant's v2 key (SIGN_ERROR), the required fields (PARAM_ERROR), wxappid =
 * the merchant's 公众号 AppID (ILLEGAL_APPID; its mobile-app AppID is refused too), total_num 1,
 * the amount (100–20000 fen, or 30–49900 with scene_id PRODUCT_1…8; MONEY_LIMIT), text lengths in
 * UTF-8 bytes, 10 packets per user per merchant per Beijing day (SENDNUMLIMIT). mch_billno is
 * re-entrant: a resend with the same fields gets the first answer and pays nothing more; other
 * fields under a used number get FATAL_ERROR.
 *
 * Lifecycle: a packet sent is invisible to gethbinfo for its first NOT_FOUND_MS (NOT_FOUND, as a
 * real one may be while it is being sent), SENDING until SENDING_MS, then SENT. The recipient
 * (wechatpaySandbox.redPacketRecipient) opens it (RECEIVED, with an hblist row) or leaves it for
 * the 24 hours, compressed to now (REFUND, with refund_time and refund_amount).
 *
 * Scripted outcomes:
 * - total_amount 6601 (66.01 yuan): NOTENOUGH (the merchant's balance is short); nothing is sent.
 * - wishing containing `[sandbox:systemerror]`: the packet IS sent and paid, but the answer is
 *   SYSTEMERROR; a resend under the same mch_billno returns the original SUCCESS.
 * - wishing containing `[sandbox:processing]`: the packet is sent, the answer is PROCESSING.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import express, { type Request, type Response } from 'express';
import type { Knex } from 'knex';
import { randomId } from '../../crypto.ts';
import type { SandboxDeps } from '../types.ts';
import { rfc3339Beijing } from '../../channels/wechatpay/transform.ts';
import { buildXml, MAX_XML_BYTES, parseXml, textFields, v2Sign, verifyV2Sign } from '../../channels/wechatpay/v2.ts';
import { findPacket, findV2Merchant, insertPacket, insertV2Merchant, packetsOfDay, transitionPacket, type SandboxPacket, type V2Merchant } from './redpack-store.ts';
import { issueMerchantCertificate, v2Authority, v2BaseUrl } from './v2-tls.ts';
import { digits } from './wire.ts';
import { PAPAY_V2_ROUTES } from './papay-deduct.ts';

/** How long a fresh packet is unknown to gethbinfo, then SENDING (milliseconds since the send). */
export const NOT_FOUND_MS = 300;
export const SENDING_MS = 700;
export const NOTENOUGH_AMOUNT = 6601;
export const SYSTEMERROR_MARK = '[sandbox:systemerror]';
export const PROCESSING_MARK = '[sandbox:processing]';
const PER_USER_PER_DAY = 10;

export type Fields = Record<string, string>;
export interface Answer {
  fields: Fields;
  /** Signed with the merchant's v2 key (only once the request's own sign verified). */
  signWith?: string;
  /** Nested lists (gethbinfo's hblist): outside the sign, which covers the flat fields. */
  lists?: Record<string, { row: string; rows: Record<string, string>[] }>;
}

export function createV2Router(deps: SandboxDeps): express.Router {
  const router = express.Router();
  router.use(express.text({ type: () => true, limit: MAX_XML_BYTES }));
  const run = (fn: (deps: SandboxDeps, req: Request, merchant: V2Merchant, f: Fields) => Promise<Answer>) => async (req: Request, res: Response) => {
    const checked = await authenticate(deps, req);
    const answer = 'merchant' in checked ? await fn(deps, req, checked.merchant, checked.request) : checked;
    if (answer.fields.err_code) deps.logger.info('wechatpay sandbox v2 refused or failed a request', { path: req.path, code: answer.fields.err_code });
    const body = answer.signWith ? { ...answer.fields, sign: v2Sign(answer.fields, answer.signWith) } : answer.fields;
    res.status(200).type('text/plain; charset=utf-8').send(buildXml(body, answer.lists));
  };
  router.post('/mmpaymkttransfers/sendredpack', run(sendRedPack));
  router.post('/mmpaymkttransfers/gethbinfo', run(getHbInfo));
  // 委托代扣 (papay.ts, papay-deduct.ts).
  for (const [path, fn] of PAPAY_V2_ROUTES) router.post(path, run(fn));
  router.use((_req, res) => {
    res.status(404).type('text/plain').send('No such API v2 endpoint at the simulator\n');
  });
  return router;
}

export const fail = (errCode: string, des: string, signWith?: string): Answer => ({
  fields: { return_code: 'SUCCESS', return_msg: des, result_code: 'FAIL', err_code: errCode, err_code_des: des },
  signWith,
});
const caError = (des: string): Answer => ({ fields: { return_code: 'FAIL', return_msg: des, result_code: 'FAIL', err_code: 'CA_ERROR', err_code_des: des } });

/** The certificate, the merchant, the sign: what every v2 request must pass first. */
async function authenticate(deps: SandboxDeps, req: Request): Promise<Answer | { merchant: V2Merchant; request: Fields }> {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return caError('请求未携带证书 (the v2 API takes HTTPS with the merchant API certificate)');
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.fingerprint256) return caError('请求未携带证书 (no client certificate was presented)');
  if (!socket.authorized) return caError('证书出错，请登录微信支付商户平台下载证书 (the client certificate was not issued by WeChat Pay)');
  let msg;
  try {
    msg = parseXml(typeof req.body === 'string' ? req.body : '');
  } catch {
    return fail('XML_ERROR', '输入xml参数格式错误');
  }
  const fields = textFields(msg);
  const merchant = fields.mch_id ? await findV2Merchant(deps.db, deps.masterKey, fields.mch_id) : undefined;
  if (!merchant) return fail('PARAM_ERROR', 'mch_id 商户号不存在或未开通 API v2');
  if (peer.subject?.CN !== merchant.mchid || peer.fingerprint256 !== merchant.certFingerprint) {
    return caError('证书与商户号不匹配 (the client certificate is not this mch_id\'s)');
  }
  if (!verifyV2Sign(fields, merchant.apiV2Key)) return fail('SIGN_ERROR', '签名错误 (MD5 over the sorted non-empty fields, then &key=<API v2 key>)');
  return { merchant, request: fields };
}

const SEND_REQUIRED = ['nonce_str', 'mch_billno', 'mch_id', 'wxappid', 'send_name', 're_openid', 'total_amount', 'total_num', 'wishing', 'client_ip', 'act_name', 'remark'];
const TERMS = ['mch_billno', 'mch_id', 'wxappid', 'send_name', 're_openid', 'total_amount', 'total_num', 'wishing', 'client_ip', 'act_name', 'remark', 'scene_id', 'risk_info'];
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

async function sendRedPack(deps: SandboxDeps, _req: Request, merchant: V2Merchant, f: Fields): Promise<Answer> {
  const key = merchant.apiV2Key;
  const missing = SEND_REQUIRED.find((k) => !f[k]);
  if (missing) return fail('PARAM_ERROR', `参数错误: ${missing} 必填`, key);
  if (!/^[0-9A-Za-z]{1,28}$/.test(f.mch_billno!)) return fail('PARAM_ERROR', '参数错误: mch_billno 须为 28 位以内的字母或数字', key);
  if (f.wxappid !== merchant.appid) return fail('ILLEGAL_APPID', '非法appid，请确认是否为公众号的appid，不能为APP的appid', key);
  if (f.total_num !== '1') return fail('PARAM_ERROR', '参数错误: 普通红包 total_num 必须为 1', key);
  if (!/^[1-9]\d{0,9}$/.test(f.total_amount!)) return fail('PARAM_ERROR', '参数错误: total_amount 须为正整数（分）', key);
  if (!/^[A-Za-z0-9_-]{16,64}$/.test(f.re_openid!)) return fail('OPENID_ERROR', 'openid字段不正确，请确认openid是否为wxappid下的用户', key);
  if (f.scene_id !== undefined && !/^PRODUCT_[1-8]$/.test(f.scene_id)) return fail('PARAM_ERROR', '参数错误: scene_id 取值 PRODUCT_1…PRODUCT_8', key);
  for (const [k, max] of [['send_name', 32], ['wishing', 128], ['act_name', 32], ['remark', 256], ['client_ip', 15]] as const) {
    if (bytes(f[k]!) > max) return fail('PARAM_ERROR', `参数错误: ${k} 超过 ${max} 字节`, key);
  }
  const amount = Number(f.total_amount);
  if (f.scene_id === undefined && (amount < 100 || amount > 20_000)) return fail('MONEY_LIMIT', '每个红包金额必须在 1–200 元之间；其他金额须传 scene_id', key);
  if (amount < 30 || amount > 49_900) return fail('MONEY_LIMIT', '每个红包金额必须在 0.3–499 元之间', key);

  const terms = crypto.createHash('sha256').update(JSON.stringify(TERMS.map((k) => f[k] ?? ''))).digest('hex');
  const earlier = await findPacket(deps.db, merchant.mchid, f.mch_billno!);
  if (earlier) return resendAnswer(earlier, terms, key);
  if (amount === NOTENOUGH_AMOUNT) return fail('NOTENOUGH', '帐号余额不足，请到商户平台充值后再重试', key);
  const now = Date.now();
  const day = rfc3339Beijing(Math.floor(now / 1000)).slice(0, 10).replace(/-/g, '');
  if ((await packetsOfDay(deps.db, merchant.mchid, f.re_openid!, day)) >= PER_USER_PER_DAY) {
    return fail('SENDNUMLIMIT', '该用户今日领取红包个数超过限制', key);
  }
  const packet: SandboxPacket = {
    mchid: merchant.mchid, billno: f.mch_billno!, detailId: `1000041701${day}${digits(10)}`, openid: f.re_openid!, status: 'SENT', amount, terms, sendDay: day, createdMs: now,
    data: { sendName: f.send_name!, wishing: f.wishing!, actName: f.act_name!, remark: f.remark!, sceneId: f.scene_id, clientIp: f.client_ip!, sendTime: Math.floor(now / 1000) },
  };
  if (!(await insertPacket(deps.db, packet))) {
    // A concurrent send under the same number won: answer as its resend.
    return resendAnswer((await findPacket(deps.db, merchant.mchid, f.mch_billno!))!, terms, key);
  }
  if (f.wishing!.includes(SYSTEMERROR_MARK)) return fail('SYSTEMERROR', '系统繁忙，请稍后再试（请用原商户订单号重试）', key);
  if (f.wishing!.includes(PROCESSING_MARK)) return fail('PROCESSING', '请求已受理，请稍后使用原单号查询发放结果', key);
  return successOf(packet, f.wxappid!, key);
}

function resendAnswer(earlier: SandboxPacket, terms: string, key: string): Answer {
  if (earlier.terms !== terms) return fail('FATAL_ERROR', '该商户订单号已发放过红包，但本次请求参数与原单不一致', key);
  return successOf(earlier, undefined, key);
}

function successOf(p: SandboxPacket, wxappid: string | undefined, key: string): Answer {
  return {
    fields: {
      return_code: 'SUCCESS', return_msg: '发放成功', result_code: 'SUCCESS', err_code: '', err_code_des: '',
      mch_billno: p.billno, mch_id: p.mchid, ...(wxappid ? { wxappid } : {}), re_openid: p.openid, total_amount: String(p.amount), send_listid: p.detailId,
    },
    signWith: key,
  };
}

const beijingTime = (unix: number) => rfc3339Beijing(unix).slice(0, 19).replace('T', ' ');

async function getHbInfo(deps: SandboxDeps, _req: Request, merchant: V2Merchant, f: Fields): Promise<Answer> {
  const key = merchant.apiV2Key;
  const missing = ['nonce_str', 'mch_billno', 'mch_id', 'appid', 'bill_type'].find((k) => !f[k]);
  if (missing) return fail('PARAM_ERROR', `参数错误: ${missing} 必填`, key);
  if (f.bill_type !== 'MCHT') return fail('PARAM_ERROR', '参数错误: bill_type 须为 MCHT', key);
  if (f.appid !== merchant.appid) return fail('PARAM_ERROR', 'appid 与商户号不匹配', key);
  const p = await findPacket(deps.db, merchant.mchid, f.mch_billno!);
  const age = p ? Date.now() - p.createdMs : 0;
  if (!p || (p.status === 'SENT' && age < NOT_FOUND_MS)) return fail('NOT_FOUND', '指定单号数据不存在', key);
  const status = p.status === 'SENT' && age < SENDING_MS ? 'SENDING' : p.status;
  const d = p.data;
  const fields: Fields = {
    return_code: 'SUCCESS', return_msg: 'OK', result_code: 'SUCCESS', mch_billno: p.billno, mch_id: p.mchid, detail_id: p.detailId, status,
    send_type: 'API', hb_type: 'NORMAL', total_num: '1', total_amount: String(p.amount), send_time: beijingTime(d.sendTime),
    wishing: d.wishing, remark: d.remark, act_name: d.actName,
    ...(d.reason ? { reason: d.reason } : {}),
    ...(d.refundTime !== undefined ? { refund_time: beijingTime(d.refundTime), refund_amount: String(p.amount) } : {}),
  };
  const answer = { fields, signWith: key };
  if (status !== 'RECEIVED' || d.rcvTime === undefined) return answer;
  return { ...answer, lists: { hblist: { row: 'hbinfo', rows: [{ openid: p.openid, amount: String(p.amount), rcv_time: beijingTime(d.rcvTime) }] } } };
}

/** The recipient: opens the packet, or lets the 24 hours pass (compressed to now) so it is refunded. */
export async function actAsRecipient(deps: SandboxDeps, opts: { merchantId: string; packetNo: string; outcome: 'open' | 'expire' }): Promise<void> {
  const p = await findPacket(deps.db, opts.merchantId, opts.packetNo);
  const refuse = (why: string) => new Error(`wechatpay sandbox refused ${opts.outcome} for ${opts.packetNo}: ${why}`);
  if (!p) throw refuse('NOT_FOUND no such red packet at the simulator');
  if (p.status !== 'SENT') throw refuse(`the packet is ${p.status}`);
  const now = Math.floor(Date.now() / 1000);
  const done = opts.outcome === 'open'
    ? await transitionPacket(deps.db, p, 'SENT', 'RECEIVED', { ...p.data, rcvTime: now })
    : await transitionPacket(deps.db, p, 'SENT', 'REFUND', { ...p.data, refundTime: now });
  if (!done) throw refuse('the packet changed meanwhile');
}

/**
 * The API v2 side of a merchant being drafted: the simulator's CA is ready before the
 * provisioning transaction opens; register() (inside it) issues the merchant's apiclient
 * certificate for its API key, draws its v2 key, and returns the gateway-side config fields.
 */
export async function draftV2Merchant(deps: SandboxDeps) {
  const ca = await v2Authority(deps);
  return {
    async register(db: Knex, m: { mchid: string; appid: string; serialNo: string; publicKey: KeyObject }): Promise<Record<string, string>> {
      const certificate = issueMerchantCertificate(ca, { mchid: m.mchid, serialNo: m.serialNo, publicKey: m.publicKey });
      const apiV2Key = randomId(32);
      const certFingerprint = new crypto.X509Certificate(certificate).fingerprint256;
      if (!(await insertV2Merchant(db, deps.masterKey, { mchid: m.mchid, appid: m.appid, apiV2Key, certFingerprint }))) {
        throw new Error(`wechatpay sandbox: mchid ${m.mchid} already has API v2 keys`);
      }
      return { api_v2_key: apiV2Key, apiclient_cert: certificate, v2_base_url: v2BaseUrl(deps.publicUrl), v2_ca_certificate: ca.certificate };
    },
  };
}
