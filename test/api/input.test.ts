import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';

// Input the gateway must refuse before it reaches a service or the database, on every /v1 route:
// bodies that are not JSON, unknown parameters, text PostgreSQL cannot store (NUL, lone UTF-16
// surrogates), prototype keys in objects, values longer than their column. Each refusal is a
// 4xx naming the parameter, and the database is exactly as it was.

let g: TestGateway;
let seq = 0;
const order = () => `in_${Date.now()}_${++seq}`;
const fx = { pending: '', paid: '', endpoint: '', event: '' };

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  fx.pending = (await g.api('POST', '/v1/payments', { amount: 500, subject: 'Pending', out_trade_no: order(), metadata: { cart: '1' } })).body.id;
  const paid = (await g.api('POST', '/v1/payments', { amount: 500, subject: 'Paid', out_trade_no: order() })).body.id;
  const sim = await g.api('POST', `/v1/test_helpers/payments/${paid}/simulate`, { channel: 'alipay_pc' });
  expect(sim.body.status).toBe('succeeded');
  fx.paid = paid;
  const we = await g.api('POST', '/v1/webhook_endpoints', { url: 'https://shop.example/hooks' });
  expect(we.status).toBe(200);
  fx.endpoint = we.body.id;
  // A second endpoint: a resend that lost its webhook_endpoint would reach both.
  expect((await g.api('POST', '/v1/webhook_endpoints', { url: 'https://other.example/hooks' })).status).toBe(200);
  fx.event = (await g.api('GET', '/v1/events?type=payment.succeeded')).body.data[0].id;
});
afterAll(async () => {
  await g?.close();
});

/** Every row a /v1 POST could write, so "nothing changed" means nothing at all. */
async function snapshot() {
  const db = g.deps.db;
  const tables = ['payments', 'payment_attempts', 'refunds', 'events', 'webhook_endpoints', 'webhook_deliveries', 'idempotency_keys'];
  const out: Record<string, unknown[]> = {};
  for (const t of tables) out[t] = await db(t).select('*').orderBy(t === 'idempotency_keys' ? 'key' : 'id');
  return out;
}

interface Route {
  name: string;
  path: () => string;
  /** A body this route accepts (sent once, at the end, to show the refusals were not for another reason). */
  valid: () => Record<string, unknown>;
  /** Its string parameters and a valid value of each. */
  strings: Record<string, string>;
  /** Values longer than the column (or the channel) allows, with the param the error names. */
  tooLong: Array<[Record<string, unknown>, string]>;
}

const longZone = `fe80::1%${'eth'.repeat(30)}`;
const routes: Route[] = [
  {
    name: 'POST /v1/payments',
    path: () => '/v1/payments',
    valid: () => ({ amount: 100, subject: 'Tea', out_trade_no: order() }),
    strings: { subject: 'Tea', description: 'Green tea', currency: 'CNY', channel: 'alipay_pc', return_url: 'https://shop.example/done', client_ip: '203.0.113.9', out_trade_no: 'o_1' },
    tooLong: [
      [{ subject: 'x'.repeat(128) }, 'subject'],
      [{ description: 'x'.repeat(1001) }, 'description'],
      [{ out_trade_no: 'x'.repeat(65) }, 'out_trade_no'],
      [{ return_url: `https://shop.example/${'x'.repeat(2048)}` }, 'return_url'],
      [{ client_ip: longZone }, 'client_ip'],
      [{ client_ip: 'fe80::1%eth0' }, 'client_ip'],
      [{ metadata: { ['k'.repeat(41)]: 'v' } }, 'metadata'],
      [{ metadata: { k: 'v'.repeat(501) } }, 'metadata[k]'],
      [{ metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])) }, 'metadata'],
    ],
  },
  { name: 'POST /v1/payments/:id/close', path: () => `/v1/payments/${fx.pending}/close`, valid: () => ({}), strings: {}, tooLong: [] },
  {
    name: 'POST /v1/payments/:id/refunds',
    path: () => `/v1/payments/${fx.paid}/refunds`,
    valid: () => ({ amount: 1 }),
    strings: { reason: 'damaged', out_refund_no: 'r_1' },
    tooLong: [
      [{ reason: 'x'.repeat(257) }, 'reason'],
      [{ out_refund_no: 'x'.repeat(65) }, 'out_refund_no'],
    ],
  },
  {
    name: 'POST /v1/test_helpers/payments/:id/simulate',
    path: () => `/v1/test_helpers/payments/${fx.pending}/simulate`,
    valid: () => ({ channel: 'alipay_qr', outcome: 'fail' }),
    strings: { channel: 'alipay_qr', outcome: 'fail', notify: 'normal' },
    tooLong: [[{ channel: 'alipay_qr', notify: 'delay:999999' }, 'notify']],
  },
  {
    name: 'POST /v1/webhook_endpoints',
    path: () => '/v1/webhook_endpoints',
    valid: () => ({ url: 'https://third.example/hooks' }),
    strings: { url: 'https://third.example/hooks' },
    tooLong: [[{ url: `https://shop.example/${'x'.repeat(2048)}` }, 'url']],
  },
  {
    name: 'POST /v1/webhook_endpoints/:id',
    path: () => `/v1/webhook_endpoints/${fx.endpoint}`,
    valid: () => ({ status: 'disabled' }),
    strings: { url: 'https://shop.example/new', status: 'disabled' },
    tooLong: [[{ url: `https://shop.example/${'x'.repeat(2048)}` }, 'url']],
  },
  { name: 'POST /v1/webhook_endpoints/:id/rotate_secret', path: () => `/v1/webhook_endpoints/${fx.endpoint}/rotate_secret`, valid: () => ({ expires_in: 0 }), strings: {}, tooLong: [] },
  { name: 'POST /v1/webhook_endpoints/:id/test', path: () => `/v1/webhook_endpoints/${fx.endpoint}/test`, valid: () => ({}), strings: {}, tooLong: [] },
  {
    name: 'POST /v1/events/:id/resend',
    path: () => `/v1/events/${fx.event}/resend`,
    valid: () => ({ webhook_endpoint: fx.endpoint }),
    strings: { webhook_endpoint: 'we_x' },
    tooLong: [[{ webhook_endpoint: `we_${'x'.repeat(100)}` }, 'webhook_endpoint']],
  },
];

