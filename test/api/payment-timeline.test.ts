import crypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { ConsoleClient } from '../support/console.ts';
import { startReceiver } from './webhook-helpers.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { findMerchant, findOrder } from '../../server/sandbox/alipay/store.ts';
import { tradeNotifyParams } from '../../server/sandbox/alipay/notify.ts';
import type { AlipayCredentials } from '../../server/channels/alipay/index.ts';
import { startPaymentWorker } from '../../server/payments/worker.ts';
import { newId } from '../../server/crypto.ts';
import { BODY_LIMIT } from '../../server/channel-messages/scrub.ts';

/** Issue 16, a payment's whole story: channel messages recorded (scrubbed, bounded, purged) and the console's timeline. */

let g: TestGateway;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let consoleUser: ConsoleClient;
let seq = 0;
const PASSWORD = 'a long enough passphrase';

beforeAll(async () => {
  g = await startTestGateway();
  receiver = await startReceiver();
  const ep = await g.api('POST', '/v1/webhook_endpoints', { url: receiver.url, enabled_events: ['*'] });
  expect(ep.status).toBe(200);
  await createConsoleUser(g.deps.db, { email: 'owner@timeline.example', appId: g.app.app_id, password: PASSWORD });
  consoleUser = new ConsoleClient(g.url);
  expect((await consoleUser.login('owner@timeline.example', PASSWORD)).status).toBe(303);
});
afterAll(async () => {
  await g?.close();
  await receiver?.close();
});

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const messages = (paymentId: string) => g.deps.db('channel_messages').where({ payment_id: paymentId }).orderBy([{ column: 'created_ms' }, { column: 'id' }]);
const newPayment = async (amount = 1200) =>
  (await g.api('POST', '/v1/payments', { amount, subject: 'Timeline tea', out_trade_no: `tl_${Date.now()}_${++seq}` })).body;

/** The timeline's entries as the page renders them: kind, status and text, in page order. */
async function timelineOf(paymentId: string) {
  const page = await consoleUser.get(`/console/payments/${paymentId}`);
  expect(page.status).toBe(200);
  const list = /<ol class="timeline" data-timeline>([\s\S]*?)<\/ol>/.exec(page.text)![1];
  const entries = [...list.matchAll(/<li class="timeline-entry[^"]*" data-kind="([a-z]+)" data-id="([^"]+)"(?: data-status="([a-z_]+)")?>([\s\S]*?)<\/li>/g)]
    .map((m) => ({ kind: m[1], id: m[2], status: m[3], html: m[4] }));
  return { page: page.text, entries };
}

/** An Alipay payment paid at the simulator with its notify held back, and that genuine signed notify. */
async function paidWithHeldNotify() {
  const p = await newPayment();
  const sim = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify: 'drop' });
  expect(sim.body.status).toBe('pending');
  const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
  const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
  const merchant = (await findMerchant(g.deps.db, g.deps.config.masterKeyBytes, cred.appId))!;
  const order = (await findOrder(g.deps.db, cred.appId, { outTradeNo: attempt.channel_order_no }))!;
  return { payment: p, attempt, cred, params: tradeNotifyParams(merchant, order, crypto.randomBytes(16).toString('hex')) };
}

