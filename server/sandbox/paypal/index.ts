/**
 * The PayPal simulator (test mode): registers REST apps with a webhook listener (the gateway
 * app's notify URL) signed by the simulator's own key and certificate, and acts as the payer on
 * its approval page. Its HTTP side is in routes.ts.
 */
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import type { PaymentAction } from '../../channels/types.ts';
import type { NotifyMode, SandboxDeps, SandboxMerchantDraft, SandboxOutcome, SandboxProvider, SandboxRegistration } from '../types.ts';
import { GATEWAY_URL_RULE, isNotifyUrl } from '../gateway-urls.ts';
import { buildCertificate } from './cert.ts';
import { findMerchantByClientId, findOrderByInvoice, insertMerchant } from './store.ts';
import { base, upperId } from './wire.ts';

export { createPaypalSandboxRouter } from './routes.ts';
export { cancelScheduledNotifies, scheduledNotifyCount, WEBHOOK_RETRY_DELAYS_MS } from './webhooks.ts';
export { paypalSandboxTiming } from './wire.ts';

const generateKeyPair = promisify(crypto.generateKeyPair);

export interface PaypalActOptions {
  /** The REST app's client id (appIdOf). */
  appId: string;
  orderNo: string;
  outcome: SandboxOutcome | 'pay-pending';
  notify: NotifyMode;
  action?: PaymentAction;
}

export const paypalSandbox: SandboxProvider & { act(deps: SandboxDeps, opts: PaypalActOptions): Promise<void> } = {
  provider: 'paypal',

  async draftMerchant(deps: SandboxDeps): Promise<SandboxMerchantDraft> {
    const { privateKey } = await generateKeyPair('rsa', { modulusLength: 2048 });
    return {
      async register(db, gateway?: SandboxRegistration) {
        if (!gateway) throw new Error('paypal sandbox: registration needs the gateway app and its notify URL (the webhook listener)');
        if (!isNotifyUrl(deps.publicUrl, gateway.notifyUrl, 'paypal')) throw new Error(`paypal sandbox: the webhook listener URL ${GATEWAY_URL_RULE.notify('paypal')}`);
        for (let i = 0; i < 5; i++) {
          // Sandbox ids look like PayPal's: a 13-character merchant id, 80-character client id and secret, a 17-character webhook id.
          const merchantId = upperId(13);
          const clientId = `A${crypto.randomBytes(60).toString('base64url')}`;
          const clientSecret = `E${crypto.randomBytes(60).toString('base64url')}`;
          const webhookId = upperId(17);
          const certId = `CERT-${merchantId}-${crypto.randomBytes(8).toString('hex')}`;
          const certificate = buildCertificate({ subjectKey: privateKey, subject: { cn: 'messageverificationcerts.sandbox.checkstand.test' } });
          const stored = await insertMerchant(db, deps.masterKey, merchantId, {
            client_id: clientId, client_secret: clientSecret, webhook_id: webhookId, webhook_url: gateway.notifyUrl, app_id: gateway.appId,
            signing_private_key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), certificate, cert_id: certId,
          });
          if (!stored) continue;
          return { client_id: clientId, client_secret: clientSecret, webhook_id: webhookId, merchant_id: merchantId, base_url: base(deps.publicUrl) };
        }
        throw new Error('paypal sandbox: could not draw a free merchant id');
      },
    };
  },

  /**
   * The payer opens the approval link, then approves (pay, fail = capture declined, pay-pending)
   * or cancels. The return redirect is not followed: the approval webhook (per the notify mode),
   * the return page or the query worker captures, as with a real payer who may close the tab.
   */
  async act(deps: SandboxDeps, opts: PaypalActOptions): Promise<void> {
    let token: string | undefined;
    if (opts.action?.type === 'redirect' && URL.canParse(opts.action.url)) token = new URL(opts.action.url).searchParams.get('token') ?? undefined;
    if (!token) {
      const merchant = await findMerchantByClientId(deps.db, deps.masterKey, opts.appId);
      token = merchant && (await findOrderByInvoice(deps.db, merchant.merchantId, opts.orderNo))?.id;
    }
    if (!token) throw new Error(`paypal sandbox refused ${opts.outcome} for ${opts.orderNo}: RESOURCE_NOT_FOUND no such order at the simulator`);
    const b = base(deps.publicUrl);
    const page = await fetch(`${b}/checkoutnow?token=${encodeURIComponent(token)}`, { redirect: 'manual' });
    const html = await page.text();
    if (!page.ok) {
      const code = /data-error-code="([^"]*)"/.exec(html)?.[1] ?? `HTTP ${page.status}`;
      throw new Error(`paypal sandbox refused ${opts.outcome} for ${opts.orderNo}: the approval page answered ${code}`);
    }
    const res = await fetch(`${b}/payer/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ token, action: opts.outcome, notify: opts.notify }),
    });
    const answer = (await res.json().catch(() => undefined)) as { ok?: boolean; error?: { code?: string; message?: string } } | undefined;
    if (!res.ok || !answer?.ok) {
      throw new Error(`paypal sandbox refused ${opts.outcome} for ${opts.orderNo}: ${answer?.error?.code ?? `HTTP ${res.status}`} ${answer?.error?.message ?? ''}`.trim());
    }
  },
};
