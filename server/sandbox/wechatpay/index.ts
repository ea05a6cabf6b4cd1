/**
 * The WeChat Pay simulator (test mode): registers merchants with their own "WeChat Pay" platform
 * key, and acts as the customer on its payer pages. Its HTTP side is in routes.ts.
 */
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import type { PaymentAction } from '../../channels/types.ts';
import type { NotifyMode, SandboxDeps, SandboxMerchantDraft, SandboxOutcome, SandboxProvider } from '../types.ts';
import { randomId } from '../../crypto.ts';
import { findMerchantByAppid, findOrder, insertMerchant } from './store.ts';
import { codeUrlOf, digits, hex, sandboxOpenid } from './wire.ts';
import { actAsRecipient, draftV2Merchant } from './redpack.ts';
import { registerPapayPlan } from './papay.ts';
export { actAsPapayUser, cancelPapayNotifies } from './papay.ts';

export { createWechatpaySandboxRouter } from './routes.ts';
import { actAsTransferRecipient } from './transfers.ts';
export { sandboxTransferPaidCount } from './transfers.ts';
export { cancelScheduledNotifies, scheduledNotifyCount, NOTIFY_RETRY_DELAYS_MS } from './notify.ts';
export { redPacketPaidCount } from './redpack-store.ts';
export { acceptWechatpaySandboxTls } from './routes.ts';

const generateKeyPair = promisify(crypto.generateKeyPair);

/** The simulator's address for the "scan" of a code_url: the cashier's sandbox link in test mode. */
export function sandboxScanUrl(publicUrl: string, codeUrl: string): string {
  return `${base(publicUrl)}/scan?code_url=${encodeURIComponent(codeUrl)}`;
}

/**
 * The JSAPI stand-in for a getBrandWCPayRequest call with these parameters (in test mode the
 * cashier sends the payer here instead of calling WeixinJSBridge). With returnUrl, the payer
 * comes back there with `err_msg=get_brand_wcpay_request:ok|fail|cancel`, as the JS callback would get.
 */
export function sandboxJsapiUrl(publicUrl: string, params: Record<string, string>, returnUrl?: string): string {
  const q = new URLSearchParams(params);
  if (returnUrl) q.set('return_url', returnUrl);
  return `${base(publicUrl)}/jsapi?${q}`;
}

/** The sandbox payer's openid for an appid (what the OAuth stand-in hands out), for test helpers that skip the OAuth. */
export const sandboxPayerOpenid = (deps: Pick<SandboxDeps, 'masterKey'>, appid: string): string => sandboxOpenid(deps.masterKey, appid);

/** How the simulator signs its answers: with a WeChat Pay public key id (default) or a platform certificate serial. */
export interface WechatpayProvisionOptions {
  verification?: 'public_key' | 'platform_certificate';
}

export interface WechatpayActOptions {
  /** The WeChat appid of the merchant. */
  appId: string;
  orderNo: string;
  outcome: SandboxOutcome;
  notify: NotifyMode;
  /** What createPayment returned: the customer opens it first (scan page, h5_url, or the JSAPI stand-in). */
  action?: PaymentAction;
}

