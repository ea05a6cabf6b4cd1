import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { routeChannelThrough, startSlowProxy } from '../support/slow-channel.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { batcherFor } from '../../server/batch.ts';
import { startPaymentWorker } from '../../server/payments/worker.ts';
import { createApp } from '../../server/apps/service.ts';
import { findPaymentById } from '../../server/payments/repo.ts';
import { startAttempt } from '../../server/payments/service.ts';
import type { AlipayCredentials } from '../../server/channels/alipay/index.ts';

// Retries that must not move money twice or hold up others: a client that gives up on a slow
// request and retries it with the same Idempotency-Key gets the first request's answer (or a 409
// while it still runs), never a second execution; a refund is submitted by one hand at a time;
// items the worker cannot finish now do not stand in the way of the rest.

const db = pgUrl ? 'PostgreSQL' : 'SQLite';
let g: TestGateway;
let proxy: Awaited<ReturnType<typeof startSlowProxy>>;
let seq = 0;

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  proxy = await startSlowProxy(new URL(g.deps.config.publicUrl).origin);
});
afterAll(async () => {
  await proxy?.close();
  await g?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A POST that the client abandons (after `giveUp` ms, or once `giveUp` settles), as a client with a short timeout does. */
async function abandonedPost(path: string, body: unknown, key: string, giveUp: number | Promise<unknown>): Promise<unknown> {
  const ac = new AbortController();
  const timer = typeof giveUp === 'number' ? setTimeout(() => ac.abort(), giveUp) : undefined;
  if (typeof giveUp !== 'number') void giveUp.then(() => ac.abort());
  try {
    await fetch(g.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${g.app.secret_key}`, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
      signal: ac.signal,
    });
    return 'answered';
  } catch (err) {
    return (err as Error).name;
  } finally {
    clearTimeout(timer);
  }
}

/** Retries with the key until the answer is no longer "still running" (a bounded number of times). */
async function retryUntilDone(path: string, body: unknown, key: string) {
  const seen: number[] = [];
  for (let i = 0; i < 100; i++) {
    const r = await g.api('POST', path, body, { 'idempotency-key': key });
    seen.push(r.status);
    if (r.status !== 409) return { ...r, seen };
    expect(r.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_in_use' });
    await sleep(100);
  }
  throw new Error(`still 409 after 100 retries: ${seen.join(',')}`);
}

async function paid(amount: number) {
  const p = (await g.api('POST', '/v1/payments', { amount, subject: 'Slow', out_trade_no: `slow_${Date.now()}_${++seq}` })).body;
  const s = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' });
  expect(s.body.status).toBe('succeeded');
  return p;
}

describe(`a retry after the client gave up (${db})`, () => {
  it('refund: the retry gets 409 while the first runs, then its stored answer; money moves once', async () => {
    const p = await paid(1000);
    await routeChannelThrough(g.deps, g.app.app_id, 'alipay', proxy.url);
    proxy.setDelay(2000);
    const path = `/v1/payments/${p.id}/refunds`;
    const key = `slow_refund_${seq}`;
    try {
      expect(await abandonedPost(path, { amount: 100 }, key, 400)).toBe('AbortError');
      // Well after the gateway saw the client go, while the channel still holds the first refund.
      await sleep(200);
      const early = await g.api('POST', path, { amount: 100 }, { 'idempotency-key': key });
      expect(early.status).toBe(409);
      const retry = await retryUntilDone(path, { amount: 100 }, key);
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');

      const refunds = await g.deps.db('refunds').where({ payment_id: p.id });
      expect(refunds).toHaveLength(1);
      expect(retry.body).toMatchObject({ id: refunds[0].id, amount: 100, status: 'succeeded' });
      expect((await g.api('GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(100);
      const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id, status: 'succeeded' }).first();
      const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
      const atChannel = await g.deps.db('sandbox_refunds').where({ provider: 'alipay', merchant_id: cred.appId, out_trade_no: attempt.channel_order_no });
      expect(atChannel.map((r) => [r.out_refund_no, Number(r.amount)])).toEqual([[refunds[0].id, 100]]);
    } finally {
      proxy.setDelay(0);
    }
  });

  it('payment create: the retry gets 409 while the first runs, then the payment it created', async () => {
    // The database is what is slow on this path: the batched insert waits at a gate.
    const batcher = batcherFor(g.deps.db, 'payments');
    const insert = batcher.insert.bind(batcher);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let reached!: () => void;
    const arrived = new Promise<void>((r) => (reached = r));
    batcher.insert = async (row) => {
      reached();
      await gate;
      return insert(row);
    };
    const body = { amount: 321, subject: 'Slow create', out_trade_no: `slow_create_${++seq}` };
    const key = `slow_create_${seq}`;
    try {
      // The client gives up while its insert waits.
      expect(await abandonedPost('/v1/payments', body, key, arrived)).toBe('AbortError');
      await sleep(200);
      // Only the first request waits: a second execution would not be held back.
      batcher.insert = insert;
      const early = await g.api('POST', '/v1/payments', body, { 'idempotency-key': key });
      expect(early.status).toBe(409);
      expect(early.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_in_use' });
    } finally {
      batcher.insert = insert;
      open();
    }
    const retry = await retryUntilDone('/v1/payments', body, key);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    const rows = await g.deps.db('payments').where({ out_trade_no: body.out_trade_no });
    expect(rows).toHaveLength(1);
    expect(retry.body).toMatchObject({ id: rows[0].id, amount: 321 });
  });

  it('a 5xx after money was reserved is stored: the retry replays it, and the worker finishes the refund once', async () => {
    const p = await paid(1000);
    const path = `/v1/payments/${p.id}/refunds`;
    const key = `fault_refund_${seq}`;
    // A database fault after the refund was reserved and written, before the channel is asked.
    await injectFault('BEFORE UPDATE OF submit_count ON refunds');
    let first;
    try {
      first = await g.api('POST', path, { amount: 100 }, { 'idempotency-key': key });
    } finally {
      await removeFault('refunds');
    }
    expect(first.status).toBe(500);
    expect(first.body.error).toMatchObject({ type: 'api_error' });
    const retry = await g.api('POST', path, { amount: 100 }, { 'idempotency-key': key });
    expect(retry.status).toBe(500);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    const refunds = await g.deps.db('refunds').where({ payment_id: p.id });
    expect(refunds.map((r) => r.status)).toEqual(['pending']);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(100);

    // The refund worker asks the channel, once, under the refund's own number.
    const worker = startPaymentWorker(g.deps, { background: false });
    try {
      await g.deps.db('refunds').where({ id: refunds[0].id }).update({ next_query_at_ms: Date.now() - 1 });
      await worker.runOnce();
    } finally {
      await worker.stop();
    }
    expect((await g.api('GET', `/v1/refunds/${refunds[0].id}`)).body).toMatchObject({ status: 'succeeded', amount: 100 });
    const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id, status: 'succeeded' }).first();
    const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
    expect(await g.deps.db('sandbox_refunds').where({ provider: 'alipay', merchant_id: cred.appId, out_trade_no: attempt.channel_order_no })).toHaveLength(1);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.amount_refunded).toBe(100);
  });
});

describe(`a refund is submitted by one hand at a time (${db})`, () => {
  afterEach(() => {
    proxy.release();
    proxy.failWith(0);
  });

  /** Refund calls that reached the channel (the proxy), by the refund number they carry. */
  const refundCalls = (log: string[], refundId: string) => log.filter((b) => b.includes('alipay.trade.refund') && b.includes(refundId)).length;

  it('while the API request still waits for the channel, no worker submits it again', async () => {
    const p = await paid(1000);
    await routeChannelThrough(g.deps, g.app.app_id, 'alipay', proxy.url);
    const path = `/v1/payments/${p.id}/refunds`;
    proxy.hold();
    const answer = g.api('POST', path, { amount: 100 });
    let refundId = '';
    for (let i = 0; i < 100 && !refundId; i++) {
      refundId = (await g.deps.db('refunds').where({ payment_id: p.id }).first())?.id ?? '';
      if (!refundId || !refundCalls(proxy.bodies, refundId)) refundId = '';
      await sleep(20);
    }
    expect(refundCalls(proxy.bodies, refundId)).toBe(1);
    // 11 s later the channel still has not answered (a call may take 15 s, and a refund two calls).
    const later = startPaymentWorker(g.deps, { background: false, now: () => Date.now() + 11_000 });
    const pass = later.runOnce();
    await sleep(300);
    expect(refundCalls(proxy.bodies, refundId)).toBe(1);
    proxy.release();
    expect((await answer).body).toMatchObject({ id: refundId, status: 'succeeded' });
    await pass;
    await later.stop();
  });

  it('a worker submitting a refund keeps it until the channel answered: a second worker does not submit it too', async () => {
    const p = await paid(1000);
    await routeChannelThrough(g.deps, g.app.app_id, 'alipay', proxy.url);
    proxy.failWith(502);
    const created = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 100 });
    proxy.failWith(0);
    expect(created.body.status).toBe('pending');
    const refundId = created.body.id;
    expect(refundCalls(proxy.bodies, refundId)).toBe(1);
    // 15 s later a worker retries it, and the channel is slow to answer.
    proxy.hold();
    const first = startPaymentWorker(g.deps, { background: false, now: () => Date.now() + 15_000 });
    const pass = first.runOnce();
    for (let i = 0; i < 100 && refundCalls(proxy.bodies, refundId) < 2; i++) await sleep(20);
    expect(refundCalls(proxy.bodies, refundId)).toBe(2);
    // Another process, 31 s on, while that submission still waits (it may take 30 s).
    const second = startPaymentWorker(g.deps, { background: false, now: () => Date.now() + 46_000 });
    const secondPass = second.runOnce();
    await sleep(300);
    expect(refundCalls(proxy.bodies, refundId)).toBe(2);
    proxy.release();
    await Promise.all([pass, secondPass]);
    await second.stop();
    await first.stop();
    expect((await g.api('GET', `/v1/refunds/${refundId}`)).body.status).toBe('succeeded');
  });
});

describe(`the payment worker: what fails now waits its turn (${db})`, () => {
  afterEach(() => proxy.failWith(0));

  it('expired payments whose channel cannot be reached do not keep the others from closing', async () => {
    // Another shop, whose Alipay is down: more expired payments than one pass takes.
    const shop = await createApp(g.deps.db, { name: 'Shop with Alipay down' });
    const auth = { appId: shop.app_id, livemode: false };
    const stuck: string[] = [];
    for (let i = 0; i < 51; i++) {
      const p = (await fetch(`${g.url}/v1/payments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${shop.secret_key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 100, subject: 'Down', out_trade_no: `down_${i}` }),
      }).then((r) => r.json())) as { id: string };
      await startAttempt(g.deps, (await findPaymentById(g.deps.db, p.id))!, 'alipay_pc');
      stuck.push(p.id);
    }
    await routeChannelThrough(g.deps, auth.appId, 'alipay', proxy.url);
    proxy.failWith(502);
    const bare = (await g.api('POST', '/v1/payments', { amount: 99, subject: 'No attempt', out_trade_no: `bare_${++seq}` })).body;
    const past = Math.floor(Date.now() / 1000);
    await g.deps.db('payments').whereIn('id', stuck).update({ expires_at: past - 100 });
    await g.deps.db('payments').where({ id: bare.id }).update({ expires_at: past - 1 });
    const worker = startPaymentWorker(g.deps, { background: false });
    try {
      for (let i = 0; i < 3; i++) await worker.runOnce();
    } finally {
      await worker.stop();
    }
    expect((await g.api('GET', `/v1/payments/${bare.id}`)).body.status).toBe('closed');
    expect(await g.deps.db('payments').whereIn('id', stuck).where({ status: 'pending' })).toHaveLength(51);
  });
});

/** A database fault: every statement the trigger covers fails (SQLite RAISE, PostgreSQL plpgsql). */
async function injectFault(when: string): Promise<void> {
  if (pgUrl) {
    await g.deps.db.raw(`CREATE OR REPLACE FUNCTION injected_fault() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql`);
    await g.deps.db.raw(`CREATE TRIGGER injected_fault ${when} FOR EACH ROW EXECUTE FUNCTION injected_fault()`);
  } else {
    await g.deps.db.raw(`CREATE TRIGGER injected_fault ${when} BEGIN SELECT RAISE(ABORT, 'injected fault'); END`);
  }
}

async function removeFault(table: string): Promise<void> {
  await g.deps.db.raw(pgUrl ? `DROP TRIGGER IF EXISTS injected_fault ON ${table}` : 'DROP TRIGGER IF EXISTS injected_fault');
}
