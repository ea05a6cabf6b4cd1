import { describe, expect, it } from 'vitest';
import { createLocalBus } from '../../server/bus.ts';
import { createPaymentPageCache } from '../../server/checkout/page-cache.ts';
import type { PaymentRow } from '../../server/payments/repo.ts';

const row = (id: string, status: PaymentRow['status'] = 'pending') => ({ id, status, checkout_token: `tok_${id}` }) as PaymentRow;

function setup(options?: { ttlMs?: number; max?: number }) {
  const bus = createLocalBus();
  const db = new Map<string, PaymentRow>();
  let reads = 0;
  let gate: Promise<void> | undefined;
  const cache = createPaymentPageCache(bus, async (token) => {
    reads++;
    const found = db.get(token);
    await gate;
    return found;
  }, options);
  return { bus, db, cache, reads: () => reads, hold: (p: Promise<void>) => (gate = p) };
}

describe('cashier page cache', () => {
  it('serves repeated views from memory and evicts on the payment announcement', async () => {
    const s = setup();
    s.db.set('t1', row('p1'));
    expect((await s.cache.get('t1'))?.status).toBe('pending');
    expect((await s.cache.get('t1'))?.status).toBe('pending');
    expect(s.reads()).toBe(1);
    s.db.set('t1', row('p1', 'succeeded'));
    await s.bus.publish('payment:p1', 'succeeded');
    expect((await s.cache.get('t1'))?.status).toBe('succeeded');
    expect(s.reads()).toBe(2);
    // Another payment's announcement leaves this entry alone.
    await s.bus.publish('payment:p2', 'closed');
    await s.cache.get('t1');
    expect(s.reads()).toBe(2);
  });

  it('entries age out, so a change nobody announced shows within the TTL', async () => {
    const s = setup({ ttlMs: 30 });
    s.db.set('t1', row('p1'));
    await s.cache.get('t1');
    s.db.set('t1', row('p1', 'closed'));
    expect((await s.cache.get('t1'))?.status).toBe('pending');
    await new Promise((r) => setTimeout(r, 40));
    expect((await s.cache.get('t1'))?.status).toBe('closed');
  });

  it('does not keep a row read while an announcement went by (it may be the old one)', async () => {
    const s = setup();
    s.db.set('t1', row('p1'));
    let release!: () => void;
    s.hold(new Promise<void>((r) => (release = r)));
    const reading = s.cache.get('t1');
    await s.bus.publish('payment:p1', 'succeeded');
    release();
    expect((await reading)?.status).toBe('pending');
    s.hold(Promise.resolve());
    await s.cache.get('t1');
    expect(s.reads()).toBe(2);
  });

  it('never caches a miss and stays within its size', async () => {
    const s = setup({ max: 2 });
    expect(await s.cache.get('nope')).toBeUndefined();
    s.db.set('nope', row('late'));
    expect((await s.cache.get('nope'))?.id).toBe('late');
    for (const id of ['a', 'b', 'c']) s.db.set(id, row(id));
    for (const id of ['a', 'b', 'c']) await s.cache.get(id);
    const before = s.reads();
    await s.cache.get('c');
    await s.cache.get('b');
    expect(s.reads()).toBe(before);
    await s.cache.get('a'); // the oldest went out
    expect(s.reads()).toBe(before + 1);
  });
});
