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

export { createAlipaySandboxRouter } from './routes.ts';
export { cancelScheduledNotifies, scheduledNotifyCount } from './notify.ts';

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
    const [app, alipayKeys] = await Promise.all([
      generateKeyPair('rsa', { modulusLength: 2048 }),
      generateKeyPair('rsa', { modulusLength: 2048 }),
    ]);
    const pem = (k: crypto.KeyObject) =>
      (k.type === 'private' ? k.export({ format: 'pem', type: 'pkcs8' }) : k.export({ format: 'pem', type: 'spki' })).toString();
    const sellerId = `2088${digits(12)}`;
    return {
      async register(db) {
        // Sandbox app ids look like Alipay's own sandbox ones: 16 digits starting 2021000.
        for (let i = 0; i < 5; i++) {
          const appId = `2021000${digits(9)}`;
          const stored = await insertMerchant(db, deps.masterKey, appId, {
            app_public_key: pem(app.publicKey),
            alipay_private_key: pem(alipayKeys.privateKey),
            alipay_public_key: pem(alipayKeys.publicKey),
            seller_id: sellerId,
          });
          if (!stored) continue;
          return {
            app_id: appId,
            private_key: pem(app.privateKey),
            alipay_public_key: pem(alipayKeys.publicKey),
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
