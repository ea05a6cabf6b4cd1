import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { insertEvent, type EventObject, type EventType } from '../../server/events/repo.ts';
import { createEndpoint } from '../../server/webhooks/service.ts';
import { DELIVERY_TIMEOUT_MS, MAX_ATTEMPTS, RETRY_SCHEDULE_MS, nextRetryDelay, parseRetryAfter, startWebhookWorker, type WebhookWorker, type WebhookWorkerOptions } from '../../server/webhooks/worker.ts';
import type { Deps } from '../../server/deps.ts';
import { insertApp, makeDeps, openTestDb, pgUrl, startReceiver, type TestDb } from './webhook-helpers.ts';

let tdb: TestDb;
let deps: Deps;
let appId: string;
const auth = () => ({ appId, livemode: false });
const cleanups: Array<() => Promise<void>> = [];

// A fresh database (or schema) per test: leftover pending deliveries must not leak between tests.
beforeEach(async () => {
  tdb = await openTestDb();
  deps = makeDeps(tdb.db);
  appId = await insertApp(tdb.db);
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
  await tdb.close();
});

async function receiver(...args: Parameters<typeof startReceiver>) {
  const r = await startReceiver(...args);
  cleanups.push(r.close);
  return r;
}

function worker(opts: WebhookWorkerOptions = {}, d: Deps = deps): WebhookWorker {
  const w = startWebhookWorker(d, { background: false, ...opts });
  cleanups.push(() => w.stop());
  return w;
}

async function emit(type: EventType = 'payment.succeeded', object: Record<string, unknown> = { id: 'pay_1', object: 'payment', amount: 1234, subject: '咖啡' }): Promise<EventObject> {
  return tdb.db.transaction((trx) => insertEvent(trx, { appId, livemode: false, type, object }));
}

const deliveriesOf = (eventId: string) => tdb.db('webhook_deliveries').where({ event_id: eventId });
const attemptsOf = (deliveryId: string) => tdb.db('webhook_attempts').where({ delivery_id: deliveryId }).orderBy('id');