/** Sends a raw body, asserts the refusal and that the database did not move. */
async function expectRefused(path: string, body: string, want: { status?: number; param: string; code?: string }, headers: Record<string, string> = {}) {
  const before = await snapshot();
  const res = await g.api('POST', path, body, headers);
  expect(res.status, JSON.stringify(res.body)).toBe(want.status ?? 400);
  expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param: want.param, ...(want.code ? { code: want.code } : {}) });
  expect(res.body.error.message).toEqual(expect.any(String));
  expect(await snapshot()).toEqual(before);
  return res;
}

const json = (v: unknown) => JSON.stringify(v);
/** The object's JSON with one more member written as raw text (JSON.stringify cannot write an own "__proto__"). */
const withRaw = (v: Record<string, unknown>, member: string) => json(v).replace(/}$/, `${Object.keys(v).length ? ',' : ''}${member}}`);
const form = (v: Record<string, unknown>) => new URLSearchParams(Object.entries(v).map(([k, x]) => [k, String(x)])).toString();

for (const route of routes) {
  describe(route.name, () => {
    it('refuses a form-encoded body naming Content-Type', async () => {
      await expectRefused(route.path(), form({ ...route.valid(), expires_in: 0, status: 'disabled' }), { status: 415, param: 'Content-Type' }, { 'content-type': 'application/x-www-form-urlencoded' });
    });

    it('refuses a text/plain body and a body without Content-Type', async () => {
      await expectRefused(route.path(), json(route.valid()), { status: 415, param: 'Content-Type' }, { 'content-type': 'text/plain' });
      const before = await snapshot();
      const res = await fetch(g.url + route.path(), { method: 'POST', headers: { authorization: `Bearer ${g.app.secret_key}` }, body: new Blob([json(route.valid())]) });
      expect(res.status).toBe(415);
      expect(((await res.json()) as any).error.param).toBe('Content-Type');
      expect(await snapshot()).toEqual(before);
    });

    it('refuses a JSON body that is not an object', async () => {
      for (const body of ['[]', '"x"', '1', 'null']) {
        const before = await snapshot();
        const res = await g.api('POST', route.path(), body);
        expect(res.status, body).toBe(400);
        expect(res.body.error.type).toBe('invalid_request_error');
        expect(await snapshot()).toEqual(before);
      }
    });

    it('refuses an unknown parameter naming it', async () => {
      await expectRefused(route.path(), json({ ...route.valid(), foo: 1 }), { param: 'foo', code: 'parameter_unknown' });
    });

    it('refuses a parameter in the query string naming it', async () => {
      await expectRefused(`${route.path()}?foo=1`, json(route.valid()), { param: 'foo', code: 'parameter_unknown' });
    });

    it('refuses a top-level __proto__, constructor or prototype', async () => {
      for (const key of ['__proto__', 'constructor', 'prototype']) {
        await expectRefused(route.path(), withRaw(route.valid(), `"${key}":{"amount":1}`), { param: key });
      }
    });

    for (const [field, good] of Object.entries(route.strings)) {
      it(`refuses a NUL character in ${field}`, async () => {
        await expectRefused(route.path(), json({ ...route.valid(), [field]: `${good}\u0000x` }), { param: field });
      });
      it(`refuses a lone surrogate in ${field}`, async () => {
        await expectRefused(route.path(), json({ ...route.valid(), [field]: `${good}\ud800` }), { param: field });
        await expectRefused(route.path(), withRaw(route.valid(), `"${field}":"${good}\\udc00x"`), { param: field });
      });
    }

    for (const [patch, param] of route.tooLong) {
      it(`refuses an over-long ${param} (${JSON.stringify(patch).length} characters of JSON)`, async () => {
        await expectRefused(route.path(), json({ ...route.valid(), ...patch }), { param });
      });
    }

    it('refuses a parameter name holding a NUL or a lone surrogate', async () => {
      await expectRefused(route.path(), json({ ...route.valid(), 'a\u0000b': 'x' }), { param: 'a\u0000b' });
      await expectRefused(route.path(), json({ ...route.valid(), 'a\ud800': 'x' }), { param: 'a\ud800' });
    });

    it('refuses a deeply nested value without falling over', async () => {
      const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
      await expectRefused(route.path(), withRaw(route.valid(), `"foo":${deep}`), { param: 'foo' }, { 'idempotency-key': `deep_${order()}` });
    });
  });
}

