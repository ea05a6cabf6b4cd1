/**
 * Console roles and the team (issue 16): a viewer cannot refund (403 naming the role, no refund
 * row), a developer does not see a live customer's name and email, an admin cannot manage the
 * team and an owner can; invitations are one-time links (hash stored, expired or used refused)
 * that add a membership, an existing user who joins a second app switches between the two and
 * sees each app's data only; the last owner cannot be demoted or removed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { sha256Hex } from '../../server/crypto.ts';
import { ConsoleClient } from '../support/console.ts';

const PASSWORD = 'a long enough passphrase';
let g: TestGateway;
let other: CreatedApp;
let seq = 0;

async function apiAs(key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(g.url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function paidPayment(key: string, extra: Record<string, unknown> = {}) {
  const p = (await apiAs(key, 'POST', '/v1/payments', { amount: 1000, subject: 'Team tea', out_trade_no: `team_${Date.now()}_${++seq}`, ...extra })).body;
  const s = await apiAs(key, 'POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' });
  expect(s.status).toBe(200);
  return s.body;
}

async function as(email: string, password = PASSWORD): Promise<ConsoleClient> {
  const c = new ConsoleClient(g.url);
  expect((await c.login(email, password)).status).toBe(303);
  return c;
}

const count = async (table: string, where: Record<string, unknown>) => Number((await g.deps.db(table).where(where).count({ n: '*' }))[0].n);
const roleOf = async (email: string, appId: string) =>
  (await g.deps.db('console_memberships as m').join('console_users as u', 'u.id', 'm.user_id').where({ 'u.email': email, 'm.app_id': appId }).first('m.role'))?.role;
const idOf = async (email: string) => (await g.deps.db('console_users').where({ email }).first('id')).id as string;

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  other = await createApp(g.deps.db, { name: 'Other Shop' });
  await createConsoleUser(g.deps.db, { email: 'owner@team.example', appId: g.app.app_id, password: PASSWORD });
  await createConsoleUser(g.deps.db, { email: 'admin@team.example', appId: g.app.app_id, password: PASSWORD, role: 'admin' });
  await createConsoleUser(g.deps.db, { email: 'dev@team.example', appId: g.app.app_id, password: PASSWORD, role: 'developer' });
  await createConsoleUser(g.deps.db, { email: 'viewer@team.example', appId: g.app.app_id, password: PASSWORD, role: 'viewer' });
  await createConsoleUser(g.deps.db, { email: 'owner@other.example', appId: other.app_id, password: PASSWORD });
});
afterAll(() => g?.close());

describe('console roles', () => {
  it('a viewer reads but cannot refund, close or change keys: a 403 naming the role, and nothing changes', async () => {
    const paid = await paidPayment(g.app.secret_key);
    const pending = (await apiAs(g.app.secret_key, 'POST', '/v1/payments', { amount: 500, subject: 'Open', out_trade_no: `team_open_${++seq}` })).body;
    const c = await as('viewer@team.example');
    const page = await c.get(`/console/payments/${paid.id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-role-refused');
    expect(page.text).not.toContain(`action="/console/payments/${paid.id}/refunds"`);
    const token = await c.tokenFrom('/console/payments');
    const refused = await c.post(`/console/payments/${paid.id}/refunds`, { _csrf: token, amount: '3.00' });
    expect(refused.status).toBe(403);
    expect(refused.text).toMatch(/needs the owner, admin or developer role/);
    expect(refused.text).toContain('your role in this app is viewer');
    expect(await count('refunds', { payment_id: paid.id })).toBe(0);
    expect((await c.post(`/console/payments/${pending.id}/close`, { _csrf: token })).status).toBe(403);
    expect((await g.deps.db('payments').where({ id: pending.id }).first('status')).status).toBe('pending');
    const keysBefore = await count('api_keys', { app_id: g.app.app_id });
    expect((await c.post('/console/keys/create', { _csrf: token, mode: 'test' })).status).toBe(403);
    expect((await c.post('/console/webhooks', { _csrf: token, url: 'https://shop.example/hook' })).status).toBe(403);
    expect(await count('api_keys', { app_id: g.app.app_id })).toBe(keysBefore);
    // The pages offer the viewer none of the forms it would be refused.
    for (const [path, action] of [['/console/keys', '/console/keys/create'], ['/console/webhooks', 'method="post" action="/console/webhooks"'], ['/console/transfers', 'method="post" action="/console/transfers"']] as const) {
      const html = (await c.get(path)).text;
      expect(html, path).not.toContain(action);
    }
    // An admin refunds the same payment.
    const admin = await as('admin@team.example');
    const ok = await admin.post(`/console/payments/${paid.id}/refunds`, { _csrf: await admin.tokenFrom(`/console/payments/${paid.id}`), amount: '3.00' });
    expect(ok.status).toBe(303);
    expect(await count('refunds', { payment_id: paid.id })).toBe(1);
  });

  it('a developer does not see a live customer\'s name and email on the payment and customer pages', async () => {
    const live = g.app.live_secret_key!;
    const cus = (await apiAs(live, 'POST', '/v1/customers', { out_user_id: `u${++seq}`, name: 'Wang Fang', email: 'wang.fang@buyer.example' })).body;
    expect(cus.id).toMatch(/^cus_/);
    const testCus = (await apiAs(g.app.secret_key, 'POST', '/v1/customers', { out_user_id: `t${++seq}`, name: 'Li Lei', email: 'li.lei@buyer.example' })).body;
    // A live payment of that customer (made from a test one: live channels need live credentials).
    const p = await paidPayment(g.app.secret_key);
    await g.deps.db('payments').where({ id: p.id }).update({ livemode: true, customer_id: cus.id });
    const testPaid = await paidPayment(g.app.secret_key, { customer: testCus.id });

    const dev = await as('dev@team.example');
    const devToken = await dev.tokenFrom('/console/payments');
    const livePage = await dev.get(`/console/payments/${p.id}`);
    expect(livePage.status).toBe(200);
    expect(livePage.text).toContain('data-masked');
    expect(livePage.text).not.toContain('wang.fang@buyer.example');
    expect(livePage.text).not.toContain('Wang Fang');
    // Test mode: the developer sees the test customer.
    const testPage = await dev.get(`/console/payments/${testPaid.id}`);
    expect(testPage.text).toContain('li.lei@buyer.example');
    expect((await dev.get(`/console/customers/${testCus.id}`)).text).toContain('li.lei@buyer.example');
    // Live mode: the customer pages are refused.
    expect((await dev.post('/console/mode', { _csrf: devToken, mode: 'live' })).status).toBe(303);
    expect((await dev.get('/console/payments')).text).not.toContain('href="/console/customers"');
    for (const path of ['/console/customers', `/console/customers/${cus.id}`]) {
      const res = await dev.get(path);
      expect(res.status).toBe(403);
      expect(res.text).not.toContain('wang.fang@buyer.example');
      expect(res.text).toContain('in live mode');
    }
    // A developer manages keys (a test key here).
    expect((await dev.post('/console/keys/create', { _csrf: devToken, mode: 'test' })).status).toBe(200);
    // But cannot refund live money.
    expect((await dev.post(`/console/payments/${p.id}/refunds`, { _csrf: devToken, amount: '1.00' })).status).toBe(403);

    // An admin and a viewer see the live customer.
    for (const email of ['admin@team.example', 'viewer@team.example']) {
      const c = await as(email);
      const page = await c.get(`/console/payments/${p.id}`);
      expect(page.text).toContain('wang.fang@buyer.example');
      expect(page.text).toContain('Wang Fang');
      await c.post('/console/mode', { _csrf: await c.tokenFrom('/console/payments'), mode: 'live' });
      expect((await c.get(`/console/customers/${cus.id}`)).text).toContain('wang.fang@buyer.example');
    }
  });

  it('an admin cannot manage the team; an owner can', async () => {
    const admin = await as('admin@team.example');
    const team = await admin.get('/console/team');
    expect(team.status).toBe(200);
    expect(team.text).toContain('data-member');
    expect(team.text).not.toContain('action="/console/team/invitations"');
    const token = await admin.tokenFrom('/console/team');
    const invite = await admin.post('/console/team/invitations', { _csrf: token, email: 'someone@team.example', role: 'admin' });
    expect(invite.status).toBe(403);
    expect(invite.text).toContain('needs the owner role');
    expect(await count('console_invitations', { email: 'someone@team.example' })).toBe(0);
    const viewerId = await idOf('viewer@team.example');
    expect((await admin.post(`/console/team/members/${viewerId}/role`, { _csrf: token, role: 'owner' })).status).toBe(403);
    expect((await admin.post(`/console/team/members/${viewerId}/remove`, { _csrf: token })).status).toBe(403);
    expect(await roleOf('viewer@team.example', g.app.app_id)).toBe('viewer');

    const owner = await as('owner@team.example');
    const ot = await owner.tokenFrom('/console/team');
    expect((await owner.post(`/console/team/members/${viewerId}/role`, { _csrf: ot, role: 'developer' })).status).toBe(303);
    expect(await roleOf('viewer@team.example', g.app.app_id)).toBe('developer');
    expect((await owner.post(`/console/team/members/${viewerId}/role`, { _csrf: ot, role: 'viewer' })).status).toBe(303);
    expect(await roleOf('viewer@team.example', g.app.app_id)).toBe('viewer');
  });

  it('the last owner can be neither demoted nor removed', async () => {
    const app = await createApp(g.deps.db, { name: 'Solo Shop' });
    await createConsoleUser(g.deps.db, { email: 'solo@team.example', appId: app.app_id, password: PASSWORD });
    await createConsoleUser(g.deps.db, { email: 'second@team.example', appId: app.app_id, password: PASSWORD, role: 'admin' });
    const c = await as('solo@team.example');
    const token = await c.tokenFrom('/console/team');
    const me = await idOf('solo@team.example');
    const demote = await c.post(`/console/team/members/${me}/role`, { _csrf: token, role: 'admin' });
    expect(demote.status).toBe(400);
    expect(demote.text).toContain('last owner');
    const remove = await c.post(`/console/team/members/${me}/remove`, { _csrf: token });
    expect(remove.status).toBe(400);
    expect(await roleOf('solo@team.example', app.app_id)).toBe('owner');
    // With a second owner, the first may step down.
    const second = await idOf('second@team.example');
    expect((await c.post(`/console/team/members/${second}/role`, { _csrf: token, role: 'owner' })).status).toBe(303);
    expect((await c.post(`/console/team/members/${me}/role`, { _csrf: token, role: 'admin' })).status).toBe(303);
    expect(await roleOf('solo@team.example', app.app_id)).toBe('admin');
    // Now an admin: the team is no longer theirs to change.
    expect((await c.post(`/console/team/members/${second}/remove`, { _csrf: token })).status).toBe(403);
  });
});

describe('invitations', () => {
  async function invite(email: string, role: string) {
    const owner = await as('owner@team.example');
    const res = await owner.post('/console/team/invitations', { _csrf: await owner.tokenFrom('/console/team'), email, role });
    expect(res.status).toBe(200);
    const link = /data-invitation-link[^>]*value="([^"]+)"|value="([^"]+)"[^>]*data-invitation-link/.exec(res.text);
    const url = link![1] ?? link![2];
    return { owner, path: new URL(url).pathname, token: url.split('/').pop()! };
  }

  async function join(path: string, form: Record<string, string>) {
    const c = new ConsoleClient(g.url);
    const page = await c.get(path);
    if (page.status !== 200) return { c, res: page };
    const token = /name="_csrf" value="([^"]+)"/.exec(page.text)![1];
    return { c, res: await c.post(path, { _csrf: token, ...form }) };
  }

  it('a link shown once, stored as a hash, joins a new user with the role, and works once', async () => {
    const { owner, path, token } = await invite('New.Dev@Team.example', 'developer');
    const row = await g.deps.db('console_invitations').where({ email: 'new.dev@team.example' }).first();
    expect(row.token_hash).toBe(sha256Hex(token));
    expect(JSON.stringify(row)).not.toContain(token);
    // The team page lists the invitation without its link.
    const team = await owner.get('/console/team');
    expect(team.text).toContain('data-open-invitation');
    expect(team.text).not.toContain(token);

    const page = await new ConsoleClient(g.url).get(path);
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-join="new-account"');
    const mismatch = await join(path, { password: PASSWORD, password_again: 'something else entirely' });
    expect(mismatch.res.status).toBe(400);
    const { c, res } = await join(path, { password: PASSWORD, password_again: PASSWORD });
    expect(res.status).toBe(303);
    expect(await roleOf('new.dev@team.example', g.app.app_id)).toBe('developer');
    expect((await c.get('/console/payments')).status).toBe(200);
    expect((await c.get('/console/team')).text).toContain('data-my-role>developer');
    // Used: refused, and no second membership or account.
    const again = await join(path, { password: PASSWORD, password_again: PASSWORD });
    expect(again.res.status).toBe(404);
    expect(again.res.text).toContain('not valid');
    expect(await count('console_users', { email: 'new.dev@team.example' })).toBe(1);
    // The new user signs in with the password they chose.
    await as('new.dev@team.example');
  });

  it('an expired or revoked link is refused', async () => {
    const expired = await invite('late@team.example', 'viewer');
    await g.deps.db('console_invitations').where({ email: 'late@team.example' }).update({ expires_ms: Date.now() - 1000 });
    const res = await join(expired.path, { password: PASSWORD, password_again: PASSWORD });
    expect(res.res.status).toBe(404);
    expect(await count('console_users', { email: 'late@team.example' })).toBe(0);

    const revoked = await invite('revoked@team.example', 'viewer');
    const inv = await g.deps.db('console_invitations').where({ email: 'revoked@team.example' }).first('id');
    const r = await revoked.owner.post(`/console/team/invitations/${inv.id}/revoke`, { _csrf: await revoked.owner.tokenFrom('/console/team') });
    expect(r.status).toBe(303);
    expect((await join(revoked.path, { password: PASSWORD, password_again: PASSWORD })).res.status).toBe(404);
    expect((await new ConsoleClient(g.url).get('/console/invitations/not-a-token')).status).toBe(404);
  });

  it('an existing user joins a second app by signing in, switches between the apps, and sees each one\'s data only', async () => {
    const mine = (await apiAs(g.app.secret_key, 'POST', '/v1/payments', { amount: 700, subject: 'Mine', out_trade_no: `main_only_${++seq}` })).body;
    const theirs = (await apiAs(other.secret_key, 'POST', '/v1/payments', { amount: 800, subject: 'Theirs', out_trade_no: `other_only_${++seq}` })).body;
    const { path } = await invite('owner@other.example', 'viewer');
    const page = await new ConsoleClient(g.url).get(path);
    expect(page.text).toContain('data-join="sign-in"');
    const wrong = await join(path, { password: 'not the passphrase at all' });
    expect(wrong.res.status).toBe(401);
    const { c, res } = await join(path, { password: PASSWORD });
    expect(res.status).toBe(303);
    expect(await roleOf('owner@other.example', g.app.app_id)).toBe('viewer');
    expect(await roleOf('owner@other.example', other.app_id)).toBe('owner');

    // Joining opens the new app; the switcher offers both.
    let list = await c.get('/console/payments');
    expect(list.text).toContain('data-app-switcher');
    expect(list.text).toContain(mine.id);
    expect(list.text).not.toContain(theirs.id);
    const token = await c.tokenFrom('/console/payments');
    expect((await c.post('/console/app', { _csrf: token, app_id: other.app_id })).status).toBe(303);
    list = await c.get('/console/payments');
    expect(list.text).toContain(theirs.id);
    expect(list.text).not.toContain(mine.id);
    expect((await c.get(`/console/payments/${mine.id}`)).status).toBe(404);
    // An owner there: the team is theirs to change; a viewer here: not.
    expect((await c.get('/console/team')).text).toContain('action="/console/team/invitations"');
    // An app they do not belong to, or a switch without the form token, is refused.
    const stranger = await createApp(g.deps.db, { name: 'Stranger Shop' });
    expect((await c.post('/console/app', { _csrf: token, app_id: stranger.app_id })).status).toBe(403);
    expect((await c.post('/console/app', { _csrf: 'nope', app_id: g.app.app_id })).status).toBe(403);
    expect((await c.post('/console/app', { _csrf: token, app_id: g.app.app_id })).status).toBe(303);
    expect((await c.get('/console/payments')).text).toContain(mine.id);
  });

  it('a removed member loses access at once', async () => {
    const { path } = await invite('leaving@team.example', 'viewer');
    const { c } = await join(path, { password: PASSWORD, password_again: PASSWORD });
    expect((await c.get('/console/payments')).status).toBe(200);
    const owner = await as('owner@team.example');
    const id = await idOf('leaving@team.example');
    expect((await owner.post(`/console/team/members/${id}/remove`, { _csrf: await owner.tokenFrom('/console/team') })).status).toBe(303);
    expect((await c.get('/console/payments')).status).toBe(303);
    // Signing in again finds no app.
    const again = new ConsoleClient(g.url);
    expect((await again.login('leaving@team.example', PASSWORD)).status).toBe(401);
  });
});
