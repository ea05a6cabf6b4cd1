/**
 * The Stripe simulator on a bare Express app over real HTTP, with an account registered for a
 * webhook collector on the same server (standing in for the gateway's /notify/stripe/<app>).
 */
import express from 'express';
import { startSandboxServer } from './sandbox-server.ts';
import { createStripeSandboxRouter, stripeSandbox } from '../../server/sandbox/stripe/index.ts';
import { stripe, type StripeCredentials } from '../../server/channels/stripe/index.ts';
import type { ChannelOrder } from '../../server/channels/types.ts';

export async function startStripeHarness() {
  const s = await startSandboxServer();
  const webhooks: Array<{ headers: Record<string, string | undefined>; body: Buffer }> = [];
  let webhookStatus = 200;
  s.app.post('/notify/stripe/app_test', express.raw({ type: () => true }), (req, res) => {
    webhooks.push({ headers: { 'stripe-signature': req.get('stripe-signature'), 'content-type': req.get('content-type') }, body: req.body as Buffer });
    res.status(webhookStatus).json({ received: webhookStatus < 300 });
  });
  s.app.use('/sandbox/stripe', createStripeSandboxRouter(s.deps));
  const raw = (await (await stripeSandbox.draftMerchant(s.deps)).register(s.deps.db, { appId: 'app_test', notifyUrl: `${s.base}/notify/stripe/app_test` })) as Record<string, unknown>;
  const cred: StripeCredentials = stripe.parseCredentials(raw);
  let seq = 0;
  const order = (over: Partial<ChannelOrder> = {}): ChannelOrder => ({
    channel: 'card',
    orderNo: `cs${Date.now()}${++seq}`,
    amount: 1234,
    currency: 'CNY',
    subject: 'Stripe harness order',
    expiresAt: Math.floor(Date.now() / 1000) + 3600,
    notifyUrl: `${s.base}/notify/stripe/app_test`,
    returnUrl: `${s.base}/pay/tok${seq}abc/return`,
    ...over,
  });
  return {
    ...s,
    raw,
    cred,
    webhooks,
    order,
    setWebhookStatus: (n: number) => (webhookStatus = n),
    stop: () => new Promise<void>((r) => s.server.close(() => r())).then(() => s.db.destroy()),
  };
}
export type StripeHarness = Awaited<ReturnType<typeof startStripeHarness>>;
