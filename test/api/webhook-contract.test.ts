import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startReceiver, type Received } from './webhook-helpers.ts';

// The webhook contract of DESIGN §2 as a merchant meets it: real deliveries from a whole gateway,
// checked with the two libraries merchants use, `standardwebhooks` and `svix`.

let g: TestGateway;
let r: Awaited<ReturnType<typeof startReceiver>>;
let endpointId: string;
let firstSecret: string;

beforeAll(async () => {
  g = await startTestGateway();
  r = await startReceiver(() => ({ status: 200 }));
  const ep = await g.api('POST', '/v1/webhook_endpoints', { url: r.url });
  endpointId = ep.body.id;
  firstSecret = ep.body.secret;
});
afterAll(async () => {
  await r?.close();
  await g?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

async function received(webhookId: string, count = 1): Promise<Received[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = r.received.filter((x) => x.headers['webhook-id'] === webhookId);
    if (got.length >= count) return got;
    if (Date.now() > deadline) throw new Error(`no delivery of ${webhookId}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

const headersOf = (x: Received) => ({
  'webhook-id': String(x.headers['webhook-id']),
  'webhook-timestamp': String(x.headers['webhook-timestamp']),
  'webhook-signature': String(x.headers['webhook-signature']),
});
// svix's own header names, as a receiver written against Svix sees them.
const svixHeadersOf = (x: Received) => ({
  'svix-id': String(x.headers['webhook-id']),
  'svix-timestamp': String(x.headers['webhook-timestamp']),
  'svix-signature': String(x.headers['webhook-signature']),
});

function verifiesWith(secret: string, x: Received, body = x.body, headers = headersOf(x)): boolean {
  const results = [
    () => new StandardWebhook(secret).verify(body, headers),
    () => new SvixWebhook(secret).verify(body, headers),
  ].map((f) => {
    try {
      f();
      return true;
    } catch {
      return false;
    }
  });
  // Both libraries must agree, or the test itself is wrong.
  expect(results[0]).toBe(results[1]);
  return results[0];
}

async function payAndReceive(): Promise<{ payment: any; delivery: Received }> {
  const p = await g.api('POST', '/v1/payments', { amount: 2500, subject: 'Green tea', out_trade_no: `c_${Date.now()}_${Math.random()}` });
  const sim = await g.api('POST', `/v1/test_helpers/payments/${p.body.id}/simulate`, { channel: 'alipay_pc' });
  expect(sim.body.status).toBe('succeeded');
  const events = await g.api('GET', '/v1/events?type=payment.succeeded&limit=100');
  const event = events.body.data.find((e: any) => e.data.object.id === p.body.id);
  const [delivery] = await received(event.id);
  return { payment: sim.body, delivery };
}

describe('webhook contract', () => {
  let delivery: Received;
  let payment: any;

  it('delivers payment.succeeded with the Standard Webhooks headers and the DESIGN body', async () => {
    ({ payment, delivery } = await payAndReceive());
    const body = JSON.parse(delivery.body);
    expect(Object.keys(body)).toEqual(['id', 'object', 'type', 'created', 'livemode', 'data']);
    expect(body).toMatchObject({ object: 'event', type: 'payment.succeeded', livemode: false });
    expect(body.id).toMatch(/^evt_/);
    expect(body.data.object).toMatchObject({ id: payment.id, object: 'payment', amount: 2500, status: 'succeeded', channel: 'alipay_pc', next_action: null, last_attempt_error: null });
    expect(delivery.headers['webhook-id']).toBe(body.id);
    expect(Math.abs(Number(delivery.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(10);
    expect(delivery.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(delivery.headers['content-type']).toBe('application/json');
  });

  it('verifies with standardwebhooks and with svix (both header spellings)', () => {
    expect(new StandardWebhook(firstSecret).verify(delivery.body, headersOf(delivery))).toEqual(JSON.parse(delivery.body));
    expect(new SvixWebhook(firstSecret).verify(delivery.body, headersOf(delivery))).toEqual(JSON.parse(delivery.body));
    expect(new SvixWebhook(firstSecret).verify(delivery.body, svixHeadersOf(delivery))).toEqual(JSON.parse(delivery.body));
  });

  it('fails a tampered body, id or signature', () => {
    expect(verifiesWith(firstSecret, delivery, delivery.body.replace('"amount":2500', '"amount":1'))).toBe(false);
    expect(verifiesWith(firstSecret, delivery, delivery.body + ' ')).toBe(false);
    expect(verifiesWith(firstSecret, delivery, delivery.body, { ...headersOf(delivery), 'webhook-id': 'evt_other' })).toBe(false);
    const sig = headersOf(delivery)['webhook-signature'];
    const flipped = sig.slice(0, 5) + (sig[5] === 'A' ? 'B' : 'A') + sig.slice(6);
    expect(verifiesWith(firstSecret, delivery, delivery.body, { ...headersOf(delivery), 'webhook-signature': flipped })).toBe(false);
    expect(() => new StandardWebhook(firstSecret).verify(delivery.body.replace('"amount":2500', '"amount":1'), headersOf(delivery))).toThrow(/No matching signature/);
  });

  it('fails a stale timestamp: the same genuine message replayed ten minutes later', () => {
    expect(verifiesWith(firstSecret, delivery)).toBe(true);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 10 * 60_000);
    expect(verifiesWith(firstSecret, delivery)).toBe(false);
    expect(() => new StandardWebhook(firstSecret).verify(delivery.body, headersOf(delivery))).toThrow(/timestamp too old/);
    expect(() => new SvixWebhook(firstSecret).verify(delivery.body, headersOf(delivery))).toThrow(/timestamp too old/);
  });

  it('fails a wrong secret', () => {
    const other = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    expect(verifiesWith(other, delivery)).toBe(false);
  });

  it('signs with both secrets during a rotation, then only with the new one', async () => {
    const rotated = await g.api('POST', `/v1/webhook_endpoints/${endpointId}/rotate_secret`, { expires_in: 3 });
    expect(rotated.status).toBe(200);
    const newSecret: string = rotated.body.secret;
    const until: number = rotated.body.previous_secret_expires_at;

    // Within the window: two signatures; a receiver holding either secret verifies.
    const during = await g.api('POST', `/v1/webhook_endpoints/${endpointId}/test`);
    const [d1] = await received(during.body.id);
    const sigs = headersOf(d1)['webhook-signature'].split(' ');
    expect(sigs).toHaveLength(2);
    for (const s of sigs) expect(s).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(verifiesWith(firstSecret, d1)).toBe(true);
    expect(verifiesWith(newSecret, d1)).toBe(true);
    expect(new SvixWebhook(newSecret).verify(d1.body, svixHeadersOf(d1))).toEqual(during.body);

    // After the window: only the new secret signs.
    while (Math.floor(Date.now() / 1000) < until) await new Promise((res) => setTimeout(res, 100));
    const after = await g.api('POST', `/v1/webhook_endpoints/${endpointId}/test`);
    const [d2] = await received(after.body.id);
    expect(headersOf(d2)['webhook-signature'].split(' ')).toHaveLength(1);
    expect(verifiesWith(newSecret, d2)).toBe(true);
    expect(verifiesWith(firstSecret, d2)).toBe(false);
    expect((await g.api('GET', `/v1/webhook_endpoints/${endpointId}`)).body.previous_secret_expires_at).toBeNull();

    // A real payment event after the rotation verifies with the new secret alone.
    const { delivery: d3 } = await payAndReceive();
    expect(verifiesWith(newSecret, d3)).toBe(true);
    expect(verifiesWith(firstSecret, d3)).toBe(false);
  });
});
