import crypto from 'node:crypto';
import { conformanceSuite, type NotifyMessage, type PaidOrder } from './suite.ts';
import type { TestGateway } from '../support/gateway.ts';
import { findMerchant, findOrder, type SandboxMerchant } from '../../server/sandbox/wechatpay/store.ts';
import { buildNotify, notifyRequest, transactionNotify } from '../../server/sandbox/wechatpay/notify.ts';
import { transactionOf } from '../../server/sandbox/wechatpay/wire.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import type { WechatpayCredentials } from '../../server/channels/wechatpay/index.ts';

async function sandboxSide(g: TestGateway, o: PaidOrder) {
  const cred = (await getCredentials(g.deps, g.app.app_id, 'wechatpay', false)) as WechatpayCredentials;
  const merchant = (await findMerchant(g.deps.db, g.deps.config.masterKeyBytes, cred.mchid))!;
  const order = (await findOrder(g.deps.db, cred.mchid, o.orderNo))!;
  return { merchant, order };
}

/** A TRANSACTION.SUCCESS notify for this order with its plaintext changed, encrypted and signed by `merchant`'s keys. */
function transaction(merchant: SandboxMerchant, order: Awaited<ReturnType<typeof sandboxSide>>['order'], patch: (p: Record<string, any>) => void = () => undefined): NotifyMessage {
  const plaintext = transactionOf(order) as Record<string, any>;
  patch(plaintext);
  return notifyRequest(merchant, buildNotify(merchant, order.data.notifyUrl, crypto.randomUUID(), 'TRANSACTION.SUCCESS', '支付成功', 'transaction', plaintext));
}

conformanceSuite({
  provider: 'wechatpay',
  codes: ['wechat_native', 'wechat_h5', 'wechat_jsapi', 'wechat_app'],
  genuine: async (g, o) => {
    const { merchant, order } = await sandboxSide(g, o);
    return notifyRequest(merchant, transactionNotify(merchant, order));
  },
  forged: async (g, o) => {
    const { merchant, order } = await sandboxSide(g, o);
    const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    return notifyRequest({ ...merchant, platformPrivateKey: stranger }, transactionNotify(merchant, order));
  },
  amountMismatch: async (g, o) => {
    const { merchant, order } = await sandboxSide(g, o);
    return transaction(merchant, order, (p) => {
      p.amount.total += 100;
      p.amount.payer_total += 100;
    });
  },
  merchantMismatch: async (g, o) => {
    const { merchant, order } = await sandboxSide(g, o);
    return transaction(merchant, order, (p) => (p.mchid = '1900000109'));
  },
  currencyMismatch: async (g, o) => {
    const { merchant, order } = await sandboxSide(g, o);
    return transaction(merchant, order, (p) => (p.amount.currency = 'USD'));
  },
  malformed: async (g, o) => {
    const { merchant, order } = await sandboxSide(g, o);
    const genuine = notifyRequest(merchant, transactionNotify(merchant, order));
    const envelope = JSON.parse(genuine.body);
    const resign = (body: string) => notifyRequest(merchant, { url: '', id: envelope.id, eventType: envelope.event_type, outTradeNo: o.orderNo, body });
    return {
      'missing out_trade_no': transaction(merchant, order, (p) => delete p.out_trade_no),
      'missing resource': resign(JSON.stringify({ ...envelope, resource: undefined })),
      'wrong content type': { ...genuine, contentType: 'application/x-www-form-urlencoded' },
      'bad base64 ciphertext': resign(JSON.stringify({ ...envelope, resource: { ...envelope.resource, ciphertext: '***not base64***' } })),
      'wrong AES key': transaction({ ...merchant, apiV3Key: Buffer.from(crypto.randomBytes(16).toString('hex'), 'ascii') }, order),
      'SIGNTEST probe': { ...genuine, headers: { ...genuine.headers, 'wechatpay-signature': `WECHATPAY/SIGNTEST/${genuine.headers['wechatpay-signature']}` } },
      'stale timestamp': { ...genuine, headers: { ...genuine.headers, 'wechatpay-timestamp': String(Math.floor(Date.now() / 1000) - 600) } },
    };
  },
  // WeChat retries anything that is not a 2xx.
  isRetryAnswer: (status) => status < 200 || status >= 300,
});
