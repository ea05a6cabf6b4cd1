import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { expectLedgerConsistent, newCustomer, topUp, tradeNo } from '../support/accounts.ts';

let g: TestGateway;
let other: CreatedApp;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  other = await createApp(g.deps.db, { name: 'Other Shop' });
});
afterAll(() => g?.close());

const count = async (table: string) => Number((await g.deps.db(table).count({ n: '*' }))[0].n);

describe('customers', () => {
  it('create, retrieve, update and list them (cursor pages), out_user_id unique per app and mode', async () => {
    const c = await newCustomer(g, { out_user_id: 'u_1001', email: 'li@example.com', phone: '+86 138 0000 0000', metadata: { tier: 'gold' } });
    expect(c).toMatchObject({ object: 'customer', livemode: false, out_user_id: 'u_1001', name: 'Li Lei', balance: 0, currency: 'CNY', metadata: { tier: 'gold' } });
    expect(c.id).toMatch(/^cus_/);
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body).toEqual(c);
    const dup = await g.api('POST', '/v1/customers', { out_user_id: 'u_1001' });
    expect(dup.status).toBe(400);
    expect(dup.body.error).toMatchObject({ code: 'out_user_id_taken', param: 'out_user_id' });
    // Another app may use the same out_user_id.
    const elsewhere = await fetch(`${g.url}/v1/customers`, { method: 'POST', headers: { authorization: `Bearer ${other.secret_key}`, 'content-type': 'application/json' }, body: JSON.stringify({ out_user_id: 'u_1001' }) });
    expect(elsewhere.status).toBe(200);

    const updated = await g.api('POST', `/v1/customers/${c.id}`, { name: 'Han Meimei', email: null, metadata: { tier: 'silver' } });
    expect(updated.body).toMatchObject({ name: 'Han Meimei', email: null, phone: '+86 138 0000 0000', metadata: { tier: 'silver' } });
    const currency = await g.api('POST', `/v1/customers/${c.id}`, { currency: 'USD' });
    expect(currency.body.error).toMatchObject({ code: 'parameter_unknown', param: 'currency' });

    for (let i = 0; i < 4; i++) await newCustomer(g, { out_user_id: `page_${i}` });
    const first = await g.api('GET', '/v1/customers?limit=2');
    expect(first.body).toMatchObject({ object: 'list', url: '/v1/customers', has_more: true });
    expect(first.body.data).toHaveLength(2);
    const second = await g.api('GET', `/v1/customers?limit=2&starting_after=${first.body.data[1].id}`);
    expect(second.body.data.map((x: any) => x.id)).not.toContain(first.body.data[0].id);
    expect((await g.api('GET', '/v1/customers?out_user_id=u_1001')).body.data.map((x: any) => x.id)).toEqual([c.id]);
    expect((await g.api('GET', '/v1/customers?limit=101')).body.error.param).toBe('limit');
  });

  it("another app's customer, or an unknown one, is a 404 naming the parameter", async () => {
    const theirs = await (await fetch(`${g.url}/v1/customers`, { method: 'POST', headers: { authorization: `Bearer ${other.secret_key}`, 'content-type': 'application/json' }, body: '{}' })).json() as any;
    expect((await g.api('GET', `/v1/customers/${theirs.id}`)).status).toBe(404);
    const pay = await g.api('POST', '/v1/payments', { amount: 100, subject: 'x', out_trade_no: tradeNo('foreign'), customer: theirs.id, channel: 'balance' });
    expect(pay.status).toBe(404);
    expect(pay.body.error).toMatchObject({ code: 'resource_missing', param: 'customer' });
    const adj = await g.api('POST', `/v1/customers/${theirs.id}/balance_transactions`, { amount: 100 });
    expect(adj.status).toBe(404);
    expect((await g.api('POST', '/v1/payments', { amount: 100, subject: 'x', out_trade_no: tradeNo('bad'), customer: 'nope' })).body.error.param).toBe('customer');
  });

  it('a balance payment in another currency than the balance, or from a deleted customer, is refused and stores nothing', async () => {
    const c = await newCustomer(g);
    await topUp(g, c.id, 500);
    const [payments, entries] = [await count('payments'), await count('balance_transactions')];
    const usd = await g.api('POST', '/v1/payments', { amount: 100, currency: 'USD', subject: 'x', out_trade_no: tradeNo('usd'), customer: c.id, channel: 'balance' });
    expect(usd.status).toBe(400);
    expect(usd.body.error).toMatchObject({ code: 'currency_mismatch', param: 'currency' });
    expect(usd.body.error.message).toContain('CNY');

    const gone = await newCustomer(g);
    expect((await g.api('DELETE', `/v1/customers/${gone.id}`)).status).toBe(200);
    const deleted = await g.api('POST', '/v1/payments', { amount: 1, subject: 'x', out_trade_no: tradeNo('gone'), customer: gone.id, channel: 'balance' });
    expect(deleted.status).toBe(404);
    expect(deleted.body.error).toMatchObject({ code: 'resource_missing', param: 'customer' });
    expect([await count('payments'), await count('balance_transactions')]).toEqual([payments, entries]);
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(500);
  });

  it('concurrent balance payments where one reuses a taken out_trade_no: the others are paid, that one is refused and debits nothing', async () => {
    const c = await newCustomer(g);
    await topUp(g, c.id, 1000);
    const taken = tradeNo('taken');
    expect((await g.api('POST', '/v1/payments', { amount: 100, subject: 'x', out_trade_no: taken, customer: c.id, channel: 'balance' })).status).toBe(200);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) =>
      g.api('POST', '/v1/payments', { amount: 100, subject: 'x', out_trade_no: i === 3 ? taken : tradeNo(`batch_${i}`), customer: c.id, channel: 'balance' })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 400, 200, 200]);
    expect(results[3].body.error).toMatchObject({ code: 'out_trade_no_taken', param: 'out_trade_no' });
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(1000 - 6 * 100);
    await expectLedgerConsistent(g.deps.db);
  });

  it('bad customer input is a 400 naming the parameter, and stores nothing', async () => {
    const before = await count('customers');
    for (const [body, param] of [
      [{ out_user_id: 'has space' }, 'out_user_id'], [{ out_user_id: 'x'.repeat(65) }, 'out_user_id'], [{ email: 'not-an-email' }, 'email'],
      [{ currency: 'XXQ' }, 'currency'], [{ phone: 'call me' }, 'phone'], [{ metadata: { k: 1 } }, 'metadata[k]'], [{ balance: 100 }, 'balance'],
    ] as const) {
      const res = await g.api('POST', '/v1/customers', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.param, JSON.stringify(body)).toBe(param);
    }
    expect(await count('customers')).toBe(before);
  });
});

