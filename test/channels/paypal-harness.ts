/**
 * An in-process "world" for the PayPal adapter: an Express app on port 0 with an in-memory
 * SQLite database, the simulator mounted at /sandbox/paypal (as the core mounts it), and the
 * webhook listener /notify/paypal/:app that runs parseNotification and answers with
 * acknowledge(), as the core's /notify route does.
 */
import express from 'express';
import { startSandboxServer } from './sandbox-server.ts';
import { paypal, type PaypalCredentials } from '../../server/channels/paypal/index.ts';
import { clearTokenCache } from '../../server/channels/paypal/client.ts';
import { cancelScheduledNotifies, createPaypalSandboxRouter, paypalSandbox } from '../../server/sandbox/paypal/index.ts';
import type { ChannelNotification, ChannelOrder, PaymentAction } from '../../server/channels/types.ts';

export async function startPaypalHarness() {
  const world = await startSandboxServer();
  const { app, base, deps } = world;
  const notifications: ChannelNotification[] = [];
  const refused: string[] = [];
  app.use('/sandbox/paypal', createPaypalSandboxRouter(deps));
  const creds = new Map<string, PaypalCredentials>();
  app.post('/notify/paypal/:app', express.raw({ type: () => true, limit: '2mb' }), async (req, res) => {
    const cred = creds.get(String(req.params.app));
    try {
      if (!cred) throw new Error('no such app');
      const n = await paypal.parseNotification(cred, { headers: req.headers as Record<string, string>, contentType: req.get('content-type') ?? '', body: req.body as Buffer });
      notifications.push(n);
      const ack = paypal.acknowledge(true);
      res.status(ack.status).type(ack.contentType).send(ack.body);
    } catch (err) {
      refused.push(`${(err as Error).name}: ${(err as Error).message}`);
      const ack = paypal.acknowledge(false);
      res.status(ack.status).type(ack.contentType).send(ack.body);
    }
  });
  let seq = 0;
  const provision = async (extra: Record<string, unknown> = {}) => {
    const appId = `app_${++seq}`;
    const draft = await paypalSandbox.draftMerchant(deps);
    const raw = await draft.register(deps.db, { appId, notifyUrl: `${base}/notify/paypal/${appId}` });
    const cred = paypal.parseCredentials({ ...raw, ...extra });
    creds.set(appId, cred);
    return { appId, raw: raw as Record<string, any>, cred };
  };
  const main = await provision();
  const order = (amount = 1234, currency = 'USD'): ChannelOrder => ({
    channel: 'paypal', orderNo: `cs${Date.now().toString(36)}${++seq}x`, amount, currency, subject: 'Harness order',
    expiresAt: Math.floor(Date.now() / 1000) + 3600, notifyUrl: `${base}/notify/paypal/${main.appId}`, returnUrl: `${base}/pay/tok${seq}abc/return`,
  });
  const create = async (o: ChannelOrder, cred = main.cred): Promise<{ action: PaymentAction & { type: 'redirect' }; reference: string }> => {
    const r = await paypal.createPayment(cred, o);
    if (!r.ok) throw new Error(`declined: ${r.decline.code}`);
    return { action: r.action as PaymentAction & { type: 'redirect' }, reference: r.reference! };
  };
  const ctx = (o: ChannelOrder, reference: string, channelTradeNo: string | null = null) => ({
    channel: 'paypal' as const, reference, channelTradeNo, amount: o.amount, currency: o.currency, createdAt: 0, expiresAt: o.expiresAt,
  });
  const act = (o: ChannelOrder, action: PaymentAction, outcome: 'pay' | 'fail' | 'cancel' | 'pay-pending' = 'pay', notify: 'normal' | 'drop' | 'duplicate' = 'normal', appId = main.cred.clientId) =>
    paypalSandbox.act(deps, { appId, orderNo: o.orderNo, outcome, notify, action });
  const paymentNotifies = (orderNo: string) => notifications.filter((n): n is Extract<ChannelNotification, { kind: 'payment' }> => n.orderNo === orderNo && n.kind === 'payment');
  return {
    ...world, main, provision, order, create, ctx, act, notifications, refused, paymentNotifies,
    async stop() {
      cancelScheduledNotifies();
      clearTokenCache();
      await new Promise<void>((r) => world.server.close(() => r()));
      await deps.db.destroy();
    },
  };
}
export type PaypalHarness = Awaited<ReturnType<typeof startPaypalHarness>>;