const postNotify = (body: string, provider = 'alipay') =>
  fetch(`${g.url}/notify/${provider}/${g.app.app_id}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });

/** The base64 lines of a key's PEM export: none of them may be in a stored message. */
function keyLines(key: KeyObject): string[] {
  const pem = key.type === 'secret' ? key.export().toString('base64') : (key.export({ type: key.type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }) as string);
  return pem.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----'));
}

describe('a payment paid through the simulator', () => {
  it('shows created, the attempt, the verified notify, payment.succeeded and its webhook attempt, in that order, on its console page', async () => {
    const p = await newPayment();
    const paid = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify: 'normal' });
    expect(paid.body.status).toBe('succeeded');
    await until('the webhook', async () => receiver.received.some((r) => r.body.includes(p.id) && r.body.includes('payment.succeeded')));
    await until('its attempt recorded', async () => (await g.deps.db('webhook_attempts').count({ n: '*' }))[0].n as number > 0 && (await messages(p.id)).some((m) => m.kind === 'notify'));
    const rows = await messages(p.id);
    expect(rows.map((m) => `${m.direction} ${m.kind} ${m.verification}`)).toEqual(expect.arrayContaining(['out create verified', 'in notify verified']));
    const notify = rows.find((m) => m.kind === 'notify')!;
    expect(notify).toMatchObject({ provider: 'alipay', app_id: g.app.app_id, http_status: 200, reason: null });
    expect(notify.attempt_id).toMatch(/^att_/);
    // Alipay's form says it all in clear: kept scrubbed, without a second, normalized copy.
    expect(JSON.parse(notify.body).body).toMatchObject({ out_trade_no: notify.order_no, trade_status: 'TRADE_SUCCESS', total_amount: '12.00' });
    expect(JSON.parse(notify.body).notification).toBeUndefined();

    const { entries, page } = await until('the delivery on the page', async () => {
      const t = await timelineOf(p.id);
      return t.entries.some((e) => e.kind === 'webhook' && e.status === 'delivered') && t;
    });
    const index = (pred: (e: (typeof entries)[number]) => boolean, what: string) => {
      const i = entries.findIndex(pred);
      expect(i, what).toBeGreaterThanOrEqual(0);
      return i;
    };
    const created = index((e) => e.kind === 'created', 'created');
    const attempt = index((e) => e.kind === 'attempt' && e.status === 'succeeded', 'attempt');
    const placed = index((e) => e.kind === 'message' && e.html.includes('Order placed at alipay'), 'create call');
    const notified = index((e) => e.kind === 'message' && e.html.includes('Notification from alipay') && e.status === 'verified', 'verified notify');
    const event = index((e) => e.kind === 'event' && e.html.includes('payment.succeeded'), 'event');
    const webhook = index((e) => e.kind === 'webhook' && e.status === 'delivered', 'webhook attempt');
    expect([created, attempt, placed, notified, event, webhook]).toEqual([...[created, attempt, placed, notified, event, webhook]].sort((a, b) => a - b));
    expect(new Set([created, attempt, placed, notified, event, webhook]).size).toBe(6);
    // The scrubbed body is there to expand; the webhook attempt links to its delivery's page.
    expect(entries[notified].html).toContain('<details><summary>Message (scrubbed)</summary>');
    expect(entries[notified].html).toContain('[signature ');
    const href = /<a href="([^"]+)">delivery (wd_[A-Za-z0-9]+)<\/a>/.exec(entries[webhook].html)!;
    expect(href[1]).toMatch(new RegExp(`^/console/webhooks/we_[A-Za-z0-9]+/deliveries/${href[2]}$`));
    const delivery = await consoleUser.get(href[1]);
    expect(delivery.status).toBe(200);
    expect(delivery.text).toContain(`data-delivery-id="${href[2]}"`);
    expect(delivery.text).toContain('payment.succeeded');
    expect(page).not.toMatch(/-----BEGIN/);
  });

  it('records a duplicate notify twice, both verified, with one payment.succeeded', async () => {
    const p = await newPayment();
    await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify: 'duplicate' });
    const notifies = await until('two notifies', async () => {
      const n = (await messages(p.id)).filter((m) => m.kind === 'notify');
      return n.length >= 2 && n;
    });
    expect(notifies.map((m) => m.verification)).toEqual(['verified', 'verified']);
    const { entries } = await timelineOf(p.id);
    expect(entries.filter((e) => e.kind === 'message' && e.html.includes('Notification from alipay') && e.status === 'verified')).toHaveLength(2);
    expect(entries.filter((e) => e.kind === 'event' && e.html.includes('payment.succeeded'))).toHaveLength(1);
  });

  it('shows a refund: the request to the channel, the refund and refund.succeeded', async () => {
    const p = await newPayment();
    await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify: 'normal' });
    const refund = await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 500 });
    expect(refund.status).toBe(200);
    await until('the refund call recorded', async () => (await messages(p.id)).some((m) => m.kind === 'refund'));
    const { entries } = await timelineOf(p.id);
    const call = entries.findIndex((e) => e.kind === 'message' && e.html.includes('Refund requested at alipay'));
    const row = entries.findIndex((e) => e.kind === 'refund' && e.id === refund.body.id);
    const event = entries.findIndex((e) => e.kind === 'event' && e.html.includes('refund.succeeded'));
    expect(row).toBeGreaterThan(0);
    expect(call).toBeGreaterThan(row);
    expect(event).toBeGreaterThan(call);
    expect(entries[row].html).toContain('¥5.00');
    const stored = (await messages(p.id)).find((m) => m.kind === 'refund')!;
    expect(stored).toMatchObject({ refund_id: refund.body.id, direction: 'out', verification: 'verified' });
    expect(JSON.parse(stored.body)).toMatchObject({ request: { refundNo: refund.body.id, amount: 500 }, result: { status: 'succeeded' } });
  });
});

describe('refused and scrubbed messages', () => {
  it('records a forged notify as refused with its reason, under the payment it names, and shows it', async () => {
    const { payment, params } = await paidWithHeldNotify();
    const forged = await postNotify(new URLSearchParams({ ...params, total_amount: '0.01' }).toString());
    expect(await forged.text()).not.toBe('success');
    const row = await until('the refused notify', async () => (await messages(payment.id)).find((m) => m.kind === 'notify'));
    expect(row.verification).toBe('refused');
    expect(row.reason).toMatch(/signature/i);
    expect(row.http_status).toBe(forged.status);
    const { entries } = await timelineOf(payment.id);
    const shown = entries.find((e) => e.kind === 'message' && e.status === 'refused')!;
    expect(shown.html).toContain('Notification from alipay');
    expect(shown.html).toMatch(/signature/i);
    // Nothing changed: still pending, no event.
    expect((await g.api('GET', `/v1/payments/${payment.id}`)).body.status).toBe('pending');
  });

  it('stores no signature, key or certificate: the sign is a short hash, PEM and key text never appear', async () => {
    const { payment, params, cred } = await paidWithHeldNotify();
    const answer = await postNotify(new URLSearchParams(params).toString());
    expect(await answer.text()).toBe('success');
    await until('the notify', async () => (await messages(payment.id)).some((m) => m.kind === 'notify'));
    // A WeChat payment too: its notify's resource is API v3 ciphertext whose plaintext holds the payer.
    const w = await newPayment(800);
    const wpaid = await g.api('POST', `/v1/test_helpers/payments/${w.id}/simulate`, { channel: 'wechat_native', notify: 'normal' });
    expect(wpaid.body.status).toBe('succeeded');
    const wnotify = await until('the WeChat notify', async () => (await messages(w.id)).find((m) => m.kind === 'notify'));
    expect(wnotify.verification).toBe('verified');
    const wbody = JSON.parse(wnotify.body);
    expect(wbody.body.resource.ciphertext).toMatch(/^\[ciphertext \d+ chars\]$/);
    expect(wbody.notification).toMatchObject({ kind: 'payment', status: 'succeeded', amount: 800 });
    expect(wbody.headers['wechatpay-signature']).toMatch(/^\[signature [0-9a-f]{8}\]$/);

    const all = await g.deps.db('channel_messages').select('body', 'reason');
    const text = all.map((r) => `${r.body}\n${r.reason ?? ''}`).join('\n');
    expect(text).not.toContain(params.sign);
    expect(text).not.toContain(encodeURIComponent(params.sign));
    expect(text).not.toMatch(/-----BEGIN|PRIVATE KEY|authorization/i);
    const wcred = (await getCredentials(g.deps, g.app.app_id, 'wechatpay', false)) as any;
    const secrets = [...keyLines(cred.privateKey), ...keyLines(cred.alipayPublicKey), ...keyLines(wcred.privateKey), wcred.apiV3Key.export().toString('ascii')];
    for (const s of secrets) expect(text).not.toContain(s);
    const stored = JSON.parse((await messages(payment.id)).find((m) => m.kind === 'notify')!.body);
    expect(stored.body.sign).toMatch(/^\[signature [0-9a-f]{8}\]$/);
    expect(stored.body.sign_type).toBe('RSA2');
    expect(stored.body.out_trade_no).toBe(params.out_trade_no);
  });

  it('cuts a body at the bound, saying how long it was', async () => {
    const { payment, params } = await paidWithHeldNotify();
    const big = new URLSearchParams({ ...params, body: 'tea leaves '.repeat(4000), sign: 'forged' }).toString();
    await postNotify(big);
    const row = await until('the big notify', async () => (await messages(payment.id)).find((m) => m.kind === 'notify'));
    expect(Buffer.byteLength(row.body)).toBeLessThanOrEqual(BODY_LIMIT);
    expect(Number(row.body_bytes)).toBeGreaterThan(BODY_LIMIT);
    expect(row.body).toMatch(/…\[cut: \d+ bytes, the first 16384 kept\]$/);
    expect(row.verification).toBe('refused');
  });
});

describe('retention', () => {
  it('purges messages older than the retention period with the worker sweep and keeps the rest', async () => {
    const days = g.deps.config.channelMessageRetentionDays;
    const base = { app_id: g.app.app_id, livemode: false, provider: 'alipay', kind: 'notify', direction: 'in', verification: 'verified', body: '{}', body_bytes: 2 };
    const old = { ...base, id: newId('msg'), created_ms: Date.now() - (days + 1) * 86_400_000 };
    const recent = { ...base, id: newId('msg'), created_ms: Date.now() - (days - 1) * 86_400_000 };
    await g.deps.db('channel_messages').insert([old, recent]);
    // A fresh worker sweeps on its first pass.
    const worker = startPaymentWorker(g.deps, { background: false });
    await worker.runOnce();
    await worker.stop();
    const left = (await g.deps.db('channel_messages').whereIn('id', [old.id, recent.id]).select('id')).map((r) => r.id);
    expect(left).toEqual([recent.id]);
  });
});
