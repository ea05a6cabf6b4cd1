import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { generateWebhookSecret, secretKeyBytes, signWebhook, webhookHeaders } from '../../server/webhooks/sign.ts';

const body = JSON.stringify({ id: 'evt_123', object: 'event', type: 'payment.succeeded', created: 1700000000, livemode: false, data: { object: { id: 'pay_1', subject: '咖啡 ☕' } } });
const now = () => Math.floor(Date.now() / 1000);

describe('webhook secrets', () => {
  it('are whsec_ + base64 of 32 random bytes', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secretKeyBytes(a)).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it('refuse malformed or short secrets instead of signing with another key', () => {
    expect(() => secretKeyBytes('nope')).toThrow();
    expect(() => secretKeyBytes('whsec_not*base64!')).toThrow();
    expect(() => secretKeyBytes('whsec_' + crypto.randomBytes(8).toString('base64'))).toThrow();
  });
});

describe('Standard Webhooks signatures', () => {
  it('match the spec formula: base64 HMAC-SHA256(key, id.timestamp.body)', () => {
    const key = crypto.randomBytes(32);
    const secret = 'whsec_' + key.toString('base64');
    const expected = crypto.createHmac('sha256', key).update(`evt_123.1700000000.${body}`).digest('base64');
    expect(signWebhook(secret, 'evt_123', 1700000000, body)).toBe(`v1,${expected}`);
  });

  it('verify with the standardwebhooks and svix libraries', () => {
    const secret = generateWebhookSecret();
    const headers = webhookHeaders({ id: 'evt_123', timestamp: now(), body, secrets: [secret] });
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(new SvixWebhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
  });

  it('agree with the library’s own signer', () => {
    const secret = generateWebhookSecret();
    const ts = now();
    expect(signWebhook(secret, 'evt_9', ts, body)).toBe(new Webhook(secret).sign('evt_9', new Date(ts * 1000), body));
  });

  it('fail for a tampered body, a stale timestamp, a wrong secret or another id', () => {
    const secret = generateWebhookSecret();
    const headers = webhookHeaders({ id: 'evt_123', timestamp: now(), body, secrets: [secret] });
    const wh = new Webhook(secret);
    expect(() => wh.verify(body.replace('pay_1', 'pay_2'), { ...headers })).toThrow(/signature/i);
    expect(() => new Webhook(generateWebhookSecret()).verify(body, { ...headers })).toThrow(/signature/i);
    expect(() => wh.verify(body, { ...headers, 'webhook-id': 'evt_other' })).toThrow(/signature/i);

    const stale = webhookHeaders({ id: 'evt_123', timestamp: now() - 10 * 60, body, secrets: [secret] });
    expect(() => wh.verify(body, { ...stale })).toThrow(/too old/i);
    expect(() => new SvixWebhook(secret).verify(body, { ...stale })).toThrow();
    // Replaying an old signature under a fresh timestamp does not work either.
    expect(() => wh.verify(body, { ...stale, 'webhook-timestamp': String(now()) })).toThrow(/signature/i);
  });

  it('carry one signature per secret during a rotation, and each verifies', () => {
    const current = generateWebhookSecret();
    const previous = generateWebhookSecret();
    const headers = webhookHeaders({ id: 'evt_123', timestamp: now(), body, secrets: [current, previous] });
    const parts = headers['webhook-signature'].split(' ');
    expect(parts).toHaveLength(2);
    for (const p of parts) expect(p).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    for (const s of [current, previous]) {
      expect(new Webhook(s).verify(body, { ...headers })).toBeTruthy();
      expect(new SvixWebhook(s).verify(body, { ...headers })).toBeTruthy();
    }
    expect(() => new Webhook(generateWebhookSecret()).verify(body, { ...headers })).toThrow();
  });

  it('puts the event id and unix-seconds timestamp in the headers', () => {
    const headers = webhookHeaders({ id: 'evt_123', timestamp: 1700000000, body, secrets: [generateWebhookSecret()] });
    expect(headers['webhook-id']).toBe('evt_123');
    expect(headers['webhook-timestamp']).toBe('1700000000');
    expect(() => webhookHeaders({ id: 'evt_1', timestamp: 1, body, secrets: [] })).toThrow();
  });
});