describe('balance and ledger', () => {
  it('a top-up credits the balance in its success; a balance payment debits it and succeeds at once with payment.succeeded', async () => {
    const c = await newCustomer(g);
    const top = await topUp(g, c.id, 1000);
    expect(top).toMatchObject({ purpose: 'balance_top_up', customer: c.id, amount: 1000 });
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(1000);

    const pay = await g.api('POST', '/v1/payments', { amount: 300, subject: 'Tea', out_trade_no: tradeNo('bal'), customer: c.id, channel: 'balance' });
    expect(pay.status, JSON.stringify(pay.body)).toBe(200);
    expect(pay.body).toMatchObject({ status: 'succeeded', channel: 'balance', customer: c.id, amount: 300, purpose: 'payment', next_action: null });
    expect(pay.body.paid_at).toBeGreaterThan(0);
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(700);
    const events = (await g.api('GET', '/v1/events?type=payment.succeeded&limit=100')).body.data;
    expect(events.find((e: any) => e.data.object.id === pay.body.id)?.data.object).toMatchObject({ channel: 'balance', customer: c.id, status: 'succeeded' });

    const ledger = (await g.api('GET', `/v1/customers/${c.id}/balance_transactions`)).body;
    expect(ledger.data.map((b: any) => [b.type, b.amount, b.balance_after, b.source])).toEqual([
      ['payment', -300, 700, pay.body.id],
      ['top_up', 1000, 1000, top.id],
    ]);
    expect(ledger.data[0]).toMatchObject({ object: 'balance_transaction', customer: c.id, livemode: false });
    await expectLedgerConsistent(g.deps.db);
  });

  it('too little balance is a 402 balance_insufficient and stores nothing (Stripe-like: no payment row)', async () => {
    const c = await newCustomer(g);
    await topUp(g, c.id, 100);
    const payments = await count('payments');
    const entries = await count('balance_transactions');
    const events = await count('events');
    const no = tradeNo('short');
    const res = await g.api('POST', '/v1/payments', { amount: 101, subject: 'Too much', out_trade_no: no, customer: c.id, channel: 'balance' });
    expect(res.status).toBe(402);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'balance_insufficient', param: 'customer' });
    expect([await count('payments'), await count('balance_transactions'), await count('events')]).toEqual([payments, entries, events]);
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(100);
    // The same out_trade_no is free for the next try.
    expect((await g.api('POST', '/v1/payments', { amount: 100, subject: 'Exact', out_trade_no: no, customer: c.id, channel: 'balance' })).body.status).toBe('succeeded');
  });

  it('a balance payment needs a customer in its currency; a top-up needs a customer and is never paid with balance', async () => {
    const c = await newCustomer(g, { currency: 'USD' });
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ channel: 'balance' }, 400, 'customer'],
      [{ channel: 'balance', customer: c.id }, 400, 'currency'],
      [{ purpose: 'balance_top_up' }, 400, 'customer'],
      [{ purpose: 'balance_top_up', customer: c.id }, 400, 'currency'],
      [{ purpose: 'balance_top_up', customer: c.id, currency: 'USD', channel: 'balance' }, 400, 'channel'],
      [{ purpose: 'balance_top_up', customer: c.id, currency: 'USD', allow_coupon_code: true }, 400, 'allow_coupon_code'],
      [{ purpose: 'refill', customer: c.id }, 400, 'purpose'],
    ];
    const before = await count('payments');
    for (const [extra, status, param] of cases) {
      const res = await g.api('POST', '/v1/payments', { amount: 100, subject: 'x', out_trade_no: tradeNo('bad'), ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(status);
      expect(res.body.error.param, JSON.stringify(extra)).toBe(param);
    }
    expect(await count('payments')).toBe(before);
  });

  it('confirm with channel balance pays a pending payment of the customer; not a top-up, not without a customer', async () => {
    const c = await newCustomer(g);
    await topUp(g, c.id, 500);
    const p = await g.api('POST', '/v1/payments', { amount: 200, subject: 'Later', out_trade_no: tradeNo('conf'), customer: c.id });
    const paid = await g.api('POST', `/v1/payments/${p.body.id}/confirm`, { channel: 'balance' });
    expect(paid.body).toMatchObject({ status: 'succeeded', channel: 'balance' });
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(300);
    const again = await g.api('POST', `/v1/payments/${p.body.id}/confirm`, { channel: 'balance' });
    expect(again.body.error.code).toBe('payment_unexpected_state');
    const anon = await g.api('POST', '/v1/payments', { amount: 200, subject: 'Anon', out_trade_no: tradeNo('anon') });
    expect((await g.api('POST', `/v1/payments/${anon.body.id}/confirm`, { channel: 'balance' })).body.error.param).toBe('channel');
    const top = await g.api('POST', '/v1/payments', { amount: 200, subject: 'Top', out_trade_no: tradeNo('top'), customer: c.id, purpose: 'balance_top_up' });
    expect((await g.api('POST', `/v1/payments/${top.body.id}/confirm`, { channel: 'balance' })).body.error.param).toBe('channel');
    const big = await g.api('POST', '/v1/payments', { amount: 301, subject: 'Big', out_trade_no: tradeNo('big'), customer: c.id });
    const short = await g.api('POST', `/v1/payments/${big.body.id}/confirm`, { channel: 'balance' });
    expect(short.status).toBe(402);
    expect((await g.api('GET', `/v1/payments/${big.body.id}`)).body.status).toBe('pending');
    expect((await g.api('POST', `/v1/test_helpers/payments/${big.body.id}/simulate`, { channel: 'balance' })).body.error.param).toBe('channel');
    await expectLedgerConsistent(g.deps.db);
  });

  it('refunds of a balance payment credit the balance back in the refund’s transaction, with no channel', async () => {
    const c = await newCustomer(g);
    await topUp(g, c.id, 1000);
    const pay = (await g.api('POST', '/v1/payments', { amount: 600, subject: 'Shoes', out_trade_no: tradeNo('rf'), customer: c.id, channel: 'balance' })).body;
    const part = await g.api('POST', `/v1/payments/${pay.id}/refunds`, { amount: 250, reason: 'size' });
    expect(part.body).toMatchObject({ status: 'succeeded', amount: 250 });
    const rest = await g.api('POST', `/v1/payments/${pay.id}/refunds`, {});
    expect(rest.body).toMatchObject({ status: 'succeeded', amount: 350 });
    expect((await g.api('POST', `/v1/payments/${pay.id}/refunds`, { amount: 1 })).body.error.code).toBe('payment_fully_refunded');
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(1000);
    const ledger = (await g.api('GET', `/v1/customers/${c.id}/balance_transactions`)).body.data;
    expect(ledger.slice(0, 2).map((b: any) => [b.type, b.amount, b.source])).toEqual([['refund', 350, rest.body.id], ['refund', 250, part.body.id]]);
    const events = (await g.api('GET', '/v1/events?type=refund.succeeded&limit=100')).body.data.map((e: any) => e.data.object.id);
    expect(events).toEqual(expect.arrayContaining([part.body.id, rest.body.id]));
    await expectLedgerConsistent(g.deps.db);
  });

  it('a refund of a top-up debits the balance first; one already spent is refused (balance_insufficient), not taken below zero', async () => {
    const c = await newCustomer(g);
    const top = await topUp(g, c.id, 1000);
    await g.api('POST', '/v1/payments', { amount: 700, subject: 'Spent', out_trade_no: tradeNo('spent'), customer: c.id, channel: 'balance' });
    const refused = await g.api('POST', `/v1/payments/${top.id}/refunds`, {});
    expect(refused.status).toBe(402);
    expect(refused.body.error).toMatchObject({ code: 'balance_insufficient', param: 'amount' });
    expect((await g.api('GET', `/v1/payments/${top.id}`)).body.amount_refunded).toBe(0);
    // What is left can be refunded: debited here, then refunded at the channel.
    const ok = await g.api('POST', `/v1/payments/${top.id}/refunds`, { amount: 300 });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(0);
    const entry = (await g.api('GET', `/v1/customers/${c.id}/balance_transactions?limit=1`)).body.data[0];
    expect(entry).toMatchObject({ type: 'refund', amount: -300, balance_after: 0, source: ok.body.id });
    await expectLedgerConsistent(g.deps.db);
  });

  it('manual adjustments: credits and debits with their entry, idempotent by Idempotency-Key; bad amounts refused naming amount', async () => {
    const c = await newCustomer(g);
    const key = { 'idempotency-key': `adj-${c.id}` };
    const first = await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 500, description: 'Goodwill' }, key);
    expect(first.body).toMatchObject({ object: 'balance_transaction', type: 'adjustment', amount: 500, balance_after: 500, source: null, description: 'Goodwill' });
    const replay = await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 500, description: 'Goodwill' }, key);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    expect((await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 501 }, key)).body.error.type).toBe('idempotency_error');
    const before = await count('balance_transactions');
    // Adjustments are credits: the balance is spent by payments, never by an unexplained debit.
    for (const amount of [0, 1.5, -200, -1, '100', null, 1e11]) {
      const res = await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount });
      expect(res.status, String(amount)).toBeGreaterThanOrEqual(400);
      expect(res.status, String(amount)).toBeLessThan(500);
      expect(res.body.error.param, String(amount)).toBe('amount');
    }
    expect((await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, {})).body.error.param).toBe('amount');
    expect(await count('balance_transactions')).toBe(before);
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(500);
  });

  it('a customer with a balance cannot be deleted; at zero it is (soft) deleted and gone from the API', async () => {
    const c = await newCustomer(g, { out_user_id: 'to_delete' });
    await g.api('POST', `/v1/customers/${c.id}/balance_transactions`, { amount: 5 });
    const refused = await g.api('DELETE', `/v1/customers/${c.id}`);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'customer_balance_not_zero', param: 'id' });
    const spent = await g.api('POST', '/v1/payments', { amount: 5, channel: 'balance', customer: c.id, subject: 'Last 5 fen', out_trade_no: `del_${c.id}` });
    expect(spent.body.status).toBe('succeeded');
    expect((await g.api('DELETE', `/v1/customers/${c.id}`)).body).toEqual({ id: c.id, object: 'customer', deleted: true });
    expect((await g.api('GET', `/v1/customers/${c.id}`)).status).toBe(404);
    expect((await g.api('GET', '/v1/customers?limit=100')).body.data.map((x: any) => x.id)).not.toContain(c.id);
    // The row and its ledger stay for the books; the out_user_id is free again.
    expect(await g.deps.db('balance_transactions').where({ customer_id: c.id }).count({ n: '*' })).toEqual([{ n: expect.anything() }]);
    expect((await g.api('POST', '/v1/customers', { out_user_id: 'to_delete' })).status).toBe(200);
  });

  it('the database refuses a negative balance (CHECK constraint), whatever the code does', async () => {
    const c = await newCustomer(g);
    await expect(g.deps.db('customers').where({ id: c.id }).update({ balance: -1 })).rejects.toThrow(/check|constraint/i);
  });
});
