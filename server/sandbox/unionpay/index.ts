/**
 * The UnionPay simulator (test mode): its own CA (root → middle → signing leaf with UnionPay's CN
 * form), merchants whose signing certificates it issues, and the customer acting on its payer
 * page over HTTP. Its HTTP side is in routes.ts.
 */
import crypto, { X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import type { PaymentAction } from '../../channels/types.ts';
import type { NotifyMode, SandboxDeps, SandboxMerchantDraft, SandboxOutcome, SandboxProvider } from '../types.ts';
import { certIdOf } from '../../channels/unionpay/sign.ts';
import { ensureCa, insertMerchant, MIDDLE_DN } from './store.ts';
import { issueCertificate, randomSerial } from './x509.ts';
import { payerToken } from './gateway.ts';

export { createUnionpaySandboxRouter } from './routes.ts';
export { cancelScheduledNotifies, compressNotifyRetries, scheduledNotifyCount, NOTIFY_RETRY_DELAYS_MS } from './notify.ts';

const generateKeyPair = promisify(crypto.generateKeyPair);
const digits = (n: number) => Array.from({ length: n }, () => String(crypto.randomInt(0, 10))).join('');

export interface UnionpayActOptions {
  appId: string;
  orderNo: string;
  outcome: SandboxOutcome;
  notify: NotifyMode;
  /** The form createPayment returned: the customer's browser posts it first (the order exists at UnionPay from then on). */
  action?: PaymentAction;
}

export const unionpaySandbox: SandboxProvider & { act(deps: SandboxDeps, opts: UnionpayActOptions): Promise<void> } = {
  provider: 'unionpay',

  async draftMerchant(deps: SandboxDeps): Promise<SandboxMerchantDraft> {
    const [keys, ca] = await Promise.all([generateKeyPair('rsa', { modulusLength: 2048 }), ensureCa(deps.db, deps.masterKey)]);
    return {
      async register(db) {
        for (let i = 0; i < 5; i++) {
          // Test merchant numbers look like UnionPay's: 777 + 12 digits.
          const merId = `777${digits(12)}`;
          const now = Math.floor(Date.now() / 1000);
          // The merchant's signing certificate (CFCA issues it live), here from the simulator's middle CA.
          const signCert = issueCertificate({
            serial: randomSerial(), subject: [['C', 'CN'], ['O', 'Checkstand UnionPay Sandbox'], ['OU', 'Enterprises'], ['CN', `041@Z${merId}@${merId}:SIGN@00000001`]],
            issuer: MIDDLE_DN, notBefore: now - 86400, notAfter: now + 5 * 365 * 86400, publicKey: keys.publicKey, issuerKey: ca.middleKey, ca: false,
          });
          if (!(await insertMerchant(db, merId, certIdOf(new X509Certificate(signCert)), signCert))) continue;
          return {
            mer_id: merId,
            sign_cert: signCert,
            sign_key: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
            root_cert: ca.rootCert,
            middle_cert: ca.middleCert,
            gateway: base(deps),
          };
        }
        throw new Error('unionpay sandbox: could not draw a free merId');
      },
    };
  },

  async act(deps: SandboxDeps, opts: UnionpayActOptions): Promise<void> {
    if (opts.action?.type !== 'form') throw new Error(`unionpay sandbox: ${opts.orderNo} has no consume form to post`);
    // The customer's browser posts the signed form to frontTransReq.do, which shows the payer page.
    const page = await fetch(opts.action.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
      body: new URLSearchParams(opts.action.fields).toString(),
      redirect: 'manual',
    });
    const html = await page.text();
    if (page.status !== 200) {
      const code = /data-error-code="([^"]*)"/.exec(html)?.[1];
      throw new Error(`unionpay sandbox refused the consume form of ${opts.orderNo}: ${code ?? `HTTP ${page.status}`}`);
    }
    const { merId, orderId, txnTime } = opts.action.fields as Record<string, string>;
    const res = await fetch(`${base(deps)}/payer/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ mer_id: merId, order_id: orderId, txn_time: txnTime, t: payerToken(deps.masterKey, merId!, orderId!, txnTime!), action: opts.outcome, notify: opts.notify }),
    });
    const answer = (await res.json().catch(() => undefined)) as { ok?: boolean; error?: { code?: string; message?: string } } | undefined;
    if (!res.ok || !answer?.ok) {
      throw new Error(`unionpay sandbox refused ${opts.outcome} for ${opts.orderNo}: ${answer?.error?.code ?? `HTTP ${res.status}`} ${answer?.error?.message ?? ''}`.trim());
    }
  },
};

const base = (deps: SandboxDeps) => `${deps.publicUrl.replace(/\/$/, '')}/sandbox/unionpay`;
