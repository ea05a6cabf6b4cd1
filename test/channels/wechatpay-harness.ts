/**
 * An in-process "world" for the WeChat Pay adapter: an Express app on port 0 with an in-memory
 * SQLite database, the simulator mounted at /sandbox/wechatpay (as the core mounts it), and a
 * notify route per merchant that runs parseNotification and answers with acknowledge(), as the
 * core's /notify/:provider/:app does.
 */
import express from 'express';
import { startSandboxServer } from './sandbox-server.ts';
import { exchangeOAuthCode, oauthAuthorizeUrl, wechatpay, type WechatpayCredentials } from '../../server/channels/wechatpay/index.ts';
import { cancelScheduledNotifies, createWechatpaySandboxRouter, wechatpaySandbox, type WechatpayProvisionOptions } from '../../server/sandbox/wechatpay/index.ts';
import type { SandboxDeps } from '../../server/sandbox/types.ts';
import type { ChannelCode, ChannelNotification, ChannelOrder, PaymentAction } from '../../server/channels/types.ts';


export interface CapturedNotify {
  mchid: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface Merchant {
  /** What the simulator registered the merchant with (the gateway-side config). */
  raw: Record<string, any>;
  cred: WechatpayCredentials;
  /** The sandbox payer's openid for this merchant's appid, obtained through the OAuth stand-ins. */
  openid: string;
}

export interface WechatpayHarness extends Merchant {
  app: express.Express;
  base: string;
  deps: SandboxDeps;
  logLines: string[];
  notifications: ChannelNotification[];
  captured: CapturedNotify[];
  refusedNotifies: unknown[];
  /** Registers another merchant at the simulator (and at the notify route). */
  provision(opts?: WechatpayProvisionOptions): Promise<Merchant>;
  order(channel: ChannelCode, amount?: number, m?: Merchant): ChannelOrder;
  /** createPayment that must succeed; returns the action. */
  create(o: ChannelOrder, m?: Merchant): Promise<PaymentAction>;
  pay(o: ChannelOrder, action: PaymentAction, m?: Merchant, notify?: 'normal' | 'drop' | 'duplicate' | `delay:${number}`): Promise<void>;
  paymentNotifies(orderNo: string): ChannelNotification[];
  refundNotifies(orderNo: string): ChannelNotification[];
  stop(): Promise<void>;
}

export async function startWechatpayHarness(): Promise<WechatpayHarness> {
  const { db, app, server, base, logLines, deps } = await startSandboxServer();
  const notifications: ChannelNotification[] = [];
  const captured: CapturedNotify[] = [];
  const refusedNotifies: unknown[] = [];
  const merchants = new Map<string, Merchant>();

  app.use('/sandbox/wechatpay', createWechatpaySandboxRouter(deps));
  app.post('/notify/wechatpay/:mchid', express.raw({ type: () => true, limit: '2mb' }), async (req, res) => {
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const headers = req.headers as Record<string, string>;
    captured.push({ mchid: String(req.params.mchid), headers, body });
    let ack = wechatpay.acknowledge(false);
    try {
      const m = merchants.get(String(req.params.mchid));
      if (!m) throw new Error('unknown merchant');
      notifications.push(await wechatpay.parseNotification(m.cred, { headers, contentType: req.get('content-type') ?? '', body }));
      ack = wechatpay.acknowledge(true);
    } catch (err) {
      refusedNotifies.push(err);
    }
    res.status(ack.status).type(ack.contentType).send(ack.body);
  });
  // The gateway's URL shapes: the simulator sends notifies and payers nowhere else (sandbox/gateway-urls.ts).
  app.get('/pay/:token/return', (_req, res) => {
    res.type('text/plain').send('back at the gateway');
  });
  app.get('/pay/:token/authorized', (_req, res) => {
    res.type('text/plain').send('oauth done');
  });

  async function provision(opts?: WechatpayProvisionOptions): Promise<Merchant> {
    const raw = (await (await wechatpaySandbox.draftMerchant(deps, opts)).register(deps.db)) as Record<string, any>;
    const cred = wechatpay.parseCredentials(raw);
    // The JSAPI payer's openid, the way the cashier gets it: snsapi_base OAuth through the stand-ins.
    const authorize = await fetch(oauthAuthorizeUrl(cred, `${base}/pay/harness/authorized`, 'st1'), { redirect: 'manual' });
    const code = new URL(authorize.headers.get('location')!).searchParams.get('code')!;
    const m: Merchant = { raw, cred, openid: await exchangeOAuthCode(cred, code) };
    merchants.set(raw.mchid, m);
    return m;
  }

  const first = await provision();
  let seq = 0;
  const h: WechatpayHarness = {
    ...first, app, base, deps, logLines, notifications, captured, refusedNotifies, provision,
    order(channel, amount = 1234, m = first) {
      const orderNo = `att_${channel.replace('wechat_', '')}_${Date.now()}_${++seq}`;
      return {
        channel, orderNo, amount, currency: 'CNY', subject: `Sandbox test ${seq} 测试商品`, description: 'integration test',
        expiresAt: Math.floor(Date.now() / 1000) + 900, notifyUrl: `${base}/notify/wechatpay/${m.raw.mchid}`, returnUrl: `${base}/pay/${orderNo.replace(/[^A-Za-z0-9]/g, '')}/return`,
        clientIp: '::ffff:203.0.113.7', openid: channel === 'wechat_jsapi' ? m.openid : undefined,
      };
    },
    async create(o, m = first) {
      const result = await wechatpay.createPayment(m.cred, o);
      if (!result.ok) throw new Error(`declined: ${result.decline.code} ${result.decline.message}`);
      return result.action;
    },
    async pay(o, action, m = first, notify = 'normal') {
      await wechatpaySandbox.act(deps, { appId: m.cred.appid, orderNo: o.orderNo, outcome: 'pay', notify, action });
    },
    paymentNotifies: (orderNo) => notifications.filter((n) => n.kind === 'payment' && n.orderNo === orderNo),
    refundNotifies: (orderNo) => notifications.filter((n) => n.kind === 'refund' && n.orderNo === orderNo),
    async stop() {
      cancelScheduledNotifies();
      await new Promise((resolve) => server.close(resolve));
      await db.destroy();
    },
  };
  return h;
}

export { waitFor } from './sandbox-server.ts';

/** The URL a payer's browser opens for an action (the QR's sandbox scan link, h5_url, or the JSAPI stand-in). */
export function pageUrlOf(base: string, action: PaymentAction): string {
  if (action.type === 'qr') return `${base}/sandbox/wechatpay/scan?code_url=${encodeURIComponent(action.codeUrl)}`;
  if (action.type === 'redirect') return action.url;
  if (action.type === 'jsapi') return `${base}/sandbox/wechatpay/jsapi?${new URLSearchParams(action.params)}`;
  throw new Error(`no page for ${action.type}`);
}
