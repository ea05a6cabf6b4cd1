/**
 * WeChat Pay adapter (API v3, direct merchant): Native (QR), H5 (mobile browser), JSAPI
 * (inside WeChat) and APP (the merchant's own iOS/Android app, through the WeChat OpenSDK).
 * Requests carry a WECHATPAY2-SHA256-RSA2048 Authorization; every answer is verified
 * (signature over the exact body, 5-minute window) before anything in it is believed.
 * Notifies are verified the same way, then their AEAD_AES_256_GCM resource is decrypted with
 * the APIv3 key. Stateless: it never touches the database.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { z } from 'zod';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError } from '../../errors.ts';
import type { Ack, Channel, ChannelCode, CreateResult, InboundMessage, PaymentQueryResult, RefundResult } from '../types.ts';
import { appPayParams, decryptResource, jsapiPayParams, loadCertificate, loadPrivateKey, loadPublicKey, verifySignedMessage } from './sign.ts';
import {
  PAY_PATH, envelopeOf, isWechatpayCode, normalizeClientIp, notificationOf, payRequestBody, queryResultOf, refundRequestBody,
  refundResultOf, type WechatpayChannelCode, type WechatpayRefund, type WechatpayTransaction,
} from './transform.ts';
import { CONFIG_CODES, DECLINE_CODES, callApi, describe, faultOf, isTransient, keyLookup, lowerCaseHeaders } from './client.ts';

import { TRANSFER_EVENT, TRANSFER_SCENES, transferNotificationOf, type TransferSceneId } from './transfers.ts';
import { oauthAuthorizeUrl, exchangeOAuthCode } from './oauth.ts';
import { papayAck, papayNotificationOf } from './papay.ts';
export { oauthAuthorizeUrl, exchangeOAuthCode };

/** A secret string that never prints (JSON, inspect, template strings show [redacted]). */
export class SecretText {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return 'SecretText [redacted]';
  }
}

/** A key WeChat Pay may sign with, by the Wechatpay-Serial that names it. */
export interface VerificationKey {
  key: KeyObject;
  /** Unix seconds; platform certificates only. */
  notBefore?: number;
  notAfter?: number;
}

/** Parsed WeChat Pay credentials. Keys are KeyObjects and secrets SecretText: a logged credential shows no key material. */
export interface WechatpayCredentials {
  mchid: string;
  appid: string;
  /** The Open Platform mobile-app AppID (开放平台移动应用) bound to the merchant, for wechat_app. */
  appAppid?: string;
  /** Serial number of the merchant API certificate (named in every request). */
  serialNo: string;
  privateKey: KeyObject;
  /** The APIv3 key as a 32-byte secret KeyObject. */
  apiV3Key: KeyObject;
  /** WeChat Pay public key (by PUB_KEY_ID_…) and platform certificate keys (by serial), either or both. */
  verificationKeys: ReadonlyMap<string, VerificationKey>;
  baseUrl: string;
  /** Where the payer's browser is sent for the snsapi_base OAuth (open.weixin.qq.com, or the simulator). */
  oauthBaseUrl: string;
  /** Where the OAuth code is exchanged (api.weixin.qq.com, or the simulator). */
  apiBaseUrl: string;
  appSecret?: SecretText;
  /** 商家转账's 转账场景 (transfer_scene_id) for payouts; 1000 (现金营销) when not configured. */
  transferSceneId?: TransferSceneId;
  /** API v2 (the cash red packets): present only with api_v2_key and apiclient_cert. */
  v2?: WechatpayV2Credentials;
  /** 委托代扣's template (plan_id from the merchant platform), for agreements (papay.ts). */
  papayPlanId?: string;
}

/** What the v2 endpoints need beside the merchant API private key: the v2 key, the client certificate, where to call. */
export interface WechatpayV2Credentials {
  /** The 32-character API v2 key (API密钥) the MD5 sign is keyed with. */
  apiKey: SecretText;
  /** The merchant API certificate (apiclient_cert.pem) of private_key, presented in the TLS handshake. */
  certificate: string;
  /** https://api.mch.weixin.qq.com, or a simulator's v2 base. */
  baseUrl: string;
  /** A CA certificate to trust for baseUrl (a simulator's); never with the production host. */
  ca?: string;
}

