/**
 * An in-process "world" for the UnionPay adapter: an Express app on port 0 with an in-memory
 * SQLite database, the simulator mounted at /sandbox/unionpay (as the core mounts it), a notify
 * route that runs parseNotification and answers with acknowledge(), and the gateway's return page
 * recording the front notifies browsers post to it.
 */
import express from 'express';
import { startSandboxServer } from './sandbox-server.ts';
import { createUnionpayChannel, type UnionpayCredentials } from '../../server/channels/unionpay/index.ts';
import { cancelScheduledNotifies, createUnionpaySandboxRouter, unionpaySandbox } from '../../server/sandbox/unionpay/index.ts';
import type { SandboxDeps } from '../../server/sandbox/types.ts';
import type { Channel, ChannelCode, ChannelNotification, ChannelOrder } from '../../server/channels/types.ts';

export interface UnionpayHarness {
  app: express.Express;
  base: string;
  deps: SandboxDeps;
  adapter: Channel<UnionpayCredentials>;
  raw: Record<string, string>;
  cred: UnionpayCredentials;
  logLines: string[];
  notifications: ChannelNotification[];
  notifyBodies: Buffer[];
  refusedNotifies: unknown[];
  /** Bodies of the browser's POSTs to the return page (the front notify), with the query they came with. */
  returns: Array<{ query: Record<string, unknown>; body: Record<string, string> }>;
  /** How the notify route answers: accept normally, or refuse (HTTP 500) to make the simulator retry. */
  notifyAnswer: { refuse: boolean };
  order(channel: ChannelCode, amount?: number, expiresIn?: number): ChannelOrder;
  paymentNotifies(orderNo: string): ChannelNotification[];
  stop(): Promise<void>;
}

export async function startUnionpayHarness(opts: { now?: () => number } = {}): Promise<UnionpayHarness> {
  const { db, app, server, base, deps, logLines } = await startSandboxServer();
  const adapter = createUnionpayChannel(opts);
  const notifications: ChannelNotification[] = [];
  const notifyBodies: Buffer[] = [];
  const refusedNotifies: unknown[] = [];
  const returns: UnionpayHarness['returns'] = [];
  const notifyAnswer = { refuse: false };

  app.use('/sandbox/unionpay', createUnionpaySandboxRouter(deps));
  app.post('/notify/unionpay/gateway', express.raw({ type: () => true }), async (req, res) => {
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    notifyBodies.push(body);
    if (notifyAnswer.refuse) return void res.status(500).send('busy');
    let ack = adapter.acknowledge(false);
    try {
      notifications.push(await adapter.parseNotification(h.cred, { headers: req.headers as Record<string, string>, contentType: req.get('content-type') ?? '', body }));
      ack = adapter.acknowledge(true);
    } catch (err) {
      refusedNotifies.push(err);
    }
    res.status(ack.status).type(ack.contentType).send(ack.body);
  });
  app.post('/pay/:token/return', express.urlencoded({ extended: false }), (req, res) => {
    returns.push({ query: req.query as Record<string, unknown>, body: req.body as Record<string, string> });
    res.type('text/plain').send('back at the gateway');
  });
  app.get('/pay/:token/return', (_req, res) => {
    res.type('text/plain').send('back at the gateway');
  });

  const raw = (await (await unionpaySandbox.draftMerchant(deps)).register(deps.db)) as Record<string, string>;
  let seq = 0;
  const h: UnionpayHarness = {
    app, base, deps, adapter, raw, cred: adapter.parseCredentials(raw), logLines, notifications, notifyBodies, refusedNotifies, returns, notifyAnswer,
    order(channel, amount = 1234, expiresIn = 900) {
      const orderNo = `cs${Date.now().toString(36)}${String(++seq).padStart(4, '0')}x`;
      return {
        channel, orderNo, amount, currency: 'CNY', subject: `Sandbox test ${seq}`, expiresAt: Math.floor(Date.now() / 1000) + expiresIn,
        notifyUrl: `${base}/notify/unionpay/gateway`, returnUrl: `${base}/pay/tok${orderNo}/return`,
      };
    },
    paymentNotifies: (orderNo) => notifications.filter((n) => n.kind === 'payment' && n.orderNo === orderNo),
    async stop() {
      cancelScheduledNotifies();
      await new Promise((resolve) => server.close(resolve));
      await db.destroy();
    },
  };
  return h;
}

export { waitFor } from './sandbox-server.ts';
