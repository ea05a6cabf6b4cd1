/**
 * The Stripe simulator (test mode): accounts with a secret key and a webhook endpoint for the
 * gateway app, its API under /sandbox/stripe/v1 (api.ts) and the hosted payer page (pages.ts).
 * The SDK cannot take a path prefix, and the gateway's own API owns /v1: the adapter rewrites
 * the URL the SDK builds (credentials base_path, protocols/cards.md option 2).
 */
import express from 'express';
import type { SandboxDeps, SandboxMerchantDraft, SandboxOutcome, SandboxProvider, NotifyMode } from '../types.ts';
import type { PaymentAction } from '../../channels/types.ts';
import { findSessionById, insertAccount } from './store.ts';
import { createStripeApiRouter } from './api.ts';
import { createStripePagesRouter } from './pages.ts';
import { alnum } from './wire.ts';

export { cancelScheduledNotifies, scheduledNotifyCount, NOTIFY_RETRY_DELAYS_MS } from './notify.ts';

export function createStripeSandboxRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  router.use('/v1', createStripeApiRouter(deps));
  router.use(createStripePagesRouter(deps));
  return router;
}

/** Where the SDK reaches the simulator: PUBLIC_URL's host, port and scheme, below its path. */
export function simulatorAddress(publicUrl: string): { host: string; port: number; protocol: 'http' | 'https'; base_path: string } {
  const u = new URL(publicUrl);
  const protocol = u.protocol === 'https:' ? 'https' : 'http';
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : protocol === 'https' ? 443 : 80,
    protocol,
    base_path: `${u.pathname.replace(/\/+$/, '')}/sandbox/stripe`,
  };
}

/** What the buyer does on the hosted page for each outcome of the simulate helper (fail = a declined card). */
const PAGE_ACTION: Record<SandboxOutcome, string> = { pay: 'pay', fail: 'decline', cancel: 'cancel' };

export const stripeSandbox: SandboxProvider = {
  provider: 'stripe',

  async draftMerchant(deps: SandboxDeps): Promise<SandboxMerchantDraft> {
    return {
      async register(db, gateway) {
        if (!gateway) throw new Error('stripe sandbox: an account needs the gateway app\'s webhook URL');
        for (let i = 0; i < 5; i++) {
          const suffix = alnum(16);
          const account = { id: `acct_${suffix}`, secretKey: `sk_test_${suffix}${alnum(32)}`, webhookSecret: `whsec_${alnum(32)}`, webhookUrl: gateway.notifyUrl };
          if (!(await insertAccount(db, deps.masterKey, account))) continue;
          return { secret_key: account.secretKey, webhook_secret: account.webhookSecret, ...simulatorAddress(deps.publicUrl) };
        }
        throw new Error('stripe sandbox: could not draw a free account id');
      },
    };
  },

  /**
   * The buyer opens the hosted page (the session URL createPayment returned) and submits it. The
   * success redirect is not followed: only the webhook (per `notify`) or a query settles the payment.
   */
  async act(deps: SandboxDeps, opts: { appId: string; orderNo: string; outcome: SandboxOutcome; notify: NotifyMode; action?: PaymentAction }): Promise<void> {
    if (opts.action?.type !== 'redirect') throw new Error(`stripe sandbox refused ${opts.outcome} for ${opts.orderNo}: no hosted page for this order`);
    const url = opts.action.url;
    const page = await fetch(url, { redirect: 'manual' });
    const html = await page.text();
    if (!page.ok) {
      const code = /data-error-code="([^"]*)"/.exec(html)?.[1] ?? `HTTP ${page.status}`;
      throw new Error(`stripe sandbox refused ${opts.outcome} for ${opts.orderNo}: the payer page answered ${code}`);
    }
    // A payer who chose Apple Pay on the cashier presses Apple Pay on the hosted page.
    const session = await findSessionById(deps.db, url.slice(url.lastIndexOf('/') + 1));
    const action = opts.outcome === 'pay' && session?.data.metadata.checkstand_channel === 'apple_pay' ? 'apple_pay' : PAGE_ACTION[opts.outcome];
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ action, notify: opts.notify }),
      redirect: 'manual',
    });
    const answer = (await res.json().catch(() => undefined)) as { ok?: boolean; error?: { code?: string; message?: string } } | undefined;
    if (!res.ok || !answer?.ok) {
      throw new Error(`stripe sandbox refused ${opts.outcome} for ${opts.orderNo}: ${answer?.error?.code ?? `HTTP ${res.status}`} ${answer?.error?.message ?? ''}`.trim());
    }
  },
};
