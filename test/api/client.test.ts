import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Checkstand, CheckstandConnectionError, CheckstandError, WebhookVerificationError, retryAfterMs, type Event, type Payment, type RetryInfo,
} from '../../clients/node/src/index.ts';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';

/** The typed client (clients/node) against a real in-process gateway. */

let g: TestGateway;
let client: Checkstand;
let seq = 0;
const servers: http.Server[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  g = await startTestGateway();
  client = new Checkstand({ apiKey: g.app.secret_key, baseUrl: g.url });
});
afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  for (const c of closers) await c();
  await g?.close();
});

const newPayment = (extra: Record<string, unknown> = {}) =>
  client.payments.create({ amount: 1500, subject: 'Client', out_trade_no: `cl_${Date.now()}_${++seq}`, ...extra });

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

type Mode = 'forward' | 'refuse' | 'lose_answer' | 'drop' | 'rate_limit';

/**
 * Stands between the client and the gateway and misbehaves as told, one mode per request:
 * refuse answers 503 without forwarding; lose_answer forwards, then answers 503 in place of the
 * gateway's answer (the response lost on the way back); drop closes the connection unanswered;
 * rate_limit answers 429 with Retry-After: 1. It records each request's Idempotency-Key.
 */
async function flakyProxy(modes: Mode[]) {
  const seen: Array<{ method: string; url: string; key?: string; mode: Mode }> = [];
  const url = await listen(async (req, res) => {
    const mode = modes.shift() ?? 'forward';
    seen.push({ method: req.method!, url: req.url!, key: req.headers['idempotency-key'] as string | undefined, mode });
    if (mode === 'drop') return req.socket.destroy();
    if (mode === 'refuse') return res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '0' }).end('<h1>503 Service Unavailable</h1>');
    if (mode === 'rate_limit') {
      return res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' })
        .end(JSON.stringify({ error: { type: 'invalid_request_error', code: 'rate_limit', message: 'Too many requests', request_id: 'req_proxy' } }));
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'content-length')) as Record<string, string>;
    const upstream = await fetch(g.url + req.url, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
    const text = await upstream.text();
    if (mode === 'lose_answer') return res.writeHead(503, { 'retry-after': '0' }).end();
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
  });
  return { url, seen };
}

