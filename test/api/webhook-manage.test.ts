import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { createApp } from '../../server/apps/service.ts';

// Managing endpoints and deliveries through the real /v1 stack (auth, idempotency, errors),
// with the gateway's own background worker delivering to receivers that verify signatures.

type Receiver = Awaited<ReturnType<typeof startReceiver>>;
let g: TestGateway;
let otherKey: string;
const receivers: Receiver[] = [];

beforeAll(async () => {
  g = await startTestGateway();
  otherKey = (await createApp(g.deps.db, { name: 'Other shop' })).secret_key;
});
afterAll(async () => {
  for (const r of receivers) await r.close();
  await g?.close();
});

/** A receiver and an endpoint pointing at it, its secret installed. */
async function endpointWithReceiver(body: Record<string, unknown> = {}) {
  const r = await startReceiver();
  receivers.push(r);
  const res = await g.api('POST', '/v1/webhook_endpoints', { url: `${r.url}/hooks`, ...body });
  expect(res.status).toBe(200);
  r.setSecret(res.body.secret);
  return { r, endpoint: res.body };
}

async function asOther(method: string, path: string, body?: unknown) {
  const res = await fetch(g.url + path, {
    method,
    headers: { authorization: `Bearer ${otherKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function paidPayment(): Promise<{ paymentId: string; eventId: string }> {
  const p = await g.api('POST', '/v1/payments', { amount: 1999, subject: 'Tea', out_trade_no: `m_${Date.now()}_${Math.random()}` });
  const sim = await g.api('POST', `/v1/test_helpers/payments/${p.body.id}/simulate`, { channel: 'alipay_pc' });
  expect(sim.body.status).toBe('succeeded');
  const events = await g.api('GET', '/v1/events?type=payment.succeeded&limit=100');
  const e = events.body.data.find((x: any) => x.data.object.id === p.body.id);
  return { paymentId: p.body.id, eventId: e.id };
}

async function waitUntil<T>(fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('POST /v1/webhook_endpoints/:id', () => {
  it('updates url and enabled_events, disables and re-enables with a clean record', async () => {
    const { endpoint } = await endpointWithReceiver();
    const up = await g.api('POST', `/v1/webhook_endpoints/${endpoint.id}`, { url: 'https://shop.example.com/v2/hooks', enabled_events: ['refund.succeeded'] });
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ id: endpoint.id, url: 'https://shop.example.com/v2/hooks', enabled_events: ['refund.succeeded'], status: 'enabled' });
    expect(up.body.secret).toBeUndefined();

    const off = await g.api('POST', `/v1/webhook_endpoints/${endpoint.id}`, { status: 'disabled' });
    expect(off.body).toMatchObject({ status: 'disabled', disabled_reason: 'Disabled through the API.' });
    await g.deps.db('webhook_endpoints').where({ id: endpoint.id }).update({ failing_since: 1000 });
    const on = await g.api('POST', `/v1/webhook_endpoints/${endpoint.id}`, { status: 'enabled' });
    expect(on.body).toMatchObject({ status: 'enabled', disabled_reason: null, failing_since: null });
    expect((await g.api('GET', `/v1/webhook_endpoints/${endpoint.id}`)).body).toEqual(on.body);
  });

  it.each([
    [{ enabled_events: [] }, 'enabled_events', 'parameter_invalid'],
    [{ enabled_events: ['payment.nope'] }, 'enabled_events[0]', 'parameter_invalid'],
    [{ status: 'paused' }, 'status', 'parameter_invalid'],
    [{ url: 'ftp://x.example.com/' }, 'url', 'url_invalid'],
    [{ url: 'http://169.254.169.254/' }, 'url', 'url_not_allowed'],
    [{ secret: 'whsec_x' }, 'secret', 'parameter_unknown'],
  ])('refuses %j with a 400 naming %s', async (body, param, code) => {
    const { endpoint } = await endpointWithReceiver();
    const res = await g.api('POST', `/v1/webhook_endpoints/${endpoint.id}`, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param, code });
  });

  it('404s for another app’s endpoint on every route', async () => {
    const { endpoint } = await endpointWithReceiver();
    for (const [method, path, body] of [
      ['POST', '', { status: 'disabled' }],
      ['POST', '/rotate_secret', {}],
      ['POST', '/test', {}],
      ['GET', '/deliveries', undefined],
    ] as const) {
      const res = await asOther(method, `/v1/webhook_endpoints/${endpoint.id}${path}`, body);
      expect(res.status).toBe(404);
      expect(res.body.error).toMatchObject({ code: 'resource_missing', param: 'id' });
    }
    expect((await g.api('GET', `/v1/webhook_endpoints/${endpoint.id}`)).body.status).toBe('enabled');
  });
});

describe('POST /v1/webhook_endpoints/:id/rotate_secret', () => {
  it('shows the new secret once and keeps the old one signing for 24 h by default', async () => {
    const { endpoint } = await endpointWithReceiver();
    const t = Math.floor(Date.now() / 1000);
    const res = await g.api('POST', `/v1/webhook_endpoints/${endpoint.id}/rotate_secret`);
    expect(res.status).toBe(200);
    expect(res.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(res.body.secret).not.toBe(endpoint.secret);
    expect(res.body.previous_secret_expires_at).toBeGreaterThanOrEqual(t + 86_400);
    expect(res.body.previous_secret_expires_at).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 86_400);
    const got = await g.api('GET', `/v1/webhook_endpoints/${endpoint.id}`);
    expect(got.body.secret).toBeUndefined();
    expect(got.body.previous_secret_expires_at).toBe(res.body.previous_secret_expires_at);
    const row = await g.deps.db('webhook_endpoints').where({ id: endpoint.id }).first();
    expect(row.secret_sealed).not.toContain(res.body.secret.slice(6));

    const now = await g.api('POST', `/v1/webhook_endpoints/${endpoint.id}/rotate_secret`, { expires_in: 0 });
    expect(now.body.previous_secret_expires_at).toBeNull();
  });

  it.each([[{ expires_in: 86_401 }], [{ expires_in: -1 }], [{ expires_in: 1.5 }], [{ expires_in: '60' }]])('refuses %j naming expires_in', async (body) => {
    const { endpoint } = await endpointWithReceiver();
    const res = await g.api('POST', `/v1/webhook_endpoints/${endpoint.id}/rotate_secret`, body);
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe('expires_in');
  });
});

describe('POST /v1/webhook_endpoints/:id/test', () => {
  it('delivers a test.webhook event to that endpoint only', async () => {
    const a = await endpointWithReceiver({ enabled_events: ['refund.failed'] });
    const b = await endpointWithReceiver();
    const res = await g.api('POST', `/v1/webhook_endpoints/${a.endpoint.id}/test`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ object: 'event', type: 'test.webhook', livemode: false, data: { object: { id: a.endpoint.id, object: 'webhook_endpoint' } } });
    const got = await a.r.waitFor((w) => w.id === res.body.id);
    expect(got.verified).toBe(true);
    expect(got.payload).toEqual(res.body);
    await new Promise((r) => setTimeout(r, 300));
    expect(b.r.received.filter((w) => w.id === res.body.id)).toHaveLength(0);
    expect((await g.api('GET', `/v1/events/${res.body.id}`)).body).toEqual(res.body);

    await g.api('POST', `/v1/webhook_endpoints/${a.endpoint.id}`, { status: 'disabled' });
    const refused = await g.api('POST', `/v1/webhook_endpoints/${a.endpoint.id}/test`);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'endpoint_disabled', param: 'id' });
  });
});

describe('resend and deliveries', () => {
  it('resends an event as the same webhook-id and body, and lists every attempt', async () => {
    const { r, endpoint } = await endpointWithReceiver({ enabled_events: ['payment.succeeded'] });
    const { paymentId, eventId } = await paidPayment();
    const first = await r.waitFor((w) => w.id === eventId);

    const res = await g.api('POST', `/v1/events/${eventId}/resend`, {}, { 'idempotency-key': `resend-${eventId}` });
    expect(res.status).toBe(200);
    const mine = res.body.data.filter((d: any) => d.webhook_endpoint === endpoint.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ object: 'webhook_delivery', event: eventId, event_type: 'payment.succeeded', status: 'pending', attempt_count: 0, attempts: [] });
    await waitUntil(async () => r.received.filter((w) => w.id === eventId).length >= 2);
    const copies = r.received.filter((w) => w.id === eventId);
    expect(copies.every((w) => w.verified)).toBe(true);
    expect(copies[1].body).toBe(first.body);
    expect(JSON.parse(first.body).data.object.id).toBe(paymentId);

    // The same Idempotency-Key replays the answer instead of queueing a third copy.
    const again = await g.api('POST', `/v1/events/${eventId}/resend`, {}, { 'idempotency-key': `resend-${eventId}` });
    expect(again.body).toEqual(res.body);

    const list = await waitUntil(async () => {
      const l = await g.api('GET', `/v1/events/${eventId}/deliveries?limit=100`);
      const ours = l.body.data.filter((d: any) => d.webhook_endpoint === endpoint.id);
      return ours.length === 2 && ours.every((d: any) => d.status === 'delivered') && l.body;
    });
    expect(list).toMatchObject({ object: 'list', url: `/v1/events/${eventId}/deliveries`, has_more: false });
    for (const d of list.data.filter((x: any) => x.webhook_endpoint === endpoint.id)) {
      expect(d).toMatchObject({ attempt_count: 1, last_status_code: 200, next_attempt_at: null });
      expect(d.attempts).toHaveLength(1);
      expect(d.attempts[0]).toMatchObject({ status_code: 200, response_excerpt: '', error: null });
      expect(d.attempts[0].latency_ms).toBeGreaterThanOrEqual(0);
      expect(Math.abs(d.attempts[0].attempted_at - Date.now() / 1000)).toBeLessThan(30);
    }
    const byEndpoint = await g.api('GET', `/v1/webhook_endpoints/${endpoint.id}/deliveries?status=delivered&limit=1`);
    expect(byEndpoint.body.data).toHaveLength(1);
    expect(byEndpoint.body.has_more).toBe(true);
    expect(byEndpoint.body.data[0].event).toBe(eventId);
  });

  it('resends to one named endpoint even if it did not subscribe to the type', async () => {
    const { eventId } = await paidPayment();
    const { r, endpoint } = await endpointWithReceiver({ enabled_events: ['refund.succeeded'] });
    const res = await g.api('POST', `/v1/events/${eventId}/resend`, { webhook_endpoint: endpoint.id });
    expect(res.body.data.map((d: any) => d.webhook_endpoint)).toEqual([endpoint.id]);
    expect((await r.waitFor((w) => w.id === eventId)).verified).toBe(true);
  });

  it('refuses bad resends: unknown, other app’s or disabled endpoint, other app’s event', async () => {
    const { eventId } = await paidPayment();
    const { endpoint } = await endpointWithReceiver();
    const cases: Array<[string, unknown, number, string, string]> = [
      [eventId, { webhook_endpoint: 'we_nope' }, 404, 'resource_missing', 'webhook_endpoint'],
      [eventId, { webhook_endpoint: 42 }, 400, 'parameter_invalid', 'webhook_endpoint'],
      [eventId, { endpoint: endpoint.id }, 400, 'parameter_unknown', 'endpoint'],
      ['evt_nope', {}, 404, 'resource_missing', 'id'],
    ];
    for (const [id, body, status, code, param] of cases) {
      const res = await g.api('POST', `/v1/events/${id}/resend`, body);
      expect(res.status).toBe(status);
      expect(res.body.error).toMatchObject({ code, param });
    }
    expect((await asOther('POST', `/v1/events/${eventId}/resend`, {})).status).toBe(404);
    expect((await asOther('GET', `/v1/events/${eventId}/deliveries`)).status).toBe(404);
    const theirs = await asOther('POST', '/v1/webhook_endpoints', { url: 'https://other.example.com/h' });
    expect((await g.api('POST', `/v1/events/${eventId}/resend`, { webhook_endpoint: theirs.body.id })).body.error).toMatchObject({ code: 'resource_missing', param: 'webhook_endpoint' });
    await g.api('POST', `/v1/webhook_endpoints/${endpoint.id}`, { status: 'disabled' });
    const disabled = await g.api('POST', `/v1/events/${eventId}/resend`, { webhook_endpoint: endpoint.id });
    expect(disabled.body.error).toMatchObject({ code: 'endpoint_disabled', param: 'webhook_endpoint' });
    expect((await g.api('GET', `/v1/events/${eventId}/deliveries?status=lost`)).body.error.param).toBe('status');
  });

  it('verifies with the standardwebhooks package against the endpoint secret', async () => {
    const { r, endpoint } = await endpointWithReceiver();
    const res = await g.api('POST', `/v1/webhook_endpoints/${endpoint.id}/test`);
    const got = await r.waitFor((w) => w.id === res.body.id);
    expect(new Webhook(endpoint.secret).verify(got.body, got.headers as Record<string, string>)).toEqual(res.body);
  });
});
