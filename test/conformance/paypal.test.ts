import crypto from 'node:crypto';
import { conformanceSuite, type NotifyMessage, type PaidOrder } from './suite.ts';
import type { TestGateway } from '../support/gateway.ts';
import { findMerchantByClientId, findOrderByInvoice, type SandboxMerchant } from '../../server/sandbox/paypal/store.ts';
import { approvedEvent } from '../../server/sandbox/paypal/api.ts';
import { buildEvent, transmissionHeaders } from '../../server/sandbox/paypal/webhooks.ts';
import { base, orderJson } from '../../server/sandbox/paypal/wire.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import type { PaypalCredentials } from '../../server/channels/paypal/index.ts';

async function sandboxSide(g: TestGateway, o: PaidOrder) {
  const cred = (await getCredentials(g.deps, g.app.app_id, 'paypal', false)) as PaypalCredentials;
  const merchant = (await findMerchantByClientId(g.deps.db, g.deps.config.masterKeyBytes, cred.clientId))!;
  const order = (await findOrderByInvoice(g.deps.db, merchant.merchantId, o.orderNo))!;
  return { b: base(g.deps.config.publicUrl), merchant, order };
}

const signed = (b: string, merchant: SandboxMerchant, body: string, at?: Date): NotifyMessage => ({ contentType: 'application/json', headers: transmissionHeaders(b, merchant, body, at), body });

/** A CHECKOUT.ORDER.APPROVED event for this order with its resource changed, signed by the simulator's key. */
async function approved(g: TestGateway, o: PaidOrder, patch: (resource: Record<string, any>) => void = () => undefined): Promise<NotifyMessage> {
  const { b, merchant, order } = await sandboxSide(g, o);
  const resource = orderJson(b, order) as Record<string, any>;
  patch(resource);
  return signed(b, merchant, buildEvent(b, `WH-${crypto.randomUUID()}`, 'CHECKOUT.ORDER.APPROVED', 'checkout-order', resource).body);
}

conformanceSuite({
  provider: 'paypal',
  codes: ['paypal'],
  currency: 'USD',
  genuine: async (g, o) => {
    const { b, merchant, order } = await sandboxSide(g, o);
    return signed(b, merchant, approvedEvent(b, order).body);
  },
  forged: async (g, o) => {
    const { b, merchant, order } = await sandboxSide(g, o);
    const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    return signed(b, { ...merchant, signingKey: stranger }, approvedEvent(b, order).body);
  },
  amountMismatch: (g, o) => approved(g, o, (r) => (r.purchase_units[0].amount.value = '13.00')),
  merchantMismatch: (g, o) => approved(g, o, (r) => (r.purchase_units[0].payee.merchant_id = 'AAAAAAAAAAAAA')),
  currencyMismatch: (g, o) => approved(g, o, (r) => (r.purchase_units[0].amount.currency_code = 'EUR')),
  malformed: async (g, o) => {
    const { b, merchant, order } = await sandboxSide(g, o);
    const body = approvedEvent(b, order).body;
    const genuine = signed(b, merchant, body);
    const { 'paypal-transmission-sig': _sig, ...unsigned } = genuine.headers!;
    return {
      'missing invoice_id': await approved(g, o, (r) => delete r.purchase_units[0].invoice_id),
      'wrong content type': { ...genuine, contentType: 'application/x-www-form-urlencoded' },
      'missing PAYPAL-TRANSMISSION-SIG': { ...genuine, headers: unsigned },
      'bad base64 signature': { ...genuine, headers: { ...genuine.headers, 'paypal-transmission-sig': '***not base64***' } },
      're-serialised body': { ...genuine, body: JSON.stringify(JSON.parse(body), null, 1) },
      'certificate on another host': { ...genuine, headers: { ...genuine.headers, 'paypal-cert-url': `https://attacker.example/v1/notifications/certs/${merchant.certId}` } },
      'stale transmission time': signed(b, merchant, body, new Date(Date.now() - 4 * 86400_000)),
      'not JSON (signed)': signed(b, merchant, 'not json'),
    };
  },
  // PayPal retries anything that is not a 2xx.
  isRetryAnswer: (status) => status < 200 || status >= 300,
});
