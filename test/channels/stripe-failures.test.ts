/**
 * Failure paths of the Stripe adapter: an unreachable API, a key Stripe refuses, webhooks signed
 * with another secret or too long ago, the plain-HTTP refusal, config errors naming the field,
 * and no secret in any error (STYLE.md #6).
 */
import net from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stripe } from '../../server/channels/stripe/index.ts';
import { signatureHeader } from '../../server/channels/stripe/sign.ts';
import { ChannelConfigError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../server/errors.ts';
import { startStripeHarness, type StripeHarness } from './stripe-harness.ts';

let h: StripeHarness;
const caught: unknown[] = [];
async function failure(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    caught.push(err);
    return err as Error;
  }
  throw new Error('expected a failure');
}
beforeAll(async () => {
  h = await startStripeHarness();
});
afterAll(() => h.stop());

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('API calls', () => {
  it('an unreachable Stripe is ChannelUnavailable', async () => {
    const cred = stripe.parseCredentials({ ...h.raw, port: await closedPort() });
    expect(await failure(() => stripe.createPayment(cred, h.order()))).toBeInstanceOf(ChannelUnavailable);
  });

  it('a key Stripe refuses is a ChannelConfigError', async () => {
    const cred = stripe.parseCredentials({ ...h.raw, secret_key: 'sk_test_0000000000000000bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' });
    const err = await failure(() => stripe.createPayment(cred, h.order()));
    expect(err).toBeInstanceOf(ChannelConfigError);
  });

  it('a currency the adapter does not take is refused before any call', async () => {
    expect(await failure(() => stripe.createPayment(h.cred, h.order({ currency: 'ISK' })))).toMatchObject({ code: 'currency_unsupported' });
  });
});

describe('webhooks', () => {
  const body = () => JSON.stringify({ id: 'evt_1', object: 'event', type: 'checkout.session.expired', data: { object: { id: 'cs_test_1', client_reference_id: 'o1', amount_total: 100, currency: 'cny', status: 'expired', payment_status: 'unpaid', payment_intent: null } } });
  const msg = (b: string, header: string | undefined) => ({ headers: { 'stripe-signature': header }, contentType: 'application/json', body: Buffer.from(b) });

  it('verifies with the endpoint secret', async () => {
    expect(await stripe.parseNotification(h.cred, msg(body(), signatureHeader(body(), h.cred.webhookSecret)))).toMatchObject({ kind: 'payment', status: 'closed', orderNo: 'o1', amount: 100, currency: 'CNY' });
  });
  it('another secret, an old timestamp, a changed body or no header is a SignatureError', async () => {
    expect(await failure(() => stripe.parseNotification(h.cred, msg(body(), signatureHeader(body(), 'whsec_someoneelse0000000000'))))).toBeInstanceOf(SignatureError);
    expect(await failure(() => stripe.parseNotification(h.cred, msg(body(), signatureHeader(body(), h.cred.webhookSecret, Math.floor(Date.now() / 1000) - 301))))).toBeInstanceOf(SignatureError);
    expect(await failure(() => stripe.parseNotification(h.cred, msg(body().replace('100', '1'), signatureHeader(body(), h.cred.webhookSecret))))).toBeInstanceOf(SignatureError);
    expect(await failure(() => stripe.parseNotification(h.cred, msg(body(), undefined)))).toBeInstanceOf(SignatureError);
  });
  it('a signed body that is not JSON, or of another content type, is malformed', async () => {
    expect(await failure(() => stripe.parseNotification(h.cred, msg('{"id":', signatureHeader('{"id":', h.cred.webhookSecret))))).toBeInstanceOf(MalformedMessageError);
    expect(await failure(() => stripe.parseNotification(h.cred, { ...msg(body(), signatureHeader(body(), h.cred.webhookSecret)), contentType: 'text/plain' }))).toBeInstanceOf(MalformedMessageError);
  });
  it('acknowledges with JSON: 200 {"received":true}, 400 to be retried', () => {
    expect(stripe.acknowledge(true)).toEqual({ status: 200, contentType: 'application/json', body: '{"received":true}' });
    expect(stripe.acknowledge(false).status).toBe(400);
  });
});

describe('credentials', () => {
  const base = { secret_key: 'sk_test_abcdefghijklmnop1234', webhook_secret: 'whsec_abcdefghijkl' };
  it('plain http only with a test key and a loopback host', () => {
    expect(stripe.parseCredentials({ ...base, host: '127.0.0.1', port: 12111, protocol: 'http' }).protocol).toBe('http');
    expect(stripe.parseCredentials({ ...base, host: 'localhost', protocol: 'http' }).protocol).toBe('http');
    expect(() => stripe.parseCredentials({ ...base, host: 'stripe-mock.internal', protocol: 'http' })).toThrow(/protocol http/);
    expect(() => stripe.parseCredentials({ ...base, secret_key: 'sk_live_abcdefghijklmnop1234', host: '127.0.0.1', protocol: 'http' })).toThrow(/protocol http/);
    expect(() => stripe.parseCredentials({ ...base, protocol: 'http' })).toThrow(ChannelConfigError);
    expect(stripe.parseCredentials({ ...base, secret_key: 'sk_live_abcdefghijklmnop1234' }).protocol).toBe('https');
  });
  it('a bad field is named', () => {
    expect(() => stripe.parseCredentials({ ...base, secret_key: 'pk_test_abc' })).toThrow(/secret_key/);
    expect(() => stripe.parseCredentials({ ...base, webhook_secret: 'nope' })).toThrow(/webhook_secret/);
    expect(() => stripe.parseCredentials({ ...base, port: 0 })).toThrow(/port/);
    expect(() => stripe.parseCredentials({ ...base, host: 'https://api.stripe.com' })).toThrow(/host/);
    expect(() => stripe.parseCredentials({ webhook_secret: 'whsec_abcdefghijkl' })).toThrow(/secret_key/);
  });
});

describe('scrubbing', () => {
  it('no error, and no simulator log line, carries the secret key or the webhook secret', () => {
    const text = caught.map((e) => inspect(e, { depth: 5 })).join('\n') + h.logLines.join('\n');
    expect(text).not.toContain(h.cred.secretKey);
    expect(text).not.toContain(h.cred.webhookSecret);
    expect(text).not.toContain('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
  });
});
