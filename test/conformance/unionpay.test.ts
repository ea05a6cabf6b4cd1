import crypto from 'node:crypto';
import { conformanceSuite, type PaidOrder } from './suite.ts';
import type { TestGateway } from '../support/gateway.ts';
import { ensureCa, findTxn, type SandboxTxn } from '../../server/sandbox/unionpay/store.ts';
import { resultFields, signedBy } from '../../server/sandbox/unionpay/notify.ts';
import { signAsUnionpay } from '../../server/channels/unionpay/sign.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import type { UnionpayCredentials } from '../../server/channels/unionpay/index.ts';

const form = 'application/x-www-form-urlencoded';
const encode = (p: Record<string, string>) => ({ contentType: form, body: new URLSearchParams(p).toString() });

/** The simulator's side of a paid order: its CA and the transaction (found by orderId + the txnTime the attempt stored). */
async function sandboxSide(g: TestGateway, o: PaidOrder) {
  const cred = (await getCredentials(g.deps, g.app.app_id, 'unionpay', false)) as UnionpayCredentials;
  const attempt = await g.deps.db('payment_attempts').where({ channel_order_no: o.orderNo }).first();
  const txn = (await findTxn(g.deps.db, cred.merId, o.orderNo, attempt.channel_ref))!;
  return { cred, txn, ca: await ensureCa(g.deps.db, g.deps.config.masterKeyBytes) };
}

/** The back notify UnionPay's simulator sends for this order, with its fields changed, signed genuinely. */
async function notify(g: TestGateway, o: PaidOrder, patch: (p: Record<string, string>, txn: SandboxTxn) => void = () => undefined) {
  const { txn, ca } = await sandboxSide(g, o);
  const p = resultFields(txn);
  patch(p, txn);
  return signedBy(ca, p);
}

conformanceSuite({
  provider: 'unionpay',
  codes: ['unionpay_pc', 'unionpay_wap'],
  genuine: async (g, o) => encode(await notify(g, o)),
  forged: async (g, o) => {
    const { txn, ca } = await sandboxSide(g, o);
    const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    // The simulator's genuine certificate, a signature by another key.
    return encode(signAsUnionpay(resultFields(txn), stranger, ca.leafCert));
  },
  amountMismatch: async (g, o) => encode(await notify(g, o, (p) => {
    p.txnAmt = String(o.amount + 100);
    p.settleAmt = p.txnAmt;
  })),
  merchantMismatch: async (g, o) => encode(await notify(g, o, (p) => {
    p.merId = '777000000000001';
  })),
  currencyMismatch: async (g, o) => encode(await notify(g, o, (p) => {
    p.currencyCode = '840';
  })),
  malformed: async (g, o) => {
    const genuine = await notify(g, o);
    const { cred } = await sandboxSide(g, o);
    return {
      'missing orderId': encode(await notify(g, o, (p) => delete p.orderId)),
      'missing signature': encode(Object.fromEntries(Object.entries(genuine).filter(([k]) => k !== 'signature'))),
      'missing signPubKeyCert': encode(Object.fromEntries(Object.entries(genuine).filter(([k]) => k !== 'signPubKeyCert'))),
      'wrong content type': { contentType: 'application/json', body: JSON.stringify(genuine) },
      'bad base64 signature': encode({ ...genuine, signature: '%%%not base64%%%' }),
      // CRLF in signPubKeyCert is part of the signed bytes.
      'signPubKeyCert with LF line endings': encode({ ...genuine, signPubKeyCert: genuine.signPubKeyCert!.replace(/\r\n/g, '\n') }),
      // Signed by the merchant's own key, with the merchant's own certificate (which is not UnionPay's).
      "merchant's own certificate": encode(signAsUnionpay(resultFields((await sandboxSide(g, o)).txn), cred.signKey, cred.signCert.toString())),
      'unknown txnType': encode(await notify(g, o, (p) => {
        p.txnType = '31';
      })),
    };
  },
  // UnionPay resends whatever is not HTTP 200.
  isRetryAnswer: (status) => status !== 200,
});
