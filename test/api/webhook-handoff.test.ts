import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertEvent, type EventObject } from '../../server/events/repo.ts';
import { createEndpoint } from '../../server/webhooks/service.ts';
import { LEASE_MS, startWebhookWorker, type WebhookWorker } from '../../server/webhooks/worker.ts';
import { deliveriesNeedClaim } from '../../server/webhooks/handoff.ts';
import { transaction } from '../../server/sql.ts';
import type { Deps } from '../../server/deps.ts';
import { insertApp, makeDeps, openTestDb, startReceiver, type TestDb } from './webhook-helpers.ts';

// Deliveries written by this process's transaction() go to its own background worker leased
// already, with no claim; the outbox still holds them, so nothing is lost when that worker stops
// or dies, and no other worker takes them while the lease holds.
let tdb: TestDb;
let deps: Deps;
let appId: string;
const cleanups: Array<() => Promise<void>> = [];
beforeEach(async () => {
  tdb = await openTestDb();
  deps = makeDeps(tdb.db);
  appId = await insertApp(tdb.db);
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
  await tdb.close();
});

async function emit(): Promise<{ event: EventObject; needClaim: boolean }> {
  return transaction(tdb.db, async (tx) => {
    const event = await insertEvent(tx, { appId, livemode: false, type: 'payment.succeeded', object: { id: 'pay_1', object: 'payment', amount: 1234 } });
    return { event, needClaim: deliveriesNeedClaim(tx) };
  });
}
const deliveryOf = async (eventId: string) => (await tdb.db('webhook_deliveries').where({ event_id: eventId }))[0];
const until = async (what: () => Promise<boolean> | boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('deliveries handed to this process worker', () => {
  it('are inserted leased, delivered without being claimed, and need no wake-up', async () => {
    const r = await startReceiver(() => ({ status: 200, body: 'ok', delayMs: 300 }));
    cleanups.push(r.close);
    await createEndpoint(deps, { appId, livemode: false }, { url: r.url });
    const w = startWebhookWorker(deps, { pollMs: 60_000 });
    cleanups.push(() => w.stop());
    const before = Date.now();
    const { event, needClaim } = await emit();
    expect(needClaim).toBe(false);
    // In flight (the receiver is slow): leased since the insert, as a claim would have it.
    await until(() => r.received.length === 1);
    const leased = await deliveryOf(event.id);
    expect(Number(leased.locked_until_ms)).toBeGreaterThanOrEqual(before + LEASE_MS);
    await until(async () => (await deliveryOf(event.id)).status === 'delivered');
    expect(r.received[0].headers['webhook-id']).toBe(event.id);
  });

  it('a worker that takes nothing (none running) leaves them unleased for a claim', async () => {
    const r = await startReceiver();
    cleanups.push(r.close);
    await createEndpoint(deps, { appId, livemode: false }, { url: r.url });
    const { event, needClaim } = await emit();
    expect(needClaim).toBe(true);
    expect((await deliveryOf(event.id)).locked_until_ms).toBeNull();
    const w: WebhookWorker = startWebhookWorker(deps, { background: false });
    cleanups.push(() => w.stop());
    expect(await w.runOnce()).toBe(1);
  });

  it('are not claimed by another worker while leased, and a stopping worker gives back what it did not start', async () => {
    const r = await startReceiver(() => ({ status: 200, body: 'ok', delayMs: 400 }));
    cleanups.push(r.close);
    await createEndpoint(deps, { appId, livemode: false }, { url: r.url });
    const w = startWebhookWorker(deps, { pollMs: 60_000, concurrency: 1 });
    const first = await emit();
    const rest = [await emit(), await emit()];
    await until(() => r.received.length === 1);
    // Another worker on the same database finds nothing to claim: all three are leased.
    const other = startWebhookWorker(deps, { background: false });
    cleanups.push(() => other.stop());
    expect(await other.runOnce()).toBe(0);
    await w.stop();
    expect((await deliveryOf(first.event.id)).status).toBe('delivered');
    const left = await Promise.all(rest.map((e) => deliveryOf(e.event.id)));
    const started = left.filter((d) => d.status === 'delivered').length;
    for (const d of left.filter((x) => x.status === 'pending')) expect(d.locked_until_ms).toBeNull();
    expect(await other.runOnce()).toBe(2 - started);
    expect(new Set(r.received.map((x) => x.headers['webhook-id'])).size).toBe(3);
    expect(r.received).toHaveLength(3);
  });
});