describe('object-valued parameters', () => {
  // The only object-valued parameter is metadata; enabled_events is the only array.
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    it(`refuses metadata with a "${key}" key naming metadata`, async () => {
      const body = withRaw({ amount: 100, subject: 'Tea', out_trade_no: order() }, `"metadata":{"a":"1","${key}":{"x":"y"}}`);
      const res = await expectRefused('/v1/payments', body, { param: 'metadata' });
      expect(res.body.error.message).toContain(key);
    });
  }

  it('refuses a NUL or a lone surrogate in a metadata key or value', async () => {
    const valid = () => ({ amount: 100, subject: 'Tea', out_trade_no: order() });
    await expectRefused('/v1/payments', json({ ...valid(), metadata: { a: 'x\u0000y' } }), { param: 'metadata[a]' });
    await expectRefused('/v1/payments', json({ ...valid(), metadata: { a: 'x\udfffy' } }), { param: 'metadata[a]' });
    await expectRefused('/v1/payments', json({ ...valid(), metadata: { 'x\u0000y': 'a' } }), { param: 'metadata' });
    await expectRefused('/v1/payments', json({ ...valid(), metadata: { 'x\ud800': 'a' } }), { param: 'metadata' });
  });

  it('refuses a NUL in an enabled_events entry naming it', async () => {
    await expectRefused('/v1/webhook_endpoints', json({ url: 'https://x.example/h', enabled_events: ['payment.succeeded', 'refund.succeeded\u0000'] }), { param: 'enabled_events[1]' });
    await expectRefused(`/v1/webhook_endpoints/${fx.endpoint}`, json({ enabled_events: ['payment.succeeded\ud800'] }), { param: 'enabled_events[0]' });
  });

  it('refuses a body that is not UTF-8 (a surrogate encoded as bytes, Latin-1) rather than storing U+FFFD', async () => {
    for (const bytes of [[0xed, 0xa0, 0x80], [0xe9], [0xc0, 0x80]]) {
      const before = await snapshot();
      const head = Buffer.from(`{"amount":100,"out_trade_no":"${order()}","subject":"Tea `);
      const res = await fetch(`${g.url}/v1/payments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${g.app.secret_key}`, 'content-type': 'application/json' },
        body: Buffer.concat([head, Buffer.from(bytes), Buffer.from('"}')]),
      });
      expect(res.status, String(bytes)).toBe(400);
      expect(((await res.json()) as any).error.type).toBe('invalid_request_error');
      expect(await snapshot()).toEqual(before);
    }
  });

  it('keeps a well-formed astral character (a surrogate pair) intact', async () => {
    const res = await g.api('POST', '/v1/payments', { amount: 100, subject: 'Tea 🍵', out_trade_no: order(), metadata: { note: '🍵' } });
    expect(res.status).toBe(200);
    expect((await g.api('GET', `/v1/payments/${res.body.id}`)).body).toMatchObject({ subject: 'Tea 🍵', metadata: { note: '🍵' } });
  });
});