export const WECHATPAY_PRODUCTION_BASE_URL = 'https://api.mch.weixin.qq.com';
const PRODUCTION_HOSTS = new Set(['https://api.mch.weixin.qq.com', 'https://api2.mch.weixin.qq.com']);
/** Real notifies are a few KB; anything far larger is refused before it is parsed. */
const MAX_NOTIFY_BYTES = 64 * 1024;

const httpUrl = (what: string) => z.url({ protocol: /^https?$/, error: `must be an http(s) URL ${what}` });
const hexSerial = /^[0-9A-Fa-f]{8,40}$/;

const configSchema = z.object({
  mchid: z.string().regex(/^\d{8,32}$/, 'must be the WeChat Pay merchant id (商户号, digits)'),
  appid: z.string().regex(/^wx[0-9a-fA-F]{16}$/, 'must be the AppID bound to the merchant (wx + 16 hex characters)'),
  app_appid: z.string().regex(/^wx[0-9a-fA-F]{16}$/, 'must be the Open Platform mobile-app AppID bound to the merchant (wx + 16 hex characters)').optional(),
  serial_no: z.string().regex(hexSerial, 'must be the serial number of the merchant API certificate (hex)'),
  private_key: z.string().min(1, 'is required'),
  apiv3_key: z.string().regex(/^[\x21-\x7e]{32}$/, 'must be the 32-character APIv3 key'),
  wechatpay_public_key: z.string().min(1, 'must not be empty').optional(),
  wechatpay_public_key_id: z.string().regex(/^PUB_KEY_ID_[0-9A-Za-z]{1,64}$/, 'must be the WeChat Pay public key id (PUB_KEY_ID_…)').optional(),
  platform_certificates: z.array(z.object({
    serial_no: z.string().regex(hexSerial, 'must be the platform certificate serial (hex)').optional(),
    certificate: z.string().min(1, 'must not be empty').optional(),
    public_key: z.string().min(1, 'must not be empty').optional(),
  })).max(10, 'holds at most 10 certificates').optional(),
  base_url: httpUrl('of the WeChat Pay API (no trailing path for production)').optional(),
  oauth_base_url: httpUrl('serving /connect/oauth2/authorize').optional(),
  api_base_url: httpUrl('serving /sns/oauth2/access_token').optional(),
  app_secret: z.string().regex(/^[0-9A-Za-z]{16,64}$/, 'must be the AppSecret of the appid').optional(),
  transfer_scene_id: z.enum(Object.keys(TRANSFER_SCENES) as [TransferSceneId, ...TransferSceneId[]], { error: 'must be a 商家转账 scene the adapter reports for: 1000 (现金营销) or 1005 (佣金报酬)' }).optional(),
  // API v2 (cash red packets, /mmpaymkttransfers/*): the v2 key and the client certificate of private_key.
  api_v2_key: z.string().regex(/^[0-9A-Za-z]{32}$/, 'must be the 32-character API v2 key (API密钥, letters and digits)').optional(),
  apiclient_cert: z.string().min(1, 'must not be empty').optional(),
  v2_base_url: z.url({ protocol: /^https$/, error: 'must be an https URL of the WeChat Pay API v2 (mutual TLS)' }).optional(),
  v2_ca_certificate: z.string().min(1, 'must not be empty').optional(),
  // 委托代扣 (papay.ts): the template id of the merchant platform; its v2 calls use api_v2_key.
  papay_plan_id: z.string().regex(/^\d{1,20}$/, 'must be the 委托代扣 template id (plan_id, digits) from the merchant platform').optional(),
});

