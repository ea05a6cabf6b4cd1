import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { InsertBatcher } from '../../server/batch.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { newId, randomId } from '../../server/crypto.ts';

// Group commit shares one INSERT among concurrent callers; one caller's bad row must not fail the
// others (other apps' too): each caller gets its own outcome.

const db = pgUrl ? 'PostgreSQL' : 'SQLite';
let g: TestGateway;
let apps: CreatedApp[];
let seq = 0;

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  apps = [g.app, await createApp(g.deps.db, { name: 'Second shop' }), await createApp(g.deps.db, { name: 'Third shop' })];
});
afterAll(async () => {
  await g?.close();
});

function paymentRow(appId: string, over: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    id: newId('pay'), app_id: appId, livemode: false, out_trade_no: `batch_${++seq}`, amount: 100 + seq, currency: 'CNY',
    subject: `Batch ${seq}`, description: null, channel: null, status: 'pending', amount_refunded: 0, expires_at: now + 900,
    return_url: null, metadata: '{}', checkout_token: randomId(32), client_ip: null, created: now, updated_ms: Date.now(),
    ...over,
  } as Record<string, unknown> & { id: string };
}

describe(`InsertBatcher: one row's failure fails only its caller (${db})`, () => {
  it('rows the database refuses, mixed with valid rows of three apps in one batch', async () => {
    const batcher = new InsertBatcher(g.deps.db, 'payments');
    const taken = paymentRow(apps[1].app_id);
    expect(await batcher.insert(taken)).toBe(true);

    const valid = Array.from({ length: 30 }, (_, i) => paymentRow(apps[i % 3].app_id));
    const bad = [
      paymentRow(apps[0].app_id, { subject: null }), // NOT NULL
      paymentRow('app_that_does_not_exist'), // foreign key
      ...(pgUrl ? [paymentRow(apps[2].app_id, { subject: 'nul \u0000 byte' })] : []), // PostgreSQL text refuses NUL
    ];
    const conflict = paymentRow(apps[1].app_id, { out_trade_no: taken.out_trade_no });
    // All in the same turn of the event loop: one batch, one statement.
    const rows = [...valid.slice(0, 10), bad[0], ...valid.slice(10, 20), conflict, ...bad.slice(1), ...valid.slice(20)];
    const outcomes = await Promise.allSettled(rows.map((r) => batcher.insert(r)));
    const of = (r: { id: string }) => outcomes[rows.indexOf(r)];

    for (const r of valid) expect(of(r)).toEqual({ status: 'fulfilled', value: true });
    for (const r of bad) expect(of(r).status).toBe('rejected');
    // A unique conflict is still an answer of its own: false, not an error.
    expect(of(conflict)).toEqual({ status: 'fulfilled', value: false });

    const stored = await g.deps.db('payments').whereIn('id', rows.map((r) => r.id)).pluck('id');
    expect(new Set(stored)).toEqual(new Set(valid.map((r) => r.id)));
  });

  it('a shared statement that committed but whose answer was lost: each row is still its caller\'s', async () => {
    const batcher = new InsertBatcher(g.deps.db, 'payments');
    const taken = paymentRow(apps[0].app_id);
    expect(await batcher.insert(taken)).toBe(true);
    // The connection drops after the commit: the rows are in, the caller sees an error.
    const shared = (batcher as any).insertRows.bind(batcher);
    (batcher as any).insertRows = async (rows: unknown[]) => {
      const ids = await shared(rows);
      if (rows.length > 1) throw new Error('Connection terminated unexpectedly');
      return ids;
    };
    const valid = Array.from({ length: 6 }, (_, i) => paymentRow(apps[i % 3].app_id));
    const conflict = paymentRow(apps[0].app_id, { out_trade_no: taken.out_trade_no });
    const rows = [...valid.slice(0, 3), conflict, ...valid.slice(3)];
    const outcomes = await Promise.all(rows.map((r) => batcher.insert(r)));
    expect(outcomes).toEqual([true, true, true, false, true, true, true]);
    expect(await g.deps.db('payments').whereIn('id', rows.map((r) => r.id)).pluck('id')).toHaveLength(6);
  });

  it('through the API: 60 concurrent creates of three apps and one the database may refuse', async () => {
    const create = (app: CreatedApp, body: Record<string, unknown>) =>
      fetch(`${g.url}/v1/payments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${app.secret_key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const bodies = Array.from({ length: 60 }, (_, i) => ({ app: apps[i % 3], body: { amount: 100 + i, subject: `API batch ${i}`, out_trade_no: `api_batch_${i}` } }));
    // A NUL: PostgreSQL's text refuses it (SQLite keeps it). Whatever this request gets, it is its own answer.
    const odd = create(apps[1], { amount: 100, subject: 'nul \u0000 here', out_trade_no: 'api_batch_nul' });
    const results = await Promise.all(bodies.map((b) => create(b.app, b.body)));
    expect(results.map((r) => r.status)).toEqual(Array(60).fill(200));
    results.forEach((r, i) => expect(r.body).toMatchObject({ amount: bodies[i].body.amount, out_trade_no: bodies[i].body.out_trade_no }));
    const oddAnswer = await odd;
    if (oddAnswer.status !== 200) expect(oddAnswer.body.error).toBeDefined();
  });
});