describe('client against the gateway', () => {
  it('creates and retrieves a payment, typed', async () => {
    const p: Payment = await newPayment({ metadata: { order: '42' } });
    expect(p).toMatchObject({ object: 'payment', status: 'pending', amount: 1500, metadata: { order: '42' }, next_action: null });
    expect(p.checkout_url).toContain('/pay/');
    const again = await client.payments.retrieve(p.id);
    expect(again).toEqual(p);
  });

  it('lists with cursor pagination, and pages through everything', async () => {
    const prefix = `page_${Date.now()}`;
    const made: string[] = [];
    for (let i = 0; i < 3; i++) made.push((await client.payments.create({ amount: 100 + i, subject: 'Page', out_trade_no: `${prefix}_${i}` })).id);
    const first = await client.payments.list({ limit: 2 });
    expect(first).toMatchObject({ object: 'list', has_more: true });
    expect(first.data).toHaveLength(2);
    const second = await client.payments.list({ limit: 2, starting_after: first.data[1].id });
    expect(second.data.map((p) => p.id)).not.toContain(first.data[0].id);
    const all: string[] = [];
    for await (const p of client.autoPaginate((q) => client.payments.list({ ...q, limit: 2 }))) all.push(p.id);
    expect(all).toEqual(expect.arrayContaining(made));
    expect(new Set(all).size).toBe(all.length);
    const one = await client.payments.list({ out_trade_no: `${prefix}_1` });
    expect(one.data.map((p) => p.id)).toEqual([made[1]]);
  });

  it('refunds a paid payment and retrieves the refund', async () => {
    const p = await newPayment();
    const paid = await client.testHelpers.simulate(p.id, { channel: 'alipay_pc' });
    expect(paid.status).toBe('succeeded');
    const refund = await client.refunds.create(p.id, { amount: 500, reason: 'client test' });
    expect(refund).toMatchObject({ object: 'refund', payment_id: p.id, amount: 500 });
    expect(await client.refunds.retrieve(refund.id)).toMatchObject({ id: refund.id, amount: 500 });
    expect((await client.payments.retrieve(p.id)).amount_refunded).toBe(500);
  });

  it('closes a pending payment', async () => {
    const p = await newPayment();
    expect((await client.payments.close(p.id)).status).toBe('closed');
  });

  // The route lands with the direct API (DESIGN §2.1); until then this answers 404.
  it('confirms a payment on a channel and gets its next_action', async () => {
    const p = await newPayment();
    const confirmed = await client.payments.confirm(p.id, { channel: 'alipay_qr' });
    expect(confirmed.id).toBe(p.id);
    expect(confirmed.channel).toBe('alipay_qr');
    expect(confirmed.next_action?.type).toBe('display_qr_code');
    if (confirmed.next_action?.type === 'display_qr_code') expect(confirmed.next_action.display_qr_code.data).toMatch(/^https?:\/\//);
    const missing = await client.payments.confirm(p.id, { channel: 'wechat_jsapi' }).catch((e) => e);
    expect(missing).toBeInstanceOf(CheckstandError);
    expect(missing.param).toBe('openid');
  });

  it('throws typed errors carrying the API error object', async () => {
    const notFound = await client.payments.retrieve('pay_missing').catch((e) => e);
    expect(notFound).toBeInstanceOf(CheckstandError);
    expect(notFound).toMatchObject({ status: 404, type: 'invalid_request_error', code: 'resource_missing', param: 'id' });
    expect(notFound.requestId).toMatch(/^req_/);
    const bad = await client.payments.create({ amount: 1.5, subject: 'x', out_trade_no: 'bad_amount' }).catch((e) => e);
    expect(bad).toMatchObject({ status: 400, param: 'amount' });
    expect(bad.error).toMatchObject({ type: 'invalid_request_error', param: 'amount' });
    const unauthorized = await new Checkstand({ apiKey: 'sk_test_000000000000000000000000', baseUrl: g.url }).payments.list().catch((e) => e);
    expect(unauthorized).toMatchObject({ status: 401, type: 'authentication_error' });
  });
});

describe('retries', () => {
  it('retries a 503 with the same Idempotency-Key, and one payment is made', async () => {
    const proxy = await flakyProxy(['refuse', 'forward']);
    const c = new Checkstand({ apiKey: g.app.secret_key, baseUrl: proxy.url, initialDelayMs: 1 });
    const p = await c.payments.create({ amount: 700, subject: 'Retry', out_trade_no: `retry_${++seq}` });
    expect(proxy.seen.map((s) => s.mode)).toEqual(['refuse', 'forward']);
    expect(proxy.seen[0].key).toMatch(/^[0-9a-f-]{36}$/);
    expect(proxy.seen[1].key).toBe(proxy.seen[0].key);
    expect((await client.payments.retrieve(p.id)).id).toBe(p.id);
  });

  it('a retry after a lost answer gets the stored answer: the request runs once', async () => {
    const proxy = await flakyProxy(['lose_answer', 'forward']);
    const c = new Checkstand({ apiKey: g.app.secret_key, baseUrl: proxy.url, initialDelayMs: 1 });
    const outTradeNo = `lost_${++seq}`;
    const p = await c.payments.create({ amount: 800, subject: 'Lost', out_trade_no: outTradeNo }, { idempotencyKey: `mine-${seq}` });
    expect(proxy.seen.map((s) => s.key)).toEqual([`mine-${seq}`, `mine-${seq}`]);
    // Without the same key the retry would have been refused as out_trade_no_taken.
    const list = await client.payments.list({ out_trade_no: outTradeNo });
    expect(list.data.map((x) => x.id)).toEqual([p.id]);
  });

  it('retries a dropped connection, and honours Retry-After on a 429', async () => {
    const proxy = await flakyProxy(['drop', 'rate_limit', 'forward']);
    const retries: RetryInfo[] = [];
    const c = new Checkstand({ apiKey: g.app.secret_key, baseUrl: proxy.url, initialDelayMs: 1, onRetry: (r) => retries.push(r) });
    const p = await c.payments.create({ amount: 900, subject: 'Drop', out_trade_no: `drop_${++seq}` });
    expect(p.status).toBe('pending');
    expect(new Set(proxy.seen.map((s) => s.key)).size).toBe(1);
    expect(retries.map((r) => [r.retry, r.status])).toEqual([[1, undefined], [2, 429]]);
    expect(retries[1].delayMs).toBe(1000);
  });

  it('gives up after maxRetries with the last error', async () => {
    const proxy = await flakyProxy(['refuse', 'refuse', 'refuse']);
    const c = new Checkstand({ apiKey: g.app.secret_key, baseUrl: proxy.url, initialDelayMs: 1, maxRetries: 2 });
    const err = await c.payments.list().catch((e) => e);
    expect(err).toBeInstanceOf(CheckstandError);
    expect(err).toMatchObject({ status: 503, code: 'http_503' });
    expect(proxy.seen).toHaveLength(3);
    // GETs carry no key.
    expect(proxy.seen[0].key).toBeUndefined();
    const down = new Checkstand({ apiKey: g.app.secret_key, baseUrl: 'http://127.0.0.1:1', initialDelayMs: 1, maxRetries: 1 });
    expect(await down.payments.list().catch((e) => e)).toBeInstanceOf(CheckstandConnectionError);
  });

  it('does not retry a 400', async () => {
    const proxy = await flakyProxy([]);
    const c = new Checkstand({ apiKey: g.app.secret_key, baseUrl: proxy.url, initialDelayMs: 1 });
    await expect(c.payments.create({ amount: -1, subject: 'x', out_trade_no: 'neg' })).rejects.toMatchObject({ status: 400 });
    expect(proxy.seen).toHaveLength(1);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});

describe('webhooks.verify', () => {
  it('verifies a real delivery from the webhook worker and returns the typed event', async () => {
    const receiver = await startReceiver();
    closers.push(receiver.close);
    const ep = await client.webhookEndpoints.create({ url: receiver.url, enabled_events: ['payment.succeeded'] });
    expect(ep.secret).toMatch(/^whsec_/);
    receiver.setSecret(ep.secret);
    const p = await newPayment();
    await client.testHelpers.simulate(p.id, { channel: 'alipay_qr' });
    const delivery = await receiver.waitFor((w) => w.payload?.data?.object?.id === p.id);

    const event: Event = client.webhooks.verify(delivery.body, delivery.headers, ep.secret);
    expect(event.type).toBe('payment.succeeded');
    if (event.type !== 'payment.succeeded') throw new Error('narrowing');
    expect(event.data.object).toMatchObject({ id: p.id, status: 'succeeded', amount: 1500 });
    expect(event.id).toBe(delivery.headers['webhook-id']);
    // The same, from a fetch Headers and a Buffer body.
    const h = new Headers(Object.entries(delivery.headers).map(([k, v]) => [k, String(v)] as [string, string]));
    expect(client.webhooks.verify(Buffer.from(delivery.body), h, ep.secret).id).toBe(event.id);

    const tampered = delivery.body.replace('"amount":1500', '"amount":1');
    expect(tampered).not.toBe(delivery.body);
    expect(() => client.webhooks.verify(tampered, delivery.headers, ep.secret)).toThrow(WebhookVerificationError);
    const other = await client.webhookEndpoints.create({ url: receiver.url, enabled_events: ['refund.failed'] });
    expect(() => client.webhooks.verify(delivery.body, delivery.headers, other.secret)).toThrow(WebhookVerificationError);
    expect(() => client.webhooks.verify(delivery.body, { ...delivery.headers, 'webhook-signature': undefined }, ep.secret)).toThrow(WebhookVerificationError);
    await client.webhookEndpoints.del(ep.id);
    await client.webhookEndpoints.del(other.id);
  });
});