export const wechatpaySandbox: SandboxProvider & {
  draftMerchant(deps: SandboxDeps, opts?: WechatpayProvisionOptions): Promise<SandboxMerchantDraft>;
  act(deps: SandboxDeps, opts: WechatpayActOptions): Promise<void>;
} = {
  provider: 'wechatpay',
  scanUrl: sandboxScanUrl,
  inAppPayUrl: sandboxJsapiUrl,
  payerId: (deps, appid) => sandboxPayerOpenid(deps, appid),
  transferRecipient: actAsTransferRecipient,

  async draftMerchant(deps: SandboxDeps, opts: WechatpayProvisionOptions = {}): Promise<SandboxMerchantDraft> {
    const [merchantKeys, platformKeys] = await Promise.all([
      generateKeyPair('rsa', { modulusLength: 2048 }),
      generateKeyPair('rsa', { modulusLength: 2048 }),
    ]);
    const pem = (k: crypto.KeyObject) =>
      (k.type === 'private' ? k.export({ format: 'pem', type: 'pkcs8' }) : k.export({ format: 'pem', type: 'spki' })).toString();
    const byCertificate = opts.verification === 'platform_certificate';
    // API v2 (red packets): the apiclient certificate of the merchant key, and the v2 key.
    const v2 = await draftV2Merchant(deps);
    return {
      async register(db) {
        for (let i = 0; i < 5; i++) {
          // Sandbox merchants look like real ones: mchid 19…, appid wx + 16 hex, a 40-hex certificate serial.
          const mchid = `19${digits(8)}`;
          const appid = `wx${hex(16)}`;
          // The merchant's mobile app on the Open Platform: APP orders are placed under its own AppID.
          const appAppid = `wx${hex(16)}`;
          const serialNo = hex(40).toUpperCase();
          const apiv3Key = randomId(32);
          const appSecret = hex(32);
          const platformSerial = byCertificate ? hex(40).toUpperCase() : `PUB_KEY_ID_0112${mchid}${digits(14)}`;
          const stored = await insertMerchant(db, deps.masterKey, mchid, {
            appid, app_appid: appAppid, serial_no: serialNo, merchant_public_key: pem(merchantKeys.publicKey), apiv3_key: apiv3Key,
            platform_private_key: pem(platformKeys.privateKey), platform_serial: platformSerial, app_secret: appSecret,
          });
          if (!stored) continue;
          const v2Config = await v2.register(db, { mchid, appid, serialNo, publicKey: merchantKeys.publicKey });
          // 委托代扣: the merchant's template (papay.ts).
          const papayConfig = await registerPapayPlan(db, deps.masterKey, mchid);
          const verification = byCertificate
            ? { platform_certificates: [{ serial_no: platformSerial, public_key: pem(platformKeys.publicKey) }] }
            : { wechatpay_public_key: pem(platformKeys.publicKey), wechatpay_public_key_id: platformSerial };
          return {
            mchid, appid, app_appid: appAppid, serial_no: serialNo, private_key: pem(merchantKeys.privateKey), apiv3_key: apiv3Key,
            ...verification, app_secret: appSecret, base_url: base(deps.publicUrl), ...v2Config, ...papayConfig,
          };
        }
        throw new Error('wechatpay sandbox: could not draw a free mchid');
      },
    };
  },

  redPacketRecipient: actAsRecipient,

  async act(deps: SandboxDeps, opts: WechatpayActOptions): Promise<void> {
    if (opts.action?.type === 'wechat_app') return payInApp(deps, opts, opts.action.params);
    const merchant = await findMerchantByAppid(deps.db, deps.masterKey, opts.appId);
    const order = merchant && (await findOrder(deps.db, merchant.mchid, opts.orderNo));
    if (!order) throw new Error(`wechatpay sandbox refused ${opts.outcome} for ${opts.orderNo}: ORDER_NOT_EXIST no such order at the simulator`);
    const b = base(deps.publicUrl);
    // The customer first opens what the merchant gave them, as a browser or WeChat would.
    const a = opts.action;
    let page: Response | undefined;
    if (a?.type === 'qr') page = await fetch(sandboxScanUrl(deps.publicUrl, a.codeUrl));
    else if (a?.type === 'redirect') page = await fetch(a.url, { redirect: 'manual' });
    else if (a?.type === 'jsapi') page = await fetch(`${b}/jsapi`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(a.params) });
    else if (order.data.tradeType === 'NATIVE') page = await fetch(sandboxScanUrl(deps.publicUrl, codeUrlOf(order.token)));
    else if (order.data.tradeType === 'MWEB') page = await fetch(`${b}/h5/${order.token}`, { redirect: 'manual' });
    if (page) {
      const html = await page.text();
      if (!page.ok) {
        const code = /data-error-code="([^"]*)"/.exec(html)?.[1] ?? `HTTP ${page.status}`;
        throw new Error(`wechatpay sandbox refused ${opts.outcome} for ${opts.orderNo}: the payer page answered ${code}`);
      }
    }
    const res = await fetch(`${b}/payer/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ token: order.token, action: opts.outcome, notify: opts.notify }),
    });
    const answer = (await res.json().catch(() => undefined)) as { ok?: boolean; error?: { code?: string; message?: string } } | undefined;
    if (!res.ok || !answer?.ok) {
      throw new Error(`wechatpay sandbox refused ${opts.outcome} for ${opts.orderNo}: ${answer?.error?.code ?? `HTTP ${res.status}`} ${answer?.error?.message ?? ''}`.trim());
    }
  },
};

/** errCode the OpenSDK's PayResp reports for each outcome (app-and-money-out.md §2). */
const ERR_CODE: Record<SandboxOutcome, number> = { pay: 0, fail: -1, cancel: -2 };

/** The customer's WeChat app: the OpenSDK takes the PayReq fields as the merchant's app got them. */
async function payInApp(deps: SandboxDeps, opts: WechatpayActOptions, params: Record<string, string>): Promise<void> {
  const q = new URLSearchParams({ outcome: opts.outcome, notify: opts.notify });
  const res = await fetch(`${base(deps.publicUrl)}/app/pay?${q}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(params),
  });
  const answer = (await res.json().catch(() => undefined)) as { errCode?: number; errStr?: string; code?: string } | undefined;
  if (!res.ok || answer?.errCode !== ERR_CODE[opts.outcome]) {
    throw new Error(`wechatpay sandbox refused ${opts.outcome} for ${opts.orderNo}: ${answer?.code ?? `HTTP ${res.status}`} ${answer?.errStr ?? ''}`.trim());
  }
}

const base = (publicUrl: string) => `${publicUrl.replace(/\/$/, '')}/sandbox/wechatpay`;