describe('query strings and URLs', () => {
  const gets = () => [
    '/v1/payments',
    `/v1/payments/${fx.pending}`,
    `/v1/refunds/re_x`,
    '/v1/webhook_endpoints',
    `/v1/webhook_endpoints/${fx.endpoint}`,
    `/v1/webhook_endpoints/${fx.endpoint}/deliveries`,
    '/v1/events',
    `/v1/events/${fx.event}`,
    `/v1/events/${fx.event}/deliveries`,
  ];

  it('refuses an unknown query parameter on every GET', async () => {
    for (const path of gets()) {
      const res = await g.api('GET', `${path}?foo=1`);
      expect(res.status, path).toBe(400);
      expect(res.body.error, path).toMatchObject({ code: 'parameter_unknown', param: 'foo' });
    }
  });

  it('refuses a NUL in a query value naming it', async () => {
    for (const [path, param] of [
      ['/v1/payments?out_trade_no=a%00b', 'out_trade_no'],
      ['/v1/payments?starting_after=pay_%00', 'starting_after'],
      ['/v1/webhook_endpoints?ending_before=we_%00', 'ending_before'],
      [`/v1/events/${fx.event}/deliveries?starting_after=wd_%00`, 'starting_after'],
    ]) {
      const res = await g.api('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.body.error, path).toMatchObject({ type: 'invalid_request_error', param });
    }
  });

  it('reads created filters as timestamps, not as whatever Number() makes of them', async () => {
    for (const [path, param] of [
      ['/v1/payments?created[gte]=', 'created[gte]'],
      ['/v1/payments?created[lte]=0x10', 'created[lte]'],
      ['/v1/payments?created[gte]=1e3', 'created[gte]'],
      ['/v1/events?created[gte]=', 'created[gte]'],
    ]) {
      const res = await g.api('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.body.error, path).toMatchObject({ code: 'parameter_invalid', param });
    }
    expect((await g.api('GET', '/v1/payments?created[gte]=1')).status).toBe(200);
  });

  it('answers an id with a NUL or broken percent-encoding as a 4xx naming id', async () => {
    for (const id of ['pay_a%00b', 'pay_%E0%A4%A', 'pay_%ED%A0%80']) {
      for (const [method, path] of [['GET', `/v1/payments/${id}`], ['POST', `/v1/payments/${id}/close`], ['GET', `/v1/events/${id}`], ['POST', `/v1/webhook_endpoints/${id}`], ['DELETE', `/v1/webhook_endpoints/${id}`]]) {
        const before = await snapshot();
        const res = await g.api(method, path, method === 'POST' ? {} : undefined);
        expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${method} ${path}`).toBeLessThan(500);
        expect(res.body.error, `${method} ${path}`).toMatchObject({ param: 'id' });
        expect(await snapshot()).toEqual(before);
      }
    }
  });

  it('refuses parameters on DELETE, in the body or the query', async () => {
    const before = await snapshot();
    const withBody = await g.api('DELETE', `/v1/webhook_endpoints/${fx.endpoint}`, { foo: 1 });
    expect(withBody.status).toBe(400);
    expect(withBody.body.error).toMatchObject({ code: 'parameter_unknown', param: 'foo' });
    const withQuery = await g.api('DELETE', `/v1/webhook_endpoints/${fx.endpoint}?foo=1`);
    expect(withQuery.body.error).toMatchObject({ code: 'parameter_unknown', param: 'foo' });
    const form = await g.api('DELETE', `/v1/webhook_endpoints/${fx.endpoint}`, 'foo=1', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    expect(await snapshot()).toEqual(before);
  });
});

describe('the valid bodies', () => {
  // Last, since they change state: each route does accept the body the refusals above were built on.
  const inOrder = ['POST /v1/payments', 'POST /v1/payments/:id/refunds', 'POST /v1/test_helpers/payments/:id/simulate', 'POST /v1/webhook_endpoints',
    'POST /v1/events/:id/resend', 'POST /v1/webhook_endpoints/:id/test', 'POST /v1/webhook_endpoints/:id/rotate_secret', 'POST /v1/webhook_endpoints/:id', 'POST /v1/payments/:id/close'];
  it('lists every route', () => {
    expect([...inOrder].sort()).toEqual(routes.map((r) => r.name).sort());
  });
  for (const name of inOrder) {
    it(`${name} accepts its valid body`, async () => {
      const route = routes.find((r) => r.name === name)!;
      const res = await g.api('POST', route.path(), route.valid());
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    });
  }
  it('accepts an empty body (no Content-Type) where no parameter is required', async () => {
    const p = (await g.api('POST', '/v1/payments', { amount: 100, subject: 'Tea', out_trade_no: order() })).body;
    const res = await fetch(`${g.url}/v1/payments/${p.id}/close`, { method: 'POST', headers: { authorization: `Bearer ${g.app.secret_key}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).status).toBe('closed');
  });
});
