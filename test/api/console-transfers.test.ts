/**
 * The console's transfer pages: a console user pays someone through the form (sent twice, still
 * one transfer), the mode's limits, and the approval rule — above the threshold a transfer waits,
 * its creator cannot approve it, a second user can (then it is paid) or rejects it (nothing is).
 * And the red packet list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { ConsoleClient } from '../support/console.ts';
import { transferSettingsOf } from '../../server/transfers/limits.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';

const PASSWORD = 'a long enough passphrase';
let g: TestGateway;
let other: CreatedApp;
let openid: string;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  const cred: any = await getCredentials(g.deps, g.app.app_id, 'wechatpay', false);
  openid = wechatpaySandbox.payerId!({ db: g.deps.db, publicUrl: g.deps.config.publicUrl, masterKey: g.deps.config.masterKeyBytes, logger: g.deps.logger }, cred.appid);
  other = await createApp(g.deps.db, { name: 'Other Shop' });
  await createConsoleUser(g.deps.db, { email: 'maker@transfers.example', appId: g.app.app_id, password: PASSWORD });
  await createConsoleUser(g.deps.db, { email: 'checker@transfers.example', appId: g.app.app_id, password: PASSWORD });
});
afterAll(() => g?.close());

async function as(email: string): Promise<ConsoleClient> {
  const c = new ConsoleClient(g.url);
  expect((await c.login(email, PASSWORD)).status).toBe(303);
  return c;
}

const field = (html: string, name: string) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1] ?? '';
const count = async (where: Record<string, unknown> = {}) => Number((await g.deps.db('transfers').where(where).count({ n: '*' }))[0].n);

async function newTransferForm(c: ConsoleClient, values: Record<string, string>) {
  const page = await c.get('/console/transfers');
  expect(page.status).toBe(200);
  return { _csrf: field(page.text, '_csrf'), transfer_key: field(page.text, 'transfer_key'), channel: 'wechatpay', recipient_type: 'wechat_openid', account: openid, name: '', description: 'Console payout', ...values };
}

describe('console: transfers', () => {
  it('are behind the login and in the navigation', async () => {
    const anon = new ConsoleClient(g.url);
    for (const path of ['/console/transfers', '/console/red_packets']) {
      const res = await anon.get(path);
      expect(res.status).toBe(303);
      expect(res.location).toBe(`/console/login?next=${encodeURIComponent(path)}`);
    }
    const c = await as('maker@transfers.example');
    const page = await c.get('/console/transfers');
    expect(page.text).toContain('href="/console/transfers" aria-current="page"');
    expect(page.text).toContain('href="/console/red_packets"');
    expect(page.text).toContain('data-transfer-limits');
    expect((await c.get('/console/red_packets')).text).toContain('data-empty');
  });

  it('a console user pays someone; the same form sent twice is one transfer', async () => {
    const c = await as('maker@transfers.example');
    const form = await newTransferForm(c, { amount: '12.34' });
    const a = await c.post('/console/transfers', form);
    expect(a.status, a.text.slice(0, 300)).toBe(303);
    const b = await c.post('/console/transfers', form);
    expect(b.location).toBe(a.location);
    const id = a.location!.split('/').pop()!;
    expect(await count({ out_transfer_no: form.transfer_key })).toBe(1);
    const detail = await c.get(`/console/transfers/${id}`);
    expect(detail.status).toBe(200);
    expect(detail.text).toContain('status-awaiting_recipient');
    expect(detail.text).toContain('¥12.34');
    expect(detail.text).toContain('maker@transfers.example');
    expect((await g.api('GET', `/v1/transfers/${id}`)).body).toMatchObject({ status: 'awaiting_recipient', amount: 1234 });
  });

  it('pays an Alipay account from the form: succeeded at once, shown on its page', async () => {
    const c = await as('maker@transfers.example');
    const form = await newTransferForm(c, { amount: '8.80', channel: 'alipay', recipient_type: 'alipay_login_id', account: 'payee@example.com', name: '张三' });
    const res = await c.post('/console/transfers', form);
    expect(res.status, res.text.slice(0, 300)).toBe(303);
    const id = res.location!.split('/').pop()!;
    const detail = await c.get(`/console/transfers/${id}`);
    expect(detail.text).toContain('status-succeeded');
    expect(detail.text).toContain('¥8.80');
    expect((await g.api('GET', `/v1/transfers/${id}`)).body).toMatchObject({ channel: 'alipay', status: 'succeeded', amount: 880 });
  });

  it('bad form input is shown on the page and makes nothing', async () => {
    const c = await as('maker@transfers.example');
    const before = await count();
    const bad: Array<Record<string, string>> = [{ amount: 'abc' }, { amount: '0.01' }, { account: '' }, { recipient_type: 'alipay_user_id', account: '42' }, { account: 'not an openid!' }];
    for (const values of bad) {
      const res = await c.post('/console/transfers', await newTransferForm(c, { amount: '1.00', ...values }));
      expect(res.status, JSON.stringify(values)).toBe(400);
      expect(res.text).toContain('data-error');
    }
    expect(await count()).toBe(before);
  });

  it('limits are saved per mode; above the threshold the creator cannot approve, a second user can', async () => {
    const maker = await as('maker@transfers.example');
    const checker = await as('checker@transfers.example');
    const page = await maker.get('/console/transfers');
    const saved = await maker.post('/console/transfers/settings', { _csrf: field(page.text, '_csrf'), single_limit: '', daily_limit: '1000', approval_threshold: '50' });
    expect(saved.status).toBe(303);
    expect(await transferSettingsOf(g.deps.db, g.app.app_id, false)).toMatchObject({ single_limit: null, daily_limit: 100_000, approval_threshold: 5000, custom: true });
    expect((await transferSettingsOf(g.deps.db, g.app.app_id, true)).custom).toBe(false);

    const made = await maker.post('/console/transfers', await newTransferForm(maker, { amount: '60.00' }));
    const id = made.location!.split('/').pop()!;
    const own = await maker.get(`/console/transfers/${id}`);
    expect(own.text).toContain('status-requires_approval');
    expect(own.text).toContain('data-own-transfer');
    expect(own.text).not.toContain(`/transfers/${id}/approve`);
    const refused = await maker.post(`/console/transfers/${id}/approve`, { _csrf: field(own.text, '_csrf') });
    expect(refused.status).toBe(403);
    expect((await g.api('GET', `/v1/transfers/${id}`)).body.status).toBe('requires_approval');

    const theirs = await checker.get(`/console/transfers/${id}`);
    expect(theirs.text).toContain(`/transfers/${id}/approve`);
    const approved = await checker.post(`/console/transfers/${id}/approve`, { _csrf: field(theirs.text, '_csrf') });
    expect(approved.status).toBe(303);
    const t = (await g.api('GET', `/v1/transfers/${id}`)).body;
    expect(t.status).toBe('awaiting_recipient');
    const checkerId = (await g.deps.db('console_users').where({ email: 'checker@transfers.example' }).first()).id;
    expect(t.approved_by).toBe(checkerId);
    expect((await checker.get(`/console/transfers/${id}`)).text).toContain('data-approved-by');

    // A rejected one is canceled and never sent.
    const second = (await maker.post('/console/transfers', await newTransferForm(maker, { amount: '70.00' }))).location!.split('/').pop()!;
    const p2 = await checker.get(`/console/transfers/${second}`);
    expect((await checker.post(`/console/transfers/${second}/reject`, { _csrf: field(p2.text, '_csrf') })).status).toBe(303);
    expect((await g.api('GET', `/v1/transfers/${second}`)).body).toMatchObject({ status: 'canceled', failure_code: 'approval_rejected' });
    // Approving it now is refused.
    expect((await checker.post(`/console/transfers/${second}/approve`, { _csrf: field(p2.text, '_csrf') })).status).toBe(400);
  });

  it("another app's transfer is a 404", async () => {
    const res = await fetch(`${g.url}/v1/transfers`, {
      method: 'POST', headers: { authorization: `Bearer ${other.secret_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'wechatpay', amount: 100, out_transfer_no: 'other_1', recipient: { type: 'wechat_openid', account: 'oOtherAppOpenid0000000000000' } }),
    });
    const t: any = await res.json();
    expect(res.status, JSON.stringify(t)).toBe(200);
    const c = await as('checker@transfers.example');
    expect((await c.get(`/console/transfers/${t.id}`)).status).toBe(404);
  });
});
