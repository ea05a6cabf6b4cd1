/**
 * The Alipay simulator (test mode): registers apps with their own "Alipay" keypair, and acts as
 * the customer on its payer page. Its HTTP side (gateway.do, payer pages) is in routes.ts.
 */
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import type { PaymentAction } from '../../channels/types.ts';
import type { NotifyMode, SandboxDeps, SandboxMerchantDraft, SandboxOutcome, SandboxProvider } from '../types.ts';
import { insertMerchant } from './store.ts';
import { digits, payerToken } from './gateway.ts';
import { issueAlipayCertificates } from './certs.ts';

export { createAlipaySandboxRouter } from './routes.ts';
export { cancelScheduledNotifies, scheduledNotifyCount, dropFundMessages, resumeFundMessages } from './notify.ts';
export {
  SANDBOX_FUND_BALANCE_NOT_ENOUGH_FEN, SANDBOX_FUND_DAILY_LIMIT_FEN, SANDBOX_FUND_UNKNOWN_RESULT_FEN,
  SANDBOX_FUND_MISSING_PAYEE, SANDBOX_FUND_WRONG_NAME, SANDBOX_FUND_DROP_MESSAGE, sandboxFundPaidCount,
} from './fund.ts';

const generateKeyPair = promisify(crypto.generateKeyPair);

/** What act() accepts: the interface's options, plus the attempt's action so a page-pay trade can be opened first. */
export interface AlipayActOptions {
  appId: string;
  orderNo: string;
  outcome: SandboxOutcome;
  notify: NotifyMode;
  /** The action createPayment returned; for page pay the trade exists at Alipay only once its page was opened. */
  action?: PaymentAction;
}

export const alipaySandbox: SandboxProvider & { act(deps: SandboxDeps, opts: AlipayActOptions): Promise<void> } = {
  provider: 'alipay',

  async draftMerchant(deps: SandboxDeps): Promise<SandboxMerchantDraft> {
    // The app's keys, "Alipay"'s, and the root CA's that issues the certificates of certificate mode.
    const [app, alipayKeys, rootKeys] = await Promise.all([
      generateKeyPair('rsa', { modulusLength: 2048 }),
      generateKeyPair('rsa', { modulusLength: 2048 }),
      generateKeyPair('rsa', { modulusLength: 2048 }),
    ]);
    const pem = (k: crypto.KeyObject) =>
      (k.type === 'private' ? k.export({ format: 'pem', type: 'pkcs8' }) : k.export({ format: 'pem', type: 'spki' })).toString();
    const sellerId = `2088${digits(12)}`;
    return {
      async register(db, gateway) {
        // Sandbox app ids look like Alipay's own sandbox ones: 16 digits starting 2021000.
        for (let i = 0; i < 5; i++) {
          const appId = `2021000${digits(9)}`;
          // Issued per drawn app id (the app certificate names it); three RSA signatures, no key generation.
          const certs = issueAlipayCertificates({ appId, appPublicKey: app.publicKey, alipayPublicKey: alipayKeys.publicKey, rootKeys });
          const stored = await insertMerchant(db, deps.masterKey, appId, {
            app_public_key: pem(app.publicKey),
            alipay_private_key: pem(alipayKeys.privateKey),
            alipay_public_key: pem(alipayKeys.publicKey),
            seller_id: sellerId,
            app_cert_sn: certs.sns.appCertSn,
            alipay_root_cert_sn: certs.sns.alipayRootCertSn,
            alipay_cert_sn: certs.sns.alipayCertSn,
            // The 应用网关 the app would set in Alipay's console: where fund messages are pushed.
            ...(gateway ? { app_gateway_url: gateway.notifyUrl } : {}),
          });
          if (!stored) continue;
          return {
            app_id: appId,
            private_key: pem(app.privateKey),
            // Kept beside the certificates (it is the Alipay certificate's key): configs that predate
            // certificate mode, and readers of it, keep working.
            alipay_public_key: pem(alipayKeys.publicKey),
            app_cert: certs.appCert,
            alipay_public_cert: certs.alipayPublicCert,
            alipay_root_cert: certs.alipayRootCert,
            seller_id: sellerId,
            gateway: `${base(deps)}/gateway.do`,
          };
        }
        throw new Error('alipay sandbox: could not draw a free app id');
      },
    };
  },

  async act(deps: SandboxDeps, opts: AlipayActOptions): Promise<void> {
    if (opts.action?.type === 'alipay_app') return payInApp(deps, opts, opts.action.orderString);
    // The customer first lands on the payer page (page pay) or scans the code (QR).
    const page = opts.action?.type === 'redirect' ? opts.action.url : opts.action?.type === 'qr' ? opts.action.codeUrl : undefined;
    if (page) {
      const res = await fetch(page, { redirect: 'manual' });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`alipay sandbox: the payer page answered HTTP ${res.status}`);
    }
    const res = await fetch(`${base(deps)}/payer/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        app_id: opts.appId,
        out_trade_no: opts.orderNo,
        t: payerToken(deps.masterKey, opts.appId, opts.orderNo),
        action: opts.outcome,
        notify: opts.notify,
      }),
    });
    const answer = (await res.json().catch(() => undefined)) as { ok?: boolean; error?: { code?: string; message?: string } } | undefined;
    if (!res.ok || !answer?.ok) {
      throw new Error(`alipay sandbox refused ${opts.outcome} for ${opts.orderNo}: ${answer?.error?.code ?? `HTTP ${res.status}`} ${answer?.error?.message ?? ''}`.trim());
    }
  },
};

/** resultStatus the Alipay SDK reports for each outcome (app-and-money-out.md §1). */
const RESULT_STATUS: Record<SandboxOutcome, string> = { pay: '9000', fail: '4000', cancel: '6001' };

/** The customer's Alipay app: the SDK posts the order string to Alipay (our wallet stand-in) as it got it. */
async function payInApp(deps: SandboxDeps, opts: AlipayActOptions, orderString: string): Promise<void> {
  const q = new URLSearchParams({ outcome: opts.outcome, notify: opts.notify });
  const res = await fetch(`${base(deps)}/app/pay?${q}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', accept: 'application/json' },
    body: orderString,
  });
  const answer = (await res.json().catch(() => undefined)) as { resultStatus?: string; memo?: string; sub_code?: string } | undefined;
  if (!res.ok || answer?.resultStatus !== RESULT_STATUS[opts.outcome]) {
    throw new Error(`alipay sandbox refused ${opts.outcome} for ${opts.orderNo}: ${answer?.sub_code ?? `HTTP ${res.status}`} ${answer?.memo ?? ''}`.trim());
  }
}

const base = (deps: SandboxDeps) => `${deps.publicUrl.replace(/\/$/, '')}/sandbox/alipay`;
