import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';

let g: TestGateway;
let seq = 0;
const order = () => `order_${Date.now()}_${++seq}`;
const valid = (extra: Record<string, unknown> = {}) => ({ amount: 100, subject: 'Tea', out_trade_no: order(), ...extra });

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(async () => {
  await g?.close();
});

async function paymentCount(): Promise<number> {
  const r = await g.deps.db('payments').count<{ n: number }[]>({ n: '*' });
  return Number(r[0].n);
}

describe('POST /v1/payments', () => {
  it('creates a payment with the DESIGN fields and a checkout URL', async () => {
    const res = await g.api('POST', '/v1/payments', valid({ metadata: { cart: '42' }, return_url: 'https://shop.example/done', expires_in: 600 }));
    expect(res.status).toBe(200);
    const p = res.body;
    expect(p.id).toMatch(/^pay_[A-Za-z0-9]{24}$/);
    expect(p).toMatchObject({ object: 'payment', livemode: false, app_id: g.app.app_id, amount: 100, currency: 'CNY', subject: 'Tea', status: 'pending', amount_refunded: 0, channel: null, metadata: { cart: '42' }, next_action: null, last_attempt_error: null });
    expect(p.expires_at - p.created).toBe(600);
    expect(p.checkout_url).toMatch(new RegExp(`^${g.url}/pay/[A-Za-z0-9]{32}$`));
    const again = await g.api('GET', `/v1/payments/${p.id}`);
    expect(again.body).toEqual(p);
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['zero amount', { amount: 0 }, 'amount'],
    ['negative amount', { amount: -1 }, 'amount'],
    ['fractional amount', { amount: 1.5 }, 'amount'],
    ['string amount', { amount: '100' }, 'amount'],
    ['huge amount', { amount: 10 ** 13 }, 'amount'],
    ['unknown currency', { currency: 'XYZ' }, 'currency'],
    ['empty subject', { subject: '' }, 'subject'],
    ['300-character subject', { subject: 'x'.repeat(300) }, 'subject'],
    ['out_trade_no with spaces', { out_trade_no: 'has space' }, 'out_trade_no'],
    ['65-character out_trade_no', { out_trade_no: 'a'.repeat(65) }, 'out_trade_no'],
    ['metadata with a number', { metadata: { n: 1 } }, 'metadata[n]'],
    ['unknown channel', { channel: 'bitcoin' }, 'channel'],
    ['bad return_url', { return_url: 'javascript:alert(1)' }, 'return_url'],
    ['bad client_ip', { client_ip: '999.1.1.1' }, 'client_ip'],
    ['unknown parameter', { colour: 'red' }, 'colour'],
  ];
  for (const [name, patch, param] of bad) {
    it(`refuses ${name} with a 400 naming ${param}, storing nothing`, async () => {
      const before = await paymentCount();
      const res = await g.api('POST', '/v1/payments', { ...valid(), ...patch });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param });
      expect(res.body.error.message).toEqual(expect.any(String));
      expect(res.body.error.request_id).toMatch(/^req_/);
      expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/);
      expect(await paymentCount()).toBe(before);
    });
  }

  it('refuses a missing amount naming it', async () => {
    const { amount: _a, ...rest } = valid();
    const res = await g.api('POST', '/v1/payments', rest);
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe('amount');
  });

  it('refuses an out_trade_no already used by the app', async () => {
    const body = valid();
    expect((await g.api('POST', '/v1/payments', body)).status).toBe(200);
    const before = await paymentCount();
    const res = await g.api('POST', '/v1/payments', { ...body, amount: 200 });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'out_trade_no_taken', param: 'out_trade_no' });
    expect(await paymentCount()).toBe(before);
  });

  it('refuses malformed JSON and a 2 MB body with 4xx error objects', async () => {
    const bad = await g.api('POST', '/v1/payments', '{"amount": 1,');
    expect(bad.status).toBe(400);
    expect(bad.body.error.type).toBe('invalid_request_error');
    const big = await g.api('POST', '/v1/payments', JSON.stringify({ ...valid(), description: 'x'.repeat(2 * 1024 * 1024) }));
    expect(big.status).toBe(413);
    expect(big.body.error.type).toBe('invalid_request_error');
  });

  it('refuses JSON in another charset naming Content-Type', async () => {
    const res = await g.api('POST', '/v1/payments', JSON.stringify(valid()), { 'content-type': 'application/json; charset=latin1' });
    expect(res.status).toBe(415);
    expect(res.body.error.param).toBe('Content-Type');
  });

  it('refuses form-encoded bodies naming Content-Type', async () => {
    const res = await g.api('POST', '/v1/payments', 'amount=100', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(res.status).toBe(415);
    expect(res.body.error.param).toBe('Content-Type');
  });
});

