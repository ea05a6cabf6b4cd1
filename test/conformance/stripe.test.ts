import crypto from 'node:crypto';
import { conformanceSuite, type NotifyMessage, type PaidOrder } from './suite.ts';
import type { TestGateway } from '../support/gateway.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import type { StripeCredentials } from '../../server/channels/stripe/index.ts';
import { signatureHeader } from '../../server/channels/stripe/sign.ts';
import { accountIdOfKey, findSession } from '../../server/sandbox/stripe/store.ts';
import { sessionObject } from '../../server/sandbox/stripe/objects.ts';

/** The paid session at the simulator, as checkout.session.completed would carry it. */
async function paidSession(g: TestGateway, o: PaidOrder) {
  const cred = (await getCredentials(g.deps, g.app.app_id, 'stripe', false)) as StripeCredentials;
  const attempt = await g.deps.db('payment_attempts').where({ channel_order_no: o.orderNo }).first();
  const s = (await findSession(g.deps.db, accountIdOfKey(cred.secretKey)!, attempt.channel_ref))!;
  return { cred, session: sessionObject(g.deps.config.publicUrl, s) as Record<string, any> };
}

function event(type: string, object: unknown, id = `evt_${crypto.randomBytes(12).toString('hex')}`): string {
  return JSON.stringify({ id, object: 'event', api_version: '2026-10-28.endive', created: Math.floor(Date.now() / 1000), data: { object }, livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type });
}

const signed = (body: string, secret: string, timestamp?: number): NotifyMessage => ({
  contentType: 'application/json; charset=utf-8',
  headers: { 'stripe-signature': signatureHeader(body, secret, timestamp) },
  body,
});

async function completed(g: TestGateway, o: PaidOrder, patch: (s: Record<string, any>) => void = () => undefined, secret?: string, timestamp?: number) {
  const { cred, session } = await paidSession(g, o);
  patch(session);
  return signed(event('checkout.session.completed', session), secret ?? cred.webhookSecret, timestamp);
}

conformanceSuite({
  provider: 'stripe',
  codes: ['card', 'apple_pay'],
  genuine: (g, o) => completed(g, o),
  forged: (g, o) => completed(g, o, undefined, `whsec_${crypto.randomBytes(24).toString('base64url')}`),
  amountMismatch: (g, o) => completed(g, o, (s) => (s.amount_total += 100)),
  currencyMismatch: (g, o) => completed(g, o, (s) => (s.currency = 'usd')),
  malformed: async (g, o) => {
    const { cred, session } = await paidSession(g, o);
    const genuine = signed(event('checkout.session.completed', session), cred.webhookSecret);
    const without = (field: string) => {
      const copy = { ...session };
      delete copy[field];
      return signed(event('checkout.session.completed', copy), cred.webhookSecret);
    };
    return {
      'missing client_reference_id': without('client_reference_id'),
      'missing amount_total': without('amount_total'),
      'wrong content type': { ...genuine, contentType: 'application/x-www-form-urlencoded' },
      'no Stripe-Signature': { ...genuine, headers: {} },
      'not JSON, signed': signed('{"id":"evt_1",', cred.webhookSecret),
      'event type not subscribed': signed(event('customer.created', { id: 'cus_1', object: 'customer' }), cred.webhookSecret),
      'stale timestamp': await completed(g, o, undefined, undefined, Math.floor(Date.now() / 1000) - 600),
      'body changed after signing': { ...genuine, body: genuine.body.replace('"paid"', '"paid" ') },
    };
  },
  // Stripe retries anything that is not a 2xx.
  isRetryAnswer: (status) => status < 200 || status >= 300,
});