describe('webhook worker', () => {
  it('delivers an event once, signed so standardwebhooks verifies it', async () => {
    const r = await receiver();
    const { endpoint, secret } = await createEndpoint(deps, auth(), { url: r.url });
    const event = await emit();
    const w = worker();

    expect(await w.runOnce()).toBe(1);
    expect(await w.runOnce()).toBe(0);
    expect(r.received).toHaveLength(1);
    const got = r.received[0];
    expect(got.headers['webhook-id']).toBe(event.id);
    expect(Math.abs(Number(got.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['user-agent']).toBe('Checkstand-Webhooks/1');
    expect(got.headers['webhook-signature']).toMatch(/^v1,\S+$/);
    const verified = new Webhook(secret).verify(got.body, got.headers as Record<string, string>);
    expect(verified).toEqual(event);
    expect(JSON.parse(got.body)).toEqual({ id: event.id, object: 'event', type: 'payment.succeeded', created: event.created, livemode: false, data: { object: event.data.object } });

    const [d] = await deliveriesOf(event.id);
    expect(d).toMatchObject({ endpoint_id: endpoint.id, status: 'delivered', attempt_count: 1, last_status_code: 200, locked_until_ms: null });
    const attempts = await attemptsOf(d.id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ status_code: 200, response_excerpt: 'ok', error: null });
    expect(attempts[0].latency_ms).toBeGreaterThanOrEqual(0);
  });

  it('only sends events the endpoint subscribed to', async () => {
    const r = await receiver();
    await createEndpoint(deps, auth(), { url: r.url, enabled_events: ['refund.succeeded'] });
    await emit('payment.succeeded');
    const refund = await emit('refund.succeeded', { id: 're_1', object: 'refund' });
    expect(await worker().runOnce()).toBe(1);
    expect(r.received.map((x) => x.headers['webhook-id'])).toEqual([refund.id]);
  });

  it('retries after a 500 with the same id and bytes, recording both attempts', async () => {
    const r = await receiver((_req, i) => (i === 0 ? { status: 500, body: 'x'.repeat(5000) } : { status: 204 }));
    const { secret } = await createEndpoint(deps, auth(), { url: r.url });
    const event = await emit();
    let offset = 0;
    const w = worker({ now: () => Date.now() + offset });

    const before = Date.now();
    expect(await w.runOnce()).toBe(1);
    let [d] = await deliveriesOf(event.id);
    expect(d).toMatchObject({ status: 'pending', attempt_count: 1, last_status_code: 500, locked_until_ms: null });
    // The first retry waits 5 s ± 10%.
    expect(d.next_attempt_at_ms).toBeGreaterThanOrEqual(before + 4500);
    expect(d.next_attempt_at_ms).toBeLessThanOrEqual(Date.now() + 5500);
    expect(await w.runOnce()).toBe(0); // not due yet

    offset = 6000;
    expect(await w.runOnce()).toBe(1);
    [d] = await deliveriesOf(event.id);
    expect(d).toMatchObject({ status: 'delivered', attempt_count: 2, last_status_code: 204 });

    expect(r.received).toHaveLength(2);
    expect(r.received[1].headers['webhook-id']).toBe(r.received[0].headers['webhook-id']);
    expect(r.received[1].body).toBe(r.received[0].body);
    for (const got of r.received) expect(new Webhook(secret).verify(got.body, got.headers as Record<string, string>)).toEqual(event);

    const attempts = await attemptsOf(d.id);
    expect(attempts.map((a) => a.status_code)).toEqual([500, 204]);
    expect(attempts[0].response_excerpt).toBe('x'.repeat(1024));
    for (const a of attempts) {
      expect(a.latency_ms).toBeGreaterThanOrEqual(0);
      expect(a.attempted_at_ms).toBeGreaterThan(0);
    }
  });

  it('marks a delivery failed after the last scheduled attempt', async () => {
    const r = await receiver(() => ({ status: 503 }));
    await createEndpoint(deps, auth(), { url: r.url });
    const event = await emit();
    await deliveriesOf(event.id).update({ attempt_count: MAX_ATTEMPTS - 1 });
    expect(await worker().runOnce()).toBe(1);
    const [d] = await deliveriesOf(event.id);
    expect(d).toMatchObject({ status: 'failed', attempt_count: MAX_ATTEMPTS, last_status_code: 503 });
  });

  it('honours Retry-After when it is longer than the schedule', async () => {
    const r = await receiver((_req, i) =>
      i === 0 ? { status: 429, headers: { 'retry-after': '120' } } : { status: 503, headers: { 'retry-after': new Date(Date.now() + 3600_000).toUTCString() } },
    );
    await createEndpoint(deps, auth(), { url: r.url });
    const e1 = await emit();
    const w = worker({ concurrency: 1 });
    let t = Date.now();
    await w.runOnce();
    let [d] = await deliveriesOf(e1.id);
    expect(d.status).toBe('pending');
    expect(d.next_attempt_at_ms).toBeGreaterThanOrEqual(t + 120_000);
    expect(d.next_attempt_at_ms).toBeLessThanOrEqual(Date.now() + 120_000);

    const e2 = await emit();
    t = Date.now();
    await w.runOnce();
    [d] = await deliveriesOf(e2.id);
    expect(d.next_attempt_at_ms).toBeGreaterThanOrEqual(t + 3600_000 - 2000); // HTTP dates have 1 s resolution
    expect(d.next_attempt_at_ms).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
  });

  it('disables the endpoint on 410 Gone and fails its pending deliveries', async () => {
    const gone = await receiver(() => ({ status: 410 }));
    const other = await receiver();
    const { endpoint } = await createEndpoint(deps, auth(), { url: gone.url });
    await createEndpoint(deps, auth(), { url: other.url, enabled_events: ['webhook_endpoint.disabled'] });
    const e1 = await emit();
    const e2 = await emit();
    const w = worker({ concurrency: 1 });

    await w.runOnce();
    expect(gone.received).toHaveLength(1);
    const row = await tdb.db('webhook_endpoints').where({ id: endpoint.id }).first();
    expect(row.status).toBe('disabled');
    expect(row.disabled_reason).toMatch(/410/);
    const deliveries = await tdb.db('webhook_deliveries').whereIn('event_id', [e1.id, e2.id]);
    expect(deliveries.map((d) => d.status)).toEqual(['failed', 'failed']);

    // The app's other endpoint hears about it; the disabled one gets nothing new.
    await emit();
    await w.runOnce();
    expect(gone.received).toHaveLength(1);
    expect(other.received).toHaveLength(1);
    const told = JSON.parse(other.received[0].body);
    expect(told).toMatchObject({ type: 'webhook_endpoint.disabled', data: { object: { id: endpoint.id, status: 'disabled' } } });
    expect(told.data.object.secret).toBeUndefined();
  });

  it('disables an endpoint after three days of nothing but failures and tells the app', async () => {
    const down = await receiver(() => ({ status: 503, body: 'maintenance' }));
    const other = await receiver();
    const { endpoint } = await createEndpoint(deps, auth(), { url: down.url });
    await createEndpoint(deps, auth(), { url: other.url, enabled_events: ['webhook_endpoint.disabled'] });
    const event = await emit();
    let offset = 0;
    const w = worker({ now: () => Date.now() + offset, concurrency: 1 });
    const row = () => tdb.db('webhook_endpoints').where({ id: endpoint.id }).first();

    const before = Math.floor(Date.now() / 1000);
    await w.runOnce();
    const since = (await row()).failing_since;
    expect(since).toBeGreaterThanOrEqual(before);
    expect(since).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));

    offset = 71 * 3_600_000; // still failing, not yet three days
    expect(await w.runOnce()).toBe(1);
    expect(await row()).toMatchObject({ status: 'enabled', failing_since: since });
    expect(other.received).toHaveLength(0);

    offset = 72 * 3_600_000 + 60 * 60_000; // past three days, and past the 5-minute retry
    expect(await w.runOnce()).toBeGreaterThanOrEqual(1);
    await w.runOnce();
    expect(down.received).toHaveLength(3);
    const r = await row();
    expect(r.status).toBe('disabled');
    expect(r.disabled_reason).toBe(`Every delivery has failed since ${new Date(since * 1000).toISOString()} (three days).`);
    expect((await deliveriesOf(event.id))[0]).toMatchObject({ status: 'failed', attempt_count: 3 });
    expect(other.received).toHaveLength(1);
    expect(JSON.parse(other.received[0].body)).toMatchObject({
      type: 'webhook_endpoint.disabled',
      data: { object: { id: endpoint.id, status: 'disabled', disabled_reason: r.disabled_reason, failing_since: since } },
    });
  });

  it('restarts the three-day clock after any success', async () => {
    let failing = true;
    const r = await receiver(() => ({ status: failing ? 500 : 200 }));
    const { endpoint } = await createEndpoint(deps, auth(), { url: r.url });
    let offset = 0;
    const w = worker({ now: () => Date.now() + offset });
    await emit();
    await w.runOnce();
    expect((await tdb.db('webhook_endpoints').where({ id: endpoint.id }).first()).failing_since).not.toBeNull();
    failing = false;
    offset = 10_000;
    await w.runOnce();
    expect((await tdb.db('webhook_endpoints').where({ id: endpoint.id }).first()).failing_since).toBeNull();
    // A failure four days on starts a new clock instead of disabling at once.
    failing = true;
    offset = 4 * 86_400_000;
    await emit();
    await w.runOnce();
    const row = await tdb.db('webhook_endpoints').where({ id: endpoint.id }).first();
    expect(row.status).toBe('enabled');
    expect(row.failing_since).toBeGreaterThan(Math.floor(Date.now() / 1000) + 3 * 86_400);
  });

  it('does not follow redirects and records network errors', async () => {
    const r = await receiver(() => ({ status: 302, headers: { location: 'http://127.0.0.1:1/elsewhere' } }));
    await createEndpoint(deps, auth(), { url: r.url });
    const closed = await startReceiver();
    await closed.close(); // a port nobody listens on any more
    await createEndpoint(deps, auth(), { url: closed.url });
    const event = await emit();
    expect(await worker().runOnce()).toBe(2);
    expect(r.received).toHaveLength(1);
    const rows = await tdb.db('webhook_attempts as a').join('webhook_deliveries as d', 'd.id', 'a.delivery_id').where('d.event_id', event.id).select('a.*');
    const byCode = rows.sort((a, b) => (a.status_code ?? 0) - (b.status_code ?? 0));
    expect(byCode[0]).toMatchObject({ status_code: null, error: expect.stringMatching(/ECONNREFUSED|fetch failed/) });
    expect(byCode[1]).toMatchObject({ status_code: 302, error: null });
    expect((await deliveriesOf(event.id)).map((d) => d.status)).toEqual(['pending', 'pending']);
  });

  it('records a timeout as an error and schedules a retry', async () => {
    expect(DELIVERY_TIMEOUT_MS).toBe(15_000);
    const r = await receiver(() => ({ status: 200, delayMs: 1000 }));
    await createEndpoint(deps, auth(), { url: r.url });
    const event = await emit();
    const started = Date.now();
    expect(await worker({ timeoutMs: 200 }).runOnce()).toBe(1);
    expect(Date.now() - started).toBeLessThan(900);
    expect(r.received).toHaveLength(1);
    const [d] = await deliveriesOf(event.id);
    expect(d).toMatchObject({ status: 'pending', attempt_count: 1, last_status_code: null });
    const [a] = await attemptsOf(d.id);
    expect(a).toMatchObject({ status_code: null, error: 'Timed out after 0.2 s.' });
    expect(a.latency_ms).toBeGreaterThanOrEqual(190);
  });

  it('gives up the deliveries of a deleted endpoint without sending', async () => {
    const r = await receiver();
    const { endpoint } = await createEndpoint(deps, auth(), { url: r.url });
    const event = await emit();
    await tdb.db('webhook_endpoints').where({ id: endpoint.id }).update({ deleted_at: 1 });
    expect(await worker().runOnce()).toBe(1);
    expect(r.received).toHaveLength(0);
    expect((await deliveriesOf(event.id))[0].status).toBe('failed');
  });

  it('wakes on the bus, delivers in the background and stops cleanly', async () => {
    const r = await receiver(() => ({ status: 200, delayMs: 50 }));
    await createEndpoint(deps, auth(), { url: r.url });
    const w = startWebhookWorker(deps, { pollMs: 60_000 });
    await new Promise((res) => setTimeout(res, 50)); // let the start-up pass find nothing
    const event = await emit();
    await deps.bus.publish('webhooks', event.id);
    for (let i = 0; i < 100 && r.received.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    await w.stop(); // waits for the delivery in flight
    expect(r.received).toHaveLength(1);
    expect((await deliveriesOf(event.id))[0].status).toBe('delivered');
  });

  it('drains a backlog in the background with at most `concurrency` requests in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const r = await startReceiver(() => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => inFlight--, 30);
      return { status: 200, delayMs: 30 };
    });
    cleanups.push(r.close);
    await createEndpoint(deps, auth(), { url: r.url });
    for (let i = 0; i < 20; i++) await emit('payment.succeeded', { id: `pay_${i}` });
    const w = startWebhookWorker(deps, { pollMs: 60_000, concurrency: 3 });
    for (let i = 0; i < 200 && r.received.length < 20; i++) await new Promise((res) => setTimeout(res, 20));
    await w.stop();
    expect(r.received).toHaveLength(20);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);
  });

  it('never logs the secret', async () => {
    const lines: string[] = [];
    const d = makeDeps(tdb.db, { logLevel: 'debug', logLines: lines });
    const r = await receiver(() => ({ status: 500 }));
    const { secret } = await createEndpoint(d, auth(), { url: r.url });
    await emit();
    await worker({}, d).runOnce();
    expect(lines.some((l) => /webhook delivery failed/.test(l))).toBe(true);
    const all = lines.join('\n');
    expect(all).not.toContain(secret);
    expect(all).not.toContain(secret.slice('whsec_'.length));
  });

  it('delivers each of 50 events exactly once with two workers running at once', async () => {
    const counts = new Map<string, number>();
    const r = await receiver((req) => {
      const id = String(req.headers['webhook-id']);
      counts.set(id, (counts.get(id) ?? 0) + 1);
      return { status: 200, delayMs: 5 };
    });
    await createEndpoint(deps, auth(), { url: r.url });
    const events: EventObject[] = [];
    for (let i = 0; i < 50; i++) events.push(await emit('payment.succeeded', { id: `pay_${i}` }));
    // On PostgreSQL the second worker has its own pool, like another gateway instance.
    const other = { ...deps, db: pgUrl ? tdb.openAnother() : deps.db };
    const [a, b] = await Promise.all([worker({ concurrency: 4 }).runOnce(), worker({ concurrency: 4 }, other).runOnce()]);
    expect(a + b).toBe(50);
    if (pgUrl) expect(Math.min(a, b)).toBeGreaterThan(0);
    expect(counts.size).toBe(50);
    for (const e of events) expect(counts.get(e.id)).toBe(1);
    const statuses = await tdb.db('webhook_deliveries').whereIn('event_id', events.map((e) => e.id)).pluck('status');
    expect(new Set(statuses)).toEqual(new Set(['delivered']));
  });
});

describe('retry schedule', () => {
  it('waits the DESIGN intervals with ±10% jitter', () => {
    expect(RETRY_SCHEDULE_MS.map((ms) => ms / 1000)).toEqual([5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]);
    RETRY_SCHEDULE_MS.forEach((ms, i) => {
      expect(nextRetryDelay(i + 1, null, () => 0)).toBe(Math.round(ms * 0.9));
      expect(nextRetryDelay(i + 1, null, () => 0.999999)).toBeLessThanOrEqual(Math.round(ms * 1.1));
    });
  });

  it('takes Retry-After only when longer, capped at 24 h', () => {
    expect(nextRetryDelay(1, 1000, () => 0.5)).toBe(5000);
    expect(nextRetryDelay(1, 60_000, () => 0.5)).toBe(60_000);
    expect(nextRetryDelay(1, 7 * 86_400_000, () => 0.5)).toBe(86_400_000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('30', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:10:00 GMT', now)).toBe(600_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter('1.5', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
});
