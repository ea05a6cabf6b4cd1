/**
 * An in-process "world" for the Alipay adapter: an Express app on port 0 with an in-memory SQLite
 * database, the simulator mounted at /sandbox/alipay (as the core mounts it), and a notify route
 * that runs parseNotification and answers with acknowledge(), as the core's /notify does.
 */
import express from 'express';
import { startSandboxServer } from './sandbox-server.ts';
import { alipay, type AlipayCredentials } from '../../server/channels/alipay/index.ts';
import { alipaySandbox, cancelScheduledNotifies, createAlipaySandboxRouter } from '../../server/sandbox/alipay/index.ts';
import type { SandboxDeps } from '../../server/sandbox/types.ts';
import type { ChannelCode, ChannelNotification, ChannelOrder } from '../../server/channels/types.ts';


export interface AlipayHarness {
  app: express.Express;
  base: string;
  deps: SandboxDeps;
  /** What the simulator registered the merchant with (the gateway-side config). */
  raw: Record<string, string>;
  cred: AlipayCredentials;
  logLines: string[];
  notifications: ChannelNotification[];
  notifyBodies: Buffer[];
  refusedNotifies: unknown[];
  order(channel: ChannelCode, amount?: number): ChannelOrder;
  /** Creates the payment and opens its payer page, as the customer's browser would; returns the page. */
  createAndOpen(o: ChannelOrder): Promise<string>;
  paymentNotifies(orderNo: string): ChannelNotification[];
  stop(): Promise<void>;
}

/**
 * mode: 'certificate' (the default) uses the provisioned config as it is, in certificate mode;
 * 'public-key' leaves its three certificates out, as a config from before certificate mode (for
 * tests that build broken public-key configs or re-sign answers without alipay_cert_sn).
 */
export async function startAlipayHarness(opts: { mode?: 'certificate' | 'public-key' } = {}): Promise<AlipayHarness> {
  const { db, app, server, base, logLines, deps } = await startSandboxServer();
  const notifications: ChannelNotification[] = [];
  const notifyBodies: Buffer[] = [];
  const refusedNotifies: unknown[] = [];

  app.use('/sandbox/alipay', createAlipaySandboxRouter(deps));
  // The gateway's URL shapes: the simulator sends notifies and payers nowhere else (sandbox/gateway-urls.ts).
  app.post('/notify/alipay/gateway', express.raw({ type: () => true }), async (req, res) => {
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    notifyBodies.push(body);
    let ack = alipay.acknowledge(false);
    try {
      notifications.push(await alipay.parseNotification(h.cred, { headers: req.headers as Record<string, string>, contentType: req.get('content-type') ?? '', body }));
      ack = alipay.acknowledge(true);
    } catch (err) {
      refusedNotifies.push(err);
    }
    res.status(ack.status).type(ack.contentType).send(ack.body);
  });
  app.get('/pay/:token/return', (_req, res) => {
    res.type('text/plain').send('back at the gateway');
  });

  const provisioned = (await (await alipaySandbox.draftMerchant(deps)).register(deps.db)) as Record<string, string>;
  const { app_cert: _appCert, alipay_public_cert: _alipayCert, alipay_root_cert: _rootCert, ...publicKeyMode } = provisioned;
  const raw = opts.mode === 'public-key' ? publicKeyMode : provisioned;
  let seq = 0;
  const h: AlipayHarness = {
    app, base, deps, raw, cred: alipay.parseCredentials(raw), logLines, notifications, notifyBodies, refusedNotifies,
    order(channel, amount = 1234) {
      const orderNo = `att_${channel.replace('alipay_', '')}_${Date.now()}_${++seq}`;
      return {
        channel, orderNo, amount, currency: 'CNY', subject: `Sandbox test ${seq}`, description: 'integration test',
        expiresAt: Math.floor(Date.now() / 1000) + 900, notifyUrl: `${base}/notify/alipay/gateway`, returnUrl: `${base}/pay/${orderNo.replace(/[^A-Za-z0-9]/g, '')}/return`,
        quitUrl: `${base}/pay/quit`,
      };
    },
    async createAndOpen(o) {
      const result = await alipay.createPayment(h.cred, o);
      if (!result.ok) throw new Error(`declined: ${result.decline.code}`);
      const url = result.action.type === 'redirect' ? result.action.url : result.action.type === 'qr' ? result.action.codeUrl : '';
      const page = await fetch(url);
      if (page.status !== 200) throw new Error(`payer page answered ${page.status}`);
      return page.text();
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
