/**
 * /v1/api_keys: a secret is shown once (create, roll) and stored hashed; a rolled key keeps
 * working beside its successor for the chosen time and is refused from the second it expires;
 * revoking stops a key, but never the mode's last working key; two rolls of one key make one
 * successor. Every case on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { sha256Hex } from '../../server/crypto.ts';

let g: TestGateway;
let other: CreatedApp;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  other = await createApp(g.deps.db, { name: 'Other Shop' });
});
afterAll(() => g?.close());

/** A call with a given secret key. */
async function withKey(key: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return g.api(method, path, body, { authorization: `Bearer ${key}`, ...headers });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh app whose test key the test may roll and revoke without disturbing the others. */
async function freshApp(): Promise<CreatedApp> {
  return createApp(g.deps.db, { name: 'Keys Shop' });
}

describe('API keys', () => {
  it('lists the mode\'s keys by hint, never a secret or its hash', async () => {
    const app = await freshApp();
    const res = await withKey(app.secret_key, 'GET', '/v1/api_keys');
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(1);
    const k = res.body.data[0];
    expect(k).toMatchObject({ object: 'api_key', livemode: false, status: 'active', expires_at: null, revoked_at: null, rolled_to: null });
    expect(k.hint).toBe(app.secret_key.slice(0, 12) + '…' + app.secret_key.slice(-4));
    const text = JSON.stringify(res.body);
    expect(text).not.toContain(app.secret_key);
    expect(text).not.toContain(sha256Hex(app.secret_key));
    expect(text).not.toContain('sk_live_');
    expect((await withKey(app.secret_key, 'GET', `/v1/api_keys/${k.id}`)).body).toEqual(k);
  });

  it('create shows the new secret once; it works at once; a replay of the same request gives the same key', async () => {
    const app = await freshApp();
    const headers = { 'idempotency-key': 'new-key-1' };
    const a = await withKey(app.secret_key, 'POST', '/v1/api_keys', {}, headers);
    expect(a.status).toBe(200);
    expect(a.body.secret).toMatch(/^sk_test_[A-Za-z0-9]{24,}$/);
    const b = await withKey(app.secret_key, 'POST', '/v1/api_keys', {}, headers);
    expect(b.body.id).toBe(a.body.id);
    expect(await g.deps.db('api_keys').where({ app_id: app.app_id, livemode: false }).count({ n: '*' }).then((r) => Number(r[0].n))).toBe(2);
    expect((await withKey(a.body.secret, 'GET', '/v1/payments')).status).toBe(200);
    const list = await withKey(a.body.secret, 'GET', '/v1/api_keys');
    expect(list.body.data.map((k: any) => k.id)).toContain(a.body.id);
    expect(JSON.stringify(list.body)).not.toContain(a.body.secret);
    // The table holds the hash, and the idempotency record holds the answer sealed.
    expect(JSON.stringify(await g.deps.db('api_keys').where({ id: a.body.id }))).not.toContain(a.body.secret);
    expect(JSON.stringify(await g.deps.db('idempotency_keys').select('response_body'))).not.toContain(a.body.secret);
  });

  it('roll: both keys work for the overlap, then only the new one, from the second the old one expires', async () => {
    const app = await freshApp();
    const [old] = (await withKey(app.secret_key, 'GET', '/v1/api_keys')).body.data;
    const res = await withKey(app.secret_key, 'POST', `/v1/api_keys/${old.id}/roll`, { expires_in: 2 });
    expect(res.status).toBe(200);
    const fresh = res.body;
    expect(fresh.secret).toMatch(/^sk_test_/);
    expect(fresh.secret).not.toBe(app.secret_key);
    const rolled = (await withKey(fresh.secret, 'GET', `/v1/api_keys/${old.id}`)).body;
    expect(rolled).toMatchObject({ status: 'expiring', rolled_to: fresh.id });
    expect(rolled.expires_at - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(2);
    expect((await withKey(app.secret_key, 'GET', '/v1/payments')).status).toBe(200);
    expect((await withKey(fresh.secret, 'GET', '/v1/payments')).status).toBe(200);
    while (Date.now() < rolled.expires_at * 1000) await sleep(50);
    const refused = await withKey(app.secret_key, 'GET', '/v1/payments');
    expect(refused.status).toBe(401);
    expect((await withKey(fresh.secret, 'GET', '/v1/payments')).status).toBe(200);
    expect((await withKey(fresh.secret, 'GET', `/v1/api_keys/${old.id}`)).body.status).toBe('expired');
  });

  it('roll with expires_in 0 (the default) stops the old key now; a key rolled once cannot be rolled again', async () => {
    const app = await freshApp();
    const [old] = (await withKey(app.secret_key, 'GET', '/v1/api_keys')).body.data;
    const res = await withKey(app.secret_key, 'POST', `/v1/api_keys/${old.id}/roll`, {});
    expect(res.status).toBe(200);
    expect((await withKey(app.secret_key, 'GET', '/v1/payments')).status).toBe(401);
    const again = await withKey(res.body.secret, 'POST', `/v1/api_keys/${old.id}/roll`, { expires_in: 60 });
    expect(again.status).toBe(400);
    expect(again.body.error).toMatchObject({ code: 'api_key_not_active', param: 'id' });
  });

  it('two concurrent rolls of one key make one successor', async () => {
    const app = await freshApp();
    const [old] = (await withKey(app.secret_key, 'GET', '/v1/api_keys')).body.data;
    const results = await Promise.all(Array.from({ length: 5 }, () => withKey(app.secret_key, 'POST', `/v1/api_keys/${old.id}/roll`, { expires_in: 600 })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status !== 200).every((r) => r.status === 400 || r.status === 409)).toBe(true);
    const rows = await g.deps.db('api_keys').where({ app_id: app.app_id, livemode: false });
    expect(rows).toHaveLength(2);
  });

  it('revoke stops a key; the mode\'s last working key is refused and keeps working', async () => {
    const app = await freshApp();
    const [first] = (await withKey(app.secret_key, 'GET', '/v1/api_keys')).body.data;
    const last = await withKey(app.secret_key, 'POST', `/v1/api_keys/${first.id}/revoke`);
    expect(last.status).toBe(400);
    expect(last.body.error).toMatchObject({ code: 'last_api_key', param: 'id' });
    expect((await withKey(app.secret_key, 'GET', '/v1/payments')).status).toBe(200);

    const second = (await withKey(app.secret_key, 'POST', '/v1/api_keys', {})).body;
    const res = await withKey(second.secret, 'POST', `/v1/api_keys/${first.id}/revoke`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: first.id, status: 'revoked' });
    expect(res.body.revoked_at).toBeGreaterThan(0);
    // The process that revoked it refuses it at once (other processes' key caches: within 5 s).
    expect((await withKey(app.secret_key, 'GET', '/v1/payments')).status).toBe(401);
    // Two concurrent revocations of the last two keys, each made with the other key: one wins;
    // the other is refused (the last key, or a key revoked a moment before it was used).
    const third = (await withKey(second.secret, 'POST', '/v1/api_keys', {})).body;
    const both = await Promise.all([
      withKey(second.secret, 'POST', `/v1/api_keys/${third.id}/revoke`),
      withKey(third.secret, 'POST', `/v1/api_keys/${second.id}/revoke`),
    ]);
    expect(both.filter((r) => r.status === 200)).toHaveLength(1);
    expect(both.filter((r) => r.status !== 200).map((r) => r.status)).toEqual([expect.toBeOneOf([400, 401])]);
    const usable = await g.deps.db('api_keys').where({ app_id: app.app_id, livemode: false }).whereNull('revoked_at');
    expect(usable).toHaveLength(1);
  });

  it('bad input is a 400 naming the parameter and changes nothing; another app\'s key is not found', async () => {
    const app = await freshApp();
    const [k] = (await withKey(app.secret_key, 'GET', '/v1/api_keys')).body.data;
    for (const [body, param] of [
      [{ expires_in: 604_801 }, 'expires_in'], [{ expires_in: -1 }, 'expires_in'], [{ expires_in: 1.5 }, 'expires_in'],
      [{ expires_in: '3600' }, 'expires_in'], [{ expires_at: 1 }, 'expires_at'],
    ] as const) {
      const res = await withKey(app.secret_key, 'POST', `/v1/api_keys/${k.id}/roll`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.param).toBe(param);
    }
    expect((await withKey(app.secret_key, 'POST', '/v1/api_keys', { livemode: true })).body.error.param).toBe('livemode');
    expect(await g.deps.db('api_keys').where({ app_id: app.app_id })).toHaveLength(2);
    expect((await withKey(app.secret_key, 'GET', `/v1/api_keys/${k.id}`)).body.status).toBe('active');

    const [theirs] = (await withKey(other.secret_key, 'GET', '/v1/api_keys')).body.data;
    for (const [method, path] of [['GET', `/v1/api_keys/${theirs.id}`], ['POST', `/v1/api_keys/${theirs.id}/roll`], ['POST', `/v1/api_keys/${theirs.id}/revoke`]]) {
      const res = await withKey(app.secret_key, method, path, method === 'POST' ? {} : undefined);
      expect(res.status, path).toBe(404);
    }
    // A test key sees only test keys: the live key is another mode's.
    const live = await g.deps.db('api_keys').where({ app_id: app.app_id, livemode: true }).first();
    expect((await withKey(app.secret_key, 'GET', `/v1/api_keys/${live.id}`)).status).toBe(404);
    expect((await withKey(other.secret_key, 'GET', '/v1/payments')).status).toBe(200);
  });
});
