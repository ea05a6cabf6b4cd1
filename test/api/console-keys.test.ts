/**
 * The console's keys page: create a key (its secret shown once, in the answer, never on the page
 * again), roll one with the old key working for the chosen time, revoke (a confirmation, never the
 * mode's last key), and a cross-site form or a missing form token changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { ConsoleClient } from '../support/console.ts';

const PASSWORD = 'a long enough passphrase';
let g: TestGateway;
let app: CreatedApp;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  app = await createApp(g.deps.db, { name: 'Key Roll Shop' });
  await createConsoleUser(g.deps.db, { email: 'owner@keys.example', appId: app.app_id, password: PASSWORD });
});
afterAll(() => g?.close());

async function loggedIn(): Promise<ConsoleClient> {
  const c = new ConsoleClient(g.url);
  expect((await c.login('owner@keys.example', PASSWORD)).status).toBe(303);
  return c;
}
const call = (key: string) => fetch(`${g.url}/v1/payments`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
const keyRow = (html: string, id: string) => new RegExp(`<tr data-key="${id}" data-status="([a-z]+)"`).exec(html)?.[1];
const testKeyId = async () => (await g.deps.db('api_keys').where({ app_id: app.app_id, livemode: false }).whereNull('revoked_at').whereNull('rolled_to').first()).id as string;

describe('console: API keys', () => {
  it('rolls the test key: the new secret is shown once, both keys work for the overlap, the page never shows a secret again', async () => {
    const c = await loggedIn();
    const oldId = await testKeyId();
    const page = await c.get('/console/keys');
    expect(keyRow(page.text, oldId)).toBe('active');
    expect(page.text).toContain('name="expires_in"');
    const token = await c.tokenFrom('/console/keys');
    const res = await c.post(`/console/keys/${oldId}/roll`, { _csrf: token, mode: 'test', expires_in: '3600' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const secret = /<code data-secret>(sk_test_[A-Za-z0-9]+)<\/code>/.exec(res.text)?.[1];
    expect(secret).toBeDefined();
    expect(res.text).toContain('keeps working until');
    expect(keyRow(res.text, oldId)).toBe('expiring');
    expect(await call(app.secret_key)).toBe(200);
    expect(await call(secret!)).toBe(200);
    const again = await c.get('/console/keys');
    expect(again.text).not.toContain(secret!);
    expect(again.text).not.toContain(app.secret_key);
    const row = await g.deps.db('api_keys').where({ id: oldId }).first();
    expect(Number(row.expires_at) - Math.floor(Date.now() / 1000)).toBeGreaterThan(3590);

    // An overlap the page does not offer is refused and changes nothing.
    const newId = await testKeyId();
    const bad = await c.post(`/console/keys/${newId}/roll`, { _csrf: token, mode: 'test', expires_in: '99999999' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('data-error');
    expect(await testKeyId()).toBe(newId);
  });

  it('creates a live key shown once, and revokes only with the confirmation, never the last key of a mode', async () => {
    const c = await loggedIn();
    const token = await c.tokenFrom('/console/keys');
    const created = await c.post('/console/keys/create', { _csrf: token, mode: 'live' });
    expect(created.status).toBe(200);
    const secret = /<code data-secret>(sk_live_[A-Za-z0-9]+)<\/code>/.exec(created.text)![1];
    expect(await call(secret)).toBe(200);
    const liveKeys = await g.deps.db('api_keys').where({ app_id: app.app_id, livemode: true }).orderBy('created');
    expect(liveKeys).toHaveLength(2);
    const original = liveKeys.find((k) => k.key_hint !== secret.slice(0, 12) + '…' + secret.slice(-4))!;

    const unconfirmed = await c.post(`/console/keys/${original.id}/revoke`, { _csrf: token, mode: 'live' });
    expect(unconfirmed.status).toBe(400);
    expect(await call(app.live_secret_key!)).toBe(200);
    const revoked = await c.post(`/console/keys/${original.id}/revoke`, { _csrf: token, mode: 'live', confirm: 'yes' });
    expect(revoked.status).toBe(200);
    expect(keyRow(revoked.text, original.id)).toBe('revoked');
    expect(await call(app.live_secret_key!)).toBe(401);

    const lastId = (await g.deps.db('api_keys').where({ app_id: app.app_id, livemode: true }).whereNull('revoked_at').first()).id;
    const last = await c.post(`/console/keys/${lastId}/revoke`, { _csrf: token, mode: 'live', confirm: 'yes' });
    expect(last.status).toBe(400);
    expect(last.text).toContain('last working live key');
    expect(await call(secret)).toBe(200);
  });

  it('refuses a cross-site form and a missing token; another app\'s key is not found', async () => {
    const c = await loggedIn();
    const id = await testKeyId();
    const token = await c.tokenFrom('/console/keys');
    const before = await g.deps.db('api_keys').where({ app_id: app.app_id }).count({ n: '*' }).then((r) => Number(r[0].n));
    const cross = await c.post(`/console/keys/${id}/roll`, { _csrf: token, mode: 'test', expires_in: '0' }, { origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    const noToken = await c.post('/console/keys/create', { mode: 'test' });
    expect(noToken.status).toBe(403);
    expect(await g.deps.db('api_keys').where({ app_id: app.app_id }).count({ n: '*' }).then((r) => Number(r[0].n))).toBe(before);
    const theirs = (await g.deps.db('api_keys').where({ app_id: g.app.app_id, livemode: false }).first()).id;
    const res = await c.post(`/console/keys/${theirs}/roll`, { _csrf: token, mode: 'test', expires_in: '0' });
    expect(res.status).toBe(404);
    expect(await call(g.app.secret_key)).toBe(200);
  });
});
