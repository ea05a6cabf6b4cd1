/**
 * The console's endpoint page: a test event, the secret rotated (shown once, the old one kept for
 * the chosen time or stopped), an event sent again with the same webhook-id, disable and enable
 * again, deliveries a page at a time; bad choices and another app's endpoint change nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { createApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { sendTestEvent } from '../../server/webhooks/service.ts';
import { ConsoleClient } from '../support/console.ts';

const PASSWORD = 'a long enough passphrase';
let g: TestGateway;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let c: ConsoleClient;
let endpointId: string;
let token: string;
beforeAll(async () => {
  g = await startTestGateway({ workers: true });
  receiver = await startReceiver();
  await createConsoleUser(g.deps.db, { email: 'owner@hooks.example', appId: g.app.app_id, password: PASSWORD });
  c = new ConsoleClient(g.url);
  expect((await c.login('owner@hooks.example', PASSWORD)).status).toBe(303);
  token = await c.tokenFrom('/console/webhooks');
  const created = await c.post('/console/webhooks', { _csrf: token, url: `${receiver.url}/hook` });
  expect(created.status).toBe(201);
  receiver.setSecret(/value="(whsec_[^"]+)"/.exec(created.text)![1]);
  endpointId = /data-created-endpoint="([^"]+)"/.exec(created.text)![1];
});
afterAll(async () => {
  await g?.close();
  await receiver?.close();
});

const page = (path = '') => c.get(`/console/webhooks/${endpointId}${path}`);
const act = (action: string, form: Record<string, string> = {}) => c.post(`/console/webhooks/${endpointId}/${action}`, { _csrf: token, ...form });
const sealedSecret = async () => (await g.deps.db('webhook_endpoints').where({ id: endpointId }).first()).secret_sealed as string;

describe('console: a webhook endpoint', () => {
  it('sends a test event that the endpoint receives, signed', async () => {
    const res = await act('test');
    expect(res.status).toBe(200);
    const eventId = /A test\.webhook event \((evt_[A-Za-z0-9]+)\)/.exec(res.text)?.[1];
    expect(eventId).toBeDefined();
    const got = await receiver.waitFor((w) => w.id === eventId);
    expect(got.verified).toBe(true);
    expect(got.payload.type).toBe('test.webhook');
  });

  it('rotates the secret: shown once, the old one stops when asked, a bad choice changes nothing', async () => {
    const before = await sealedSecret();
    const bad = await act('rotate', { expires_in: '999' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('data-error');
    expect(await sealedSecret()).toBe(before);

    const res = await act('rotate', { expires_in: '0' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const secret = /data-rotated[\s\S]*?value="(whsec_[^"]+)"/.exec(res.text)?.[1];
    expect(secret).toMatch(/^whsec_/);
    expect(await sealedSecret()).not.toBe(before);
    expect((await page()).text).not.toContain(secret!);

    // Signed with the new secret only: the old one (still the receiver's) no longer verifies.
    const ev = await sendTestEvent(g.deps, { appId: g.app.app_id, livemode: false }, endpointId);
    const unverified = await receiver.waitFor((w) => w.id === ev.id);
    expect(unverified.verified).toBe(false);
    new Webhook(secret!).verify(unverified.body, {
      'webhook-id': String(unverified.headers['webhook-id']),
      'webhook-timestamp': String(unverified.headers['webhook-timestamp']),
      'webhook-signature': String(unverified.headers['webhook-signature']),
    });
    receiver.setSecret(secret!);
  });

  it("sends a delivery's event again with the same webhook-id", async () => {
    const p = (await g.api('POST', '/v1/payments', { amount: 300, subject: 'Console hook', out_trade_no: `hook_${Date.now()}` })).body;
    expect((await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify: 'normal' })).status).toBe(200);
    const first = await receiver.waitFor((w) => w.payload?.type === 'payment.succeeded' && w.payload.data.object.id === p.id);
    const eventId = first.id;
    const detail = await page();
    expect(detail.text).toContain(`name="event" value="${eventId}"`);
    const res = await act('resend', { event: eventId });
    expect(res.status).toBe(200);
    expect(res.text).toContain(`Event ${eventId} is queued again`);
    await receiver.waitFor(() => receiver.received.filter((w) => w.id === eventId).length === 2);
    expect(receiver.received.filter((w) => w.id === eventId).every((w) => w.verified)).toBe(true);
    expect(await g.deps.db('webhook_deliveries').where({ event_id: eventId, endpoint_id: endpointId })).toHaveLength(2);

    const deliveries = await g.deps.db('webhook_deliveries').count({ n: '*' }).first();
    for (const event of ['x', 'evt_doesnotexist']) {
      const refused = await act('resend', { event });
      expect(refused.status).toBeGreaterThanOrEqual(400);
      expect(refused.status).toBeLessThan(500);
      expect(refused.text).toContain('data-error');
    }
    expect(await g.deps.db('webhook_deliveries').count({ n: '*' }).first()).toEqual(deliveries);
  });

  it('disables and enables again; a disabled endpoint takes no test event', async () => {
    const off = await act('status', { status: 'disabled' });
    expect(off.status).toBe(200);
    expect(off.text).toContain('data-endpoint-status="disabled"');
    expect(off.text).not.toContain('Send a test event');
    const tests = async () => Number((await g.deps.db('events').where({ type: 'test.webhook' }).count({ n: '*' }).first())!.n);
    const before = await tests();
    const refused = await act('test');
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('enable it before sending a test event');
    expect(await tests()).toBe(before);
    expect((await act('status', { status: 'paused' })).status).toBe(400);
    const on = await act('status', { status: 'enabled' });
    expect(on.status).toBe(200);
    expect(on.text).toContain('data-endpoint-status="enabled"');
    expect((await g.deps.db('webhook_endpoints').where({ id: endpointId }).first()).status).toBe('enabled');
  });

  it('pages the deliveries, newest first', async () => {
    for (let i = 0; i < 22; i++) await sendTestEvent(g.deps, { appId: g.app.app_id, livemode: false }, endpointId);
    const all = (await g.deps.db('webhook_deliveries').where({ endpoint_id: endpointId }).orderBy([{ column: 'created', order: 'desc' }, { column: 'id', order: 'desc' }])).map((d) => d.id as string);
    expect(all.length).toBeGreaterThan(25);
    const ids = (html: string) => [...html.matchAll(/data-delivery-id="([^"]+)"/g)].map((m) => m[1]);
    const first = await page();
    expect(ids(first.text)).toEqual(all.slice(0, 20));
    const older = /href="\?starting_after=([^"]+)" rel="next"/.exec(first.text)?.[1];
    expect(older).toBe(all[19]);
    const second = await page(`?starting_after=${older}`);
    expect(ids(second.text)).toEqual(all.slice(20, 40));
    expect(second.text).toContain('rel="prev"');
  });

  it("refuses a cross-site form and another app's endpoint, changing nothing", async () => {
    const before = await sealedSecret();
    const cross = await c.post(`/console/webhooks/${endpointId}/rotate`, { _csrf: token, expires_in: '0' }, { origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    const noToken = await c.post(`/console/webhooks/${endpointId}/rotate`, { expires_in: '0' });
    expect(noToken.status).toBe(403);
    expect(await sealedSecret()).toBe(before);

    const other = await createApp(g.deps.db, { name: 'Other shop' });
    const ep = (await fetch(`${g.url}/v1/webhook_endpoints`, {
      method: 'POST', headers: { authorization: `Bearer ${other.secret_key}`, 'content-type': 'application/json' }, body: JSON.stringify({ url: `${receiver.url}/other` }),
    }).then((r) => r.json())) as { id: string };
    expect((await c.get(`/console/webhooks/${ep.id}`)).status).toBe(404);
    for (const action of ['test', 'rotate', 'status']) {
      const res = await c.post(`/console/webhooks/${ep.id}/${action}`, { _csrf: token, expires_in: '0', status: 'disabled' });
      expect(res.status, action).toBe(404);
    }
    const row = await g.deps.db('webhook_endpoints').where({ id: ep.id }).first();
    expect(row.status).toBe('enabled');
    expect(await g.deps.db('events').where({ app_id: other.app_id })).toHaveLength(0);
  });
});
