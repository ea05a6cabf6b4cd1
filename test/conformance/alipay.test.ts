import crypto from 'node:crypto';
import { conformanceSuite, type PaidOrder } from './suite.ts';
import type { TestGateway } from '../support/gateway.ts';
import { findMerchant, findOrder } from '../../server/sandbox/alipay/store.ts';
import { tradeNotifyParams } from '../../server/sandbox/alipay/notify.ts';
import { signNotify } from '../../server/channels/alipay/sign.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import type { AlipayCredentials } from '../../server/channels/alipay/index.ts';

const form = 'application/x-www-form-urlencoded';
const encode = (p: Record<string, string>) => ({ contentType: form, body: new URLSearchParams(p).toString() });

/** The notify Alipay's simulator would send for this paid order, as parameters. */
async function params(g: TestGateway, o: PaidOrder, patch: { amount?: number } = {}) {
  const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
  const merchant = (await findMerchant(g.deps.db, g.deps.config.masterKeyBytes, cred.appId))!;
  const order = (await findOrder(g.deps.db, cred.appId, { outTradeNo: o.orderNo }))!;
  return tradeNotifyParams(merchant, { ...order, amount: patch.amount ?? order.amount }, crypto.randomBytes(12).toString('hex'));
}

conformanceSuite({
  provider: 'alipay',
  codes: ['alipay_pc', 'alipay_wap', 'alipay_qr', 'alipay_app'],
  genuine: async (g, o) => encode(await params(g, o)),
  forged: async (g, o) => {
    const { sign: _s, ...rest } = await params(g, o);
    const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    return encode({ ...rest, sign: signNotify(rest, stranger) });
  },
  amountMismatch: async (g, o) => encode(await params(g, o, { amount: o.amount + 100 })),
  merchantMismatch: async (g, o) => {
    const { sign: _s, sign_type: _t, ...rest } = await params(g, o);
    const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
    const merchant = (await findMerchant(g.deps.db, g.deps.config.masterKeyBytes, cred.appId))!;
    const other = { ...rest, seller_id: '2088000000000001', sign_type: 'RSA2' };
    return encode({ ...other, sign: signNotify(other, merchant.alipayPrivateKey) });
  },
  malformed: async (g, o) => {
    const p = await params(g, o);
    const { trade_no: _t, ...missing } = p;
    return {
      'missing trade_no': encode(missing),
      'missing sign': encode(Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'sign'))),
      'wrong content type': { contentType: 'application/json', body: JSON.stringify(p) },
      'bad base64 signature': encode({ ...p, sign: '%%%not base64%%%' }),
      'wrong key (app key instead of Alipay key)': await (async () => {
        const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
        const { sign: _s, ...rest } = p;
        return encode({ ...rest, sign: signNotify(rest, cred.privateKey) });
      })(),
    };
  },
  // Alipay retries whatever is not the plain text "success".
  isRetryAnswer: (_status, body) => body !== 'success',
});
