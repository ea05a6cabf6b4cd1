/**
 * The audit log (issue 16): every console change that succeeds is written with its actor and IP
 * (a refused or failed one is not), API changes of keys and webhook endpoints name the calling
 * key, no secret reaches a summary (a rolled key, an endpoint's secret, channel credentials), the
 * page filters and pages, and the CSV streams the filtered rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { recordAudit } from '../../server/audit/repo.ts';
import { ConsoleClient } from '../support/console.ts';

const PASSWORD = 'a long enough passphrase';
let g: TestGateway;
let seq = 0;

async function as(email: string): Promise<ConsoleClient> {
  const c = new ConsoleClient(g.url);
  expect((await c.login(email, PASSWORD)).status).toBe(303);
  return c;
}

const entries = (where: Record<string, unknown>) => g.deps.db('audit_log').where({ app_id: g.app.app_id, ...where }).orderBy('created_ms');

/** Console entries are written once the answer has gone out: wait for them. */
async function waitForEntry(where: Record<string, unknown>, n = 1) {
  for (let i = 0; i < 100; i++) {
    const rows = await entries(where);
    if (rows.length >= n) return rows;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no audit entry ${JSON.stringify(where)}`);
}

async function paid() {
  const p = (await g.api('POST', '/v1/payments', { amount: 1000, subject: 'Audit tea', out_trade_no: `aud_${Date.now()}_${++seq}` })).body;
  expect((await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' })).status).toBe(200);
  return p;
}

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  await createConsoleUser(g.deps.db, { email: 'owner@audit.example', appId: g.app.app_id, password: PASSWORD });
  await createConsoleUser(g.deps.db, { email: 'viewer@audit.example', appId: g.app.app_id, password: PASSWORD, role: 'viewer' });
});
afterAll(() => g?.close());

describe('audit log', () => {
  it('records each console change with its actor, object, summary and IP; refused and failed ones are not recorded', async () => {
    const p = await paid();
    const owner = await as('owner@audit.example');
    const ownerId = (await g.deps.db('console_users').where({ email: 'owner@audit.example' }).first('id')).id;
    const token = await owner.tokenFrom(`/console/payments/${p.id}`);
    expect((await owner.post(`/console/payments/${p.id}/refunds`, { _csrf: token, amount: '2.50', reason: 'chipped cup' })).status).toBe(303);
    const [refund] = await waitForEntry({ action: 'payment.refund' });
    expect(refund).toMatchObject({ actor_type: 'console_user', actor_id: ownerId, actor_email: 'owner@audit.example', object_type: 'payment', object_id: p.id });
    expect(refund.ip).toMatch(/127\.0\.0\.1|::1/);
    expect(Boolean(refund.livemode)).toBe(false);
    expect(JSON.parse(refund.summary)).toEqual({ amount: '2.50', reason: 'chipped cup' });

    // A failed change (too much) and a refused one (a viewer) write nothing.
    expect((await owner.post(`/console/payments/${p.id}/refunds`, { _csrf: token, amount: '99.00' })).status).toBe(400);
    const viewer = await as('viewer@audit.example');
    expect((await viewer.post(`/console/payments/${p.id}/refunds`, { _csrf: await viewer.tokenFrom('/console/payments'), amount: '1.00' })).status).toBe(403);
    expect((await owner.post('/console/webhooks', { _csrf: token, url: 'https://shop.example/hooks?token=abc123', events: ['payment.succeeded'] })).status).toBe(201);
    await waitForEntry({ action: 'webhook_endpoint.create' });
    expect((await entries({ action: 'payment.refund' })).length).toBe(1);
    const [hook] = await entries({ action: 'webhook_endpoint.create' });
    // The URL's query (a token) is not logged.
    expect(JSON.parse(hook.summary)).toEqual({ url: 'https://shop.example/hooks', events: 'payment.succeeded' });

    // Session-only posts (mode switch) are not changes.
    await owner.post('/console/mode', { _csrf: token, mode: 'live' });
    await owner.post('/console/mode', { _csrf: token, mode: 'test' });

    // The team: an invitation, with its details but not its token.
    const inv = await owner.post('/console/team/invitations', { _csrf: token, email: 'new@audit.example', role: 'developer' });
    expect(inv.status).toBe(200);
    const link = /value="(http[^"]+\/invitations\/([^"]+))"/.exec(inv.text)!;
    const [invited] = await waitForEntry({ action: 'team.invite' });
    expect(invited.object_type).toBe('invitation');
    expect(JSON.parse(invited.summary)).toMatchObject({ email: 'new@audit.example', role: 'developer' });
    expect(invited.summary).not.toContain(link[2]);
    expect(invited.livemode).toBeNull();

    const page = await owner.get('/console/audit');
    expect(page.status).toBe(200);
    expect(page.text).toContain('href="/console/audit" aria-current="page"');
    for (const action of ['payment.refund', 'webhook_endpoint.create', 'team.invite']) expect(page.text).toContain(`data-action="${action}"`);
    expect(page.text).not.toContain('data-action="console.change"');
  });

  it('never logs a secret: a rolled key, an endpoint\'s secret, channel credentials, a password', async () => {
    const owner = await as('owner@audit.example');
    const token = await owner.tokenFrom('/console/keys');
    const keyId = (await g.deps.db('api_keys').where({ app_id: g.app.app_id, livemode: false }).whereNull('revoked_at').first('id')).id;
    const rolled = await owner.post(`/console/keys/${keyId}/roll`, { _csrf: token, mode: 'test', expires_in: '3600' });
    expect(rolled.status, /data-error>([^<]*)/.exec(rolled.text)?.[1]).toBe(200);
    const secret = /data-secret>([^<]+)</.exec(rolled.text)![1];
    expect(secret).toMatch(/^sk_test_/);
    const [roll] = await waitForEntry({ action: 'api_key.roll' });
    expect(roll).toMatchObject({ object_type: 'api_key', object_id: keyId });
    expect(JSON.parse(roll.summary)).toEqual({ mode: 'test', expires_in: '3600' });

    // Through the API with the new key: the entry names that key.
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(g.url + path, { method, headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
      return { status: res.status, body: (await res.json()) as any };
    };
    const newKeyId = (await g.deps.db('api_keys').where({ app_id: g.app.app_id, livemode: false }).whereNull('revoked_at').whereNull('expires_at').first('id')).id;
    const endpoint = await api('POST', '/v1/webhook_endpoints', { url: 'https://shop.example/api-hook?key=xyz789' });
    expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(200);
    const rotated = await api('POST', `/v1/webhook_endpoints/${endpoint.body.id}/rotate_secret`, { expires_in: 0 });
    expect(rotated.body.secret).toMatch(/^whsec_/);
    const created = await api('POST', '/v1/api_keys', {});
    expect(created.body.secret).toMatch(/^sk_test_/);
    const apiEntries = await entries({ actor_type: 'api_key' });
    expect(apiEntries.map((e) => e.action)).toEqual(['webhook_endpoint.create', 'webhook_endpoint.rotate_secret', 'api_key.create']);
    for (const e of apiEntries) expect(e.actor_id).toBe(newKeyId);
    expect(JSON.parse(apiEntries[0].summary).url).toBe('https://shop.example/api-hook');

    // Channel credentials from the console: the provider and mode, nothing of the config.
    const cfg = { app_id: '2021000000000000', private_key: '-----BEGIN PRIVATE KEY-----\nMIIEvQ-not-a-real-key\n-----END PRIVATE KEY-----' };
    await owner.post('/console/channels', { _csrf: token, provider: 'alipay', mode: 'test', config: JSON.stringify(cfg) });

    const all = JSON.stringify(await entries({}));
    for (const s of [secret, endpoint.body.secret, rotated.body.secret, created.body.secret, 'BEGIN PRIVATE KEY', 'MIIEvQ', PASSWORD, 'xyz789', 'abc123']) {
      expect(all).not.toContain(s);
    }
  });

  it('filters by actor, action and date, pages, and exports the filtered rows as a streamed CSV', async () => {
    // 60 entries by the CLI yesterday (Beijing time), plus what the tests above made today.
    const yesterday = Date.now() - 86_400_000;
    for (let i = 0; i < 60; i++) {
      await recordAudit(g.deps.db, { appId: g.app.app_id, livemode: false, actor: { type: 'cli' }, action: 'api_key.revoke', object: { type: 'api_key', id: `key_bulk${i}` }, summary: { n: i, note: i === 0 ? '=cmd()' : 'ok' } }, yesterday + i);
    }
    const owner = await as('owner@audit.example');
    const first = await owner.get('/console/audit?action=api_key.revoke');
    expect((first.text.match(/data-audit-entry=/g) ?? []).length).toBe(50);
    const older = /href="(\?[^"]*before=aud_[^"]+)"/.exec(first.text)![1].replace(/&amp;/g, '&');
    const second = await owner.get(`/console/audit${older}`);
    expect((second.text.match(/data-audit-entry=/g) ?? []).length).toBe(10);
    expect(second.text).toContain('key_bulk0');

    const byActor = await owner.get('/console/audit?actor=owner%40audit.example');
    expect(byActor.text).toContain('data-action="payment.refund"');
    expect(byActor.text).not.toContain('data-action="api_key.revoke"');
    const bj = (ms: number) => new Date(ms + 8 * 3600_000).toISOString().slice(0, 10);
    const today = await owner.get(`/console/audit?from=${bj(Date.now())}&to=${bj(Date.now())}`);
    expect(today.text).not.toContain('key_bulk');

    const res = await fetch(`${g.url}/console/audit/export.csv?action=api_key.revoke`, { headers: { cookie: [...owner.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-length')).toBeNull();
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const lines = (await res.text()).replace(/^\uFEFF/, '').trim().split('\r\n');
    expect(lines[0]).toBe('time_utc,id,livemode,actor_type,actor_id,actor_email,action,object_type,object_id,summary,ip');
    expect(lines.length).toBe(61);
    expect(lines[1]).toContain('key_bulk59');
    expect(lines[60]).toContain('key_bulk0');
    expect(lines.slice(1).every((l) => l.includes(',api_key.revoke,'))).toBe(true);
    // The batch size (500) does not cut rows: a small batch gives the same lines.
    const { auditCsv } = await import('../../server/audit/csv.ts');
    let small = '';
    for await (const chunk of auditCsv(g.deps.db, g.app.app_id, { action: 'api_key.revoke' }, 7)) small += chunk;
    expect(small.replace(/^\uFEFF/, '').trim().split('\r\n')).toEqual(lines);
    // Another app's session cannot read this log: anonymous is sent to the login.
    expect((await new ConsoleClient(g.url).get('/console/audit/export.csv')).status).toBe(303);
  });
});