export const wechatpay: Channel<WechatpayCredentials> = {
  // --- metadata --------------------------------------------------------------------------------
  provider: 'wechatpay',
  displayName: 'WeChat Pay',
  // wechat_papay: deductions of subscriptions (papay.ts); its notifies come here as v2 XML.
  codes: ['wechat_native', 'wechat_h5', 'wechat_jsapi', 'wechat_app', 'wechat_papay'],
  currencies: ['CNY'],
  payerAuthorization: { authorizeUrl: oauthAuthorizeUrl, exchangeCode: exchangeOAuthCode },

  // --- credentials -----------------------------------------------------------------------------
  parseCredentials(raw: unknown): WechatpayCredentials {
    const parsed = configSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ChannelConfigError(`WeChat Pay config: ${issue.path.join('.') || 'config'} ${issue.message}`);
    }
    const c = parsed.data;
    const privateKey = keyOrConfigError(() => loadPrivateKey(c.private_key), 'private_key', 'the merchant API private key (apiclient_key.pem, RSA-2048)');
    const ownPublicKey = crypto.createPublicKey(privateKey);
    const verificationKeys = new Map<string, VerificationKey>();

    if ((c.wechatpay_public_key === undefined) !== (c.wechatpay_public_key_id === undefined)) {
      throw new ChannelConfigError(`WeChat Pay config: ${c.wechatpay_public_key === undefined ? 'wechatpay_public_key' : 'wechatpay_public_key_id'} is required with the other`);
    }
    if (c.wechatpay_public_key !== undefined) {
      const key = keyOrConfigError(() => loadPublicKey(c.wechatpay_public_key!), 'wechatpay_public_key', 'the WeChat Pay public key (pub_key.pem, RSA-2048)');
      // The classic mix-up: the merchant's own public key where WeChat Pay's belongs.
      if (key.equals(ownPublicKey)) throw new ChannelConfigError("WeChat Pay config: wechatpay_public_key is the merchant's own public key; use the WeChat Pay public key (微信支付公钥)");
      verificationKeys.set(c.wechatpay_public_key_id!, { key });
    }
    (c.platform_certificates ?? []).forEach((entry, i) => {
      const field = `platform_certificates.${i}`;
      if ((entry.certificate === undefined) === (entry.public_key === undefined)) throw new ChannelConfigError(`WeChat Pay config: ${field} needs exactly one of certificate or public_key`);
      if (entry.certificate !== undefined) {
        const cert = keyOrConfigError(() => loadCertificate(entry.certificate!), `${field}.certificate`, 'a platform certificate (X.509 PEM, RSA-2048)');
        if (entry.serial_no && entry.serial_no.toUpperCase() !== cert.serialNo) throw new ChannelConfigError(`WeChat Pay config: ${field}.serial_no does not match the certificate's serial ${cert.serialNo}`);
        verificationKeys.set(cert.serialNo, { key: cert.publicKey, notBefore: cert.notBefore, notAfter: cert.notAfter });
      } else {
        if (!entry.serial_no) throw new ChannelConfigError(`WeChat Pay config: ${field}.serial_no is required with public_key`);
        const key = keyOrConfigError(() => loadPublicKey(entry.public_key!), `${field}.public_key`, 'the platform certificate public key (PEM, RSA-2048)');
        verificationKeys.set(entry.serial_no.toUpperCase(), { key });
      }
    });
    if (verificationKeys.size === 0) throw new ChannelConfigError('WeChat Pay config: wechatpay_public_key (with wechatpay_public_key_id) or platform_certificates is required to verify WeChat Pay');

    const baseUrl = (c.base_url ?? WECHATPAY_PRODUCTION_BASE_URL).replace(/\/+$/, '');
    const live = PRODUCTION_HOSTS.has(baseUrl);
    const v2 = v2CredentialsOf(c, ownPublicKey);
    return {
      mchid: c.mchid,
      appid: c.appid,
      appAppid: c.app_appid,
      serialNo: c.serial_no.toUpperCase(),
      privateKey,
      apiV3Key: crypto.createSecretKey(Buffer.from(c.apiv3_key, 'ascii')),
      verificationKeys,
      baseUrl,
      // A simulator serves the OAuth stand-ins under its own base URL.
      oauthBaseUrl: (c.oauth_base_url ?? (live ? 'https://open.weixin.qq.com' : baseUrl)).replace(/\/+$/, ''),
      apiBaseUrl: (c.api_base_url ?? (live ? 'https://api.weixin.qq.com' : baseUrl)).replace(/\/+$/, ''),
      appSecret: c.app_secret ? new SecretText(c.app_secret) : undefined,
      transferSceneId: c.transfer_scene_id,
      v2,
      papayPlanId: c.papay_plan_id,
    };
  },
  credentialKeys: Object.keys(configSchema.shape),
  // An APP order is placed (and notified) under the mobile app's own AppID, not the 公众号 one.
  appIdOf: (cred, channel) => (channel === 'wechat_app' && cred.appAppid) || cred.appid,
  merchantIdOf: (cred) => cred.mchid,

  // --- operations ------------------------------------------------------------------------------
  async createPayment(cred, order): Promise<CreateResult> {
    // Installments are Alipay Huabei's (DESIGN §2.5); the API refuses them for other channels already.
    if (order.installments) throw new ChannelRequestError('installments_unsupported', 'WeChat Pay does not take Huabei installments');
    const channel = wechatCode(order.channel);
    requireCny(order.currency);
    const extra: { clientIp?: string; openid?: string } = {};
    if (channel === 'wechat_h5') {
      // WeChat checks the payer's IP against the one that opens h5_url: it is required.
      extra.clientIp = normalizeClientIp(order.clientIp);
      if (!extra.clientIp) throw new ChannelRequestError('client_ip_required', 'WeChat Pay H5 needs the payer\'s IP address (client_ip): none or not an IP was given');
    }
    if (channel === 'wechat_jsapi') {
      if (!order.openid) throw new ChannelRequestError('openid_required', 'WeChat Pay JSAPI needs the payer\'s openid (payer.openid) from the snsapi_base OAuth');
      extra.openid = order.openid;
    }
    // WeChat refuses an APP prepay under an AppID that is not an Open Platform mobile app's.
    if (channel === 'wechat_app' && !cred.appAppid) {
      throw new ChannelConfigError('WeChat Pay config: app_appid (the Open Platform mobile-app AppID bound to the merchant) is required for wechat_app');
    }
    const ids = { appid: wechatpay.appIdOf(cred, channel), mchid: cred.mchid };
    const answer = await callApi(cred, `create (${channel})`, 'POST', PAY_PATH[channel], payRequestBody(ids, { ...order, channel }, extra));
    if (!answer.ok) {
      if (DECLINE_CODES.has(answer.error.code)) return { ok: false, decline: { code: answer.error.code, message: answer.error.message.slice(0, 200) } };
      throw faultOf(`create (${channel})`, answer);
    }
    const field = channel === 'wechat_native' ? 'code_url' : channel === 'wechat_h5' ? 'h5_url' : 'prepay_id';
    const value = answer.data[field];
    if (typeof value !== 'string' || !value) throw new ChannelUnavailable(`WeChat Pay create (${channel}) answered without ${field}`);
    if (channel === 'wechat_native') return { ok: true, action: { type: 'qr', codeUrl: value } };
    if (channel === 'wechat_h5') {
      // WeChat: append redirect_url (url-encoded) to h5_url; it must be on the merchant's H5 domain.
      const url = `${value}${value.includes('?') ? '&' : '?'}redirect_url=${encodeURIComponent(order.returnUrl)}`;
      return { ok: true, action: { type: 'redirect', url } };
    }
    if (channel === 'wechat_app') {
      // The app passes these to the OpenSDK's PayReq; its errCode is display only, the notify or a query settles.
      return { ok: true, action: { type: 'wechat_app', params: { ...appPayParams(ids.appid, cred.mchid, value, cred.privateKey) } } };
    }
    return { ok: true, action: { type: 'jsapi', params: { ...jsapiPayParams(cred.appid, value, cred.privateKey) } } };
  },

  async queryPayment(cred, orderNo): Promise<PaymentQueryResult> {
    const answer = await callApi(cred, 'query', 'GET', `/v3/pay/transactions/out-trade-no/${encodeURIComponent(orderNo)}?mchid=${encodeURIComponent(cred.mchid)}`);
    if (!answer.ok) {
      if (answer.error.code === 'ORDER_NOT_EXIST') return { status: 'not_found' };
      throw faultOf('query', answer);
    }
    const tx = answer.data as WechatpayTransaction;
    if (tx.out_trade_no !== undefined && tx.out_trade_no !== orderNo) throw new ChannelUnavailable('WeChat Pay query answered about another order');
    return queryResultOf(tx);
  },

  async closePayment(cred, orderNo): Promise<void> {
    const answer = await callApi(cred, 'close', 'POST', `/v3/pay/transactions/out-trade-no/${encodeURIComponent(orderNo)}/close`, { mchid: cred.mchid });
    if (answer.ok) return;
    const code = answer.error.code;
    if (code === 'ORDER_CLOSED' || code === 'ORDER_NOT_EXIST') return;
    if (code === 'ORDERPAID' || code === 'ORDER_PAID') throw new ChannelRequestError(code, describe('close', answer));
    // Other refusals (TRADE_ERROR, INVALID_REQUEST) do not say whether the order is still payable: ask.
    if (code === 'TRADE_ERROR' || code === 'INVALID_REQUEST') {
      const now = await wechatpay.queryPayment(cred, orderNo);
      if (now.status === 'closed' || now.status === 'not_found') return;
    }
    throw faultOf('close', answer);
  },

  async refund(cred, req): Promise<RefundResult> {
    requireCny(req.currency);
    const answer = await callApi(cred, 'refund', 'POST', '/v3/refund/domestic/refunds', refundRequestBody(req));
    if (!answer.ok) {
      if (isTransient(answer) || CONFIG_CODES.has(answer.error.code) || answer.error.code === 'PARAM_ERROR') throw faultOf('refund', answer);
      // A refusal (over-refund, balance, unpaid order…): no refund was created.
      return { status: 'failed', failureMessage: `${answer.error.code}: ${answer.error.message.slice(0, 200)}` };
    }
    const r = answer.data as WechatpayRefund;
    if (r.out_refund_no !== undefined && r.out_refund_no !== req.refundNo) throw new ChannelUnavailable('WeChat Pay refund answered about another refund');
    return refundResultOf(r);
  },

  /**
   * RESOURCE_NOT_EXISTS is neither pending (the refund may never have reached WeChat, so waiting
   * would be forever) nor failed (a request still in flight may yet create it, and a second
   * refund would pay twice). It is thrown as ChannelUnavailable, a fault that settles nothing:
   * the safe move is to re-submit refund() with the same refundNo, which WeChat treats as the
   * same refund. (The core treats a ChannelRequestError from refund() as final: not this.)
   */
  async queryRefund(cred, orderNo, refundNo): Promise<RefundResult> {
    const answer = await callApi(cred, 'refund query', 'GET', `/v3/refund/domestic/refunds/${encodeURIComponent(refundNo)}`);
    if (!answer.ok) {
      if (answer.error.code === 'RESOURCE_NOT_EXISTS') {
        throw new ChannelUnavailable(`WeChat Pay refund query: RESOURCE_NOT_EXISTS for ${refundNo.slice(0, 64)}; not final: re-submit the refund with the same out_refund_no to learn its fate`);
      }
      throw faultOf('refund query', answer);
    }
    const r = answer.data as WechatpayRefund;
    if (r.out_trade_no !== undefined && r.out_trade_no !== orderNo) throw new ChannelUnavailable(`WeChat Pay refund query: refund ${refundNo.slice(0, 64)} belongs to another order`);
    return refundResultOf(r);
  },

  async parseNotification(cred, msg: InboundMessage) {
    if (msg.body.length > MAX_NOTIFY_BYTES) throw new MalformedMessageError(`WeChat Pay notify of ${msg.body.length} bytes is larger than any real one`);
    const mediaType = msg.contentType.split(';')[0]!.trim().toLowerCase();
    // 委托代扣's contract and PAP deduction notifies are API v2: XML signed with the v2 key.
    if (isXmlMessage(msg)) return papayNotificationOf(cred, msg.body.toString('utf8'));
    if (mediaType !== 'application/json') throw new MalformedMessageError(`WeChat Pay notifies are JSON, got ${mediaType.slice(0, 60) || 'no content type'}`);
    const text = msg.body.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new MalformedMessageError('WeChat Pay notify is not JSON');
    }
    // The signature covers the exact body bytes; only then is anything in it believed.
    verifySignedMessage(lowerCaseHeaders(msg.headers), text, keyLookup(cred));
    const envelope = envelopeOf(json);
    const plaintext = decryptResource(envelope.resource, cred.apiV3Key);
    let content: unknown;
    try {
      content = JSON.parse(plaintext);
    } catch {
      throw new MalformedMessageError('WeChat Pay notify resource does not hold JSON');
    }
    if (!content || typeof content !== 'object' || Array.isArray(content)) throw new MalformedMessageError('WeChat Pay notify resource is not a JSON object');
    // 商家转账's result (payouts, transfers.ts).
    if (envelope.event_type === TRANSFER_EVENT) return transferNotificationOf(envelope, content as Record<string, unknown>);
    return notificationOf(envelope, content as Record<string, unknown>);
  },

  acknowledge(accepted: boolean, msg?: InboundMessage): Ack {
    if (msg && isXmlMessage(msg)) return papayAck(accepted);
    // WeChat: 200 or 204 without a body means received; any other status makes it retry.
    return accepted
      ? { status: 204, contentType: 'application/json; charset=utf-8', body: '' }
      : { status: 500, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ code: 'FAIL', message: '失败' }) };
  },
};