describe('authentication', () => {
  it('answers 401 for a missing, malformed, unknown or wrong-mode key', async () => {
    for (const auth of [undefined, 'Basic abc', 'Bearer sk_test_short', 'Bearer sk_test_' + 'A'.repeat(32), `Bearer ${g.app.secret_key.replace('sk_test_', 'sk_live_')}`]) {
      const res = await fetch(`${g.url}/v1/payments`, { headers: auth ? { authorization: auth } : {} });
      expect(res.status).toBe(401);
      const body = await res.json();
      expect(body.error.type).toBe('authentication_error');
    }
  });

  it('keeps apps and modes apart', async () => {
    const p = (await g.api('POST', '/v1/payments', valid())).body;
    const live = await fetch(`${g.url}/v1/payments/${p.id}`, { headers: { authorization: `Bearer ${g.app.live_secret_key}` } });
    expect(live.status).toBe(404);
    const { createApp } = await import('../../server/apps/service.ts');
    const other = await createApp(g.deps.db, { name: 'Other' });
    const res = await fetch(`${g.url}/v1/payments/${p.id}`, { headers: { authorization: `Bearer ${other.secret_key}` } });
    expect(res.status).toBe(404);
    expect((await res.json()).error.param).toBe('id');
  });

  it('stores API keys only as hashes', async () => {
    const rows = await g.deps.db('api_keys').select('key_hash', 'key_hint');
    for (const r of rows) {
      expect(r.key_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(r.key_hint).not.toContain(g.app.secret_key);
    }
  });
});

describe('GET /v1/payments', () => {
  it('pages with a cursor and filters', async () => {
    const mine: string[] = [];
    const tag = `page_${Date.now()}`;
    for (let i = 0; i < 5; i++) mine.push((await g.api('POST', '/v1/payments', valid({ out_trade_no: `${tag}_${i}` }))).body.id);
    const first = await g.api('GET', '/v1/payments?limit=2');
    expect(first.body).toMatchObject({ object: 'list', has_more: true });
    expect(first.body.data).toHaveLength(2);
    const seen = [...first.body.data.map((p: any) => p.id)];
    let cursor = seen[seen.length - 1];
    for (;;) {
      const page = await g.api('GET', `/v1/payments?limit=2&starting_after=${cursor}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((p: any) => p.id));
      if (!page.body.has_more) break;
      cursor = seen[seen.length - 1];
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of mine) expect(seen).toContain(id);
    const byNo = await g.api('GET', `/v1/payments?out_trade_no=${tag}_3`);
    expect(byNo.body.data.map((p: any) => p.id)).toEqual([mine[3]]);
    expect((await g.api('GET', '/v1/payments?limit=101')).body.error.param).toBe('limit');
    expect((await g.api('GET', '/v1/payments?status=paid')).body.error.param).toBe('status');
    expect((await g.api('GET', '/v1/payments?starting_after=pay_nope')).body.error.param).toBe('starting_after');
  });
});

describe('Idempotency-Key', () => {
  it('replays the first response, refuses other parameters, and creates once', async () => {
    const key = `idem_${Date.now()}`;
    const body = valid();
    const a = await g.api('POST', '/v1/payments', body, { 'idempotency-key': key });
    const b = await g.api('POST', '/v1/payments', body, { 'idempotency-key': key });
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.body).toEqual(a.body);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    const c = await g.api('POST', '/v1/payments', { ...body, amount: 999 }, { 'idempotency-key': key });
    expect(c.status).toBe(400);
    expect(c.body.error.type).toBe('idempotency_error');
    const rows = await g.deps.db('payments').where({ out_trade_no: body.out_trade_no });
    expect(rows).toHaveLength(1);
  });

  it('answers concurrent duplicates with one success and 409s, never two payments', async () => {
    const key = `race_${Date.now()}`;
    const body = valid();
    const results = await Promise.all(Array.from({ length: 8 }, () => g.api('POST', '/v1/payments', body, { 'idempotency-key': key })));
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    expect(statuses).toContain(200);
    const ok = results.filter((r) => r.status === 200).map((r) => r.body.id);
    expect(new Set(ok).size).toBe(1);
    for (const r of results.filter((x) => x.status === 409)) expect(r.body.error.type).toBe('idempotency_error');
    expect(await g.deps.db('payments').where({ out_trade_no: body.out_trade_no })).toHaveLength(1);
  });

  it('stores a 400 result too, so a retried bad request gets the same answer', async () => {
    const key = `bad_${Date.now()}`;
    const body = { amount: 0, subject: 'x', out_trade_no: order() };
    const a = await g.api('POST', '/v1/payments', body, { 'idempotency-key': key });
    const b = await g.api('POST', '/v1/payments', body, { 'idempotency-key': key });
    expect(a.status).toBe(400);
    expect(b.status).toBe(400);
    expect(b.body).toEqual(a.body);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
  });
});