// --- private helpers ---------------------------------------------------------------------------

/** An API v2 notify: XML by its media type (WeChat sends text/xml), or by its first byte. */
function isXmlMessage(msg: InboundMessage): boolean {
  const mediaType = msg.contentType.split(';')[0]!.trim().toLowerCase();
  return mediaType === 'text/xml' || mediaType === 'application/xml' || (mediaType !== 'application/json' && msg.body.subarray(0, 64).toString('utf8').trimStart().startsWith('<'));
}

function wechatCode(code: ChannelCode): WechatpayChannelCode {
  if (isWechatpayCode(code)) return code;
  throw new ChannelRequestError('channel_unsupported', `WeChat Pay does not serve channel ${code}`);
}

function requireCny(currency: string): void {
  if (currency.toUpperCase() !== 'CNY') throw new ChannelRequestError('currency_unsupported', `WeChat Pay (domestic API v3) settles CNY only, not ${currency}`);
}

/** The API v2 part of the config: both the key and the certificate, or neither; the certificate must be private_key's. */
function v2CredentialsOf(c: z.infer<typeof configSchema>, ownPublicKey: KeyObject): WechatpayV2Credentials | undefined {
  if (c.api_v2_key === undefined && c.apiclient_cert === undefined) {
    if (c.v2_base_url !== undefined || c.v2_ca_certificate !== undefined) throw new ChannelConfigError('WeChat Pay config: v2_base_url and v2_ca_certificate need api_v2_key and apiclient_cert');
    return undefined;
  }
  if (c.api_v2_key === undefined || c.apiclient_cert === undefined) {
    throw new ChannelConfigError(`WeChat Pay config: ${c.api_v2_key === undefined ? 'api_v2_key' : 'apiclient_cert'} is required with the other (API v2: red packets)`);
  }
  const cert = keyOrConfigError(() => new crypto.X509Certificate(pemText(c.apiclient_cert!, 'CERTIFICATE')), 'apiclient_cert', 'the merchant API certificate (apiclient_cert.pem, X.509 PEM)');
  if (!cert.publicKey.equals(ownPublicKey)) throw new ChannelConfigError('WeChat Pay config: apiclient_cert is not the certificate of private_key (their public keys differ)');
  const baseUrl = (c.v2_base_url ?? WECHATPAY_PRODUCTION_BASE_URL).replace(/\/+$/, '');
  let ca: string | undefined;
  if (c.v2_ca_certificate !== undefined) {
    // Trusting an extra CA is for a simulator; WeChat Pay's own hosts chain to the system roots.
    if (PRODUCTION_V2_HOSTS.has(new URL(baseUrl).hostname)) throw new ChannelConfigError('WeChat Pay config: v2_ca_certificate is accepted only with a non-production v2_base_url');
    keyOrConfigError(() => new crypto.X509Certificate(pemText(c.v2_ca_certificate!, 'CERTIFICATE')), 'v2_ca_certificate', 'a CA certificate (X.509 PEM)');
    ca = pemText(c.v2_ca_certificate, 'CERTIFICATE');
  }
  return { apiKey: new SecretText(c.api_v2_key), certificate: cert.toString(), baseUrl, ca };
}

const PRODUCTION_V2_HOSTS = new Set(['api.mch.weixin.qq.com', 'api2.mch.weixin.qq.com']);

/** PEM as given, or a bare base64 body wrapped in its armour. */
function pemText(text: string, label: string): string {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN ')) return `${trimmed}\n`;
  return `-----BEGIN ${label}-----\n${(trimmed.replace(/\s+/g, '').match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${label}-----\n`;
}

function keyOrConfigError<T>(load: () => T, field: string, expected: string): T {
  try {
    return load();
  } catch {
    // Never echo the value: it may be a key.
    throw new ChannelConfigError(`WeChat Pay config: ${field} must be ${expected}`);
  }
}
