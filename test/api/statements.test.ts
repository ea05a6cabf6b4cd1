import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { unzipSync } from 'fflate';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { beijingDate } from '../../server/dashboard/format.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { checkDay, fetchDay, uploadDay } from '../../server/statements/service.ts';
import { dayDiscrepancies, findStatement, resolveDiscrepancy, statementRows } from '../../server/statements/repo.ts';
import { statementPass } from '../../server/statements/worker.ts';
import { wechatpayStatements } from '../../server/channels/wechatpay/statement.ts';
import { alipayStatements } from '../../server/channels/alipay/statement.ts';
import { sandboxFee } from '../../server/sandbox/statement-token.ts';
import type { Provider } from '../../server/channels/types.ts';
import { ConsoleClient } from '../support/console.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import type { AlipayCredentials } from '../../server/channels/alipay/index.ts';
import type { WechatpayCredentials } from '../../server/channels/wechatpay/index.ts';
import type { PaypalCredentials } from '../../server/channels/paypal/index.ts';
import { callApi } from '../../server/channels/paypal/client.ts';

// The whole loop through the simulators: payments and refunds processed at the simulated channel,
// its statement of the day fetched in the channel's real format, and every planted disagreement
// reported with its kind.

let g: TestGateway;
let seq = 0;
const today = beijingDate(Date.now());

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(async () => {
  await g?.close();
});

const scope = () => ({ appId: g.app.app_id, livemode: false });
const day = (provider: Provider, date = today) => ({ ...scope(), provider, date });

async function pay(channel: string, amount: number, notify: 'normal' | 'drop' = 'normal', currency = 'CNY') {
  const p = (await g.api('POST', '/v1/payments', { amount, currency, subject: '对账测试 茶叶', out_trade_no: `st_${Date.now()}_${++seq}`, channel })).body;
  const sim = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel, outcome: 'pay', notify });
  expect(sim.status).toBe(200);
  const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
  return { id: p.id as string, orderNo: attempt.channel_order_no as string, attemptId: attempt.id as string };
}

async function refund(paymentId: string, amount: number) {
  const r = await g.api('POST', `/v1/payments/${paymentId}/refunds`, { amount });
  expect(r.status).toBe(200);
  for (let i = 0; i < 50; i++) {
    const row = await g.deps.db('refunds').where({ id: r.body.id }).first();
    if (row.status === 'succeeded') return row;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('refund did not succeed');
}

/** A payment the channel never saw: a succeeded payment and attempt written straight into the database. */
async function phantomPayment(provider: Provider, channel: string, amount: number, currency = 'CNY') {
  const n = ++seq;
  const id = `pay_phantom${provider}${n}`;
  const now = Math.floor(Date.now() / 1000);
  await g.deps.db('payments').insert({
    id, app_id: g.app.app_id, livemode: false, out_trade_no: `ph_${n}`, amount, currency, subject: 'Never paid', channel, status: 'succeeded',
    amount_refunded: 0, channel_trade_no: `PH${n}`, paid_at: now, expires_at: now + 3600, metadata: '{}', checkout_token: `tok_ph_${provider}${n}`, created: now, updated_ms: Date.now(),
  });
  await g.deps.db('payment_attempts').insert({
    id: `att_phantom${provider}${n}`, payment_id: id, app_id: g.app.app_id, livemode: false, channel, provider, channel_order_no: `PHANTOM${provider}${n}`,
    status: 'succeeded', channel_trade_no: `PH${n}`, created: now, updated_ms: Date.now(),
  });
  return { id, orderNo: `PHANTOM${provider}${n}` };
}

const kinds = async (provider: Provider) =>
  (await dayDiscrepancies(g.deps.db, day(provider))).filter((d) => d.status === 'open').map((d) => `${d.kind}:${d.orderNo}${d.refundNo && !d.refundNo.startsWith('#') ? `/${d.refundNo}` : ''}`).sort();
const events = async () => (await g.deps.db('events').where({ app_id: g.app.app_id, type: 'reconciliation.discrepancy' })).map((e) => ({ ...JSON.parse(e.data).object, eventId: e.id as string }));
/** The discrepancy events written since `before` (events() then): by id, since a table scan's order is not the write order on PostgreSQL. */
const eventsSince = async (before: Array<{ eventId: string }>) => {
  const seen = new Set(before.map((e) => e.eventId));
  return (await events()).filter((e) => !seen.has(e.eventId));
};

/**
 * PayPal's money moves when the merchant captures: a missed PayPal payment is a capture whose
 * answer never reached the gateway (the approval webhook dropped, the capture sent by someone
 * else with the gateway's own request id, as a lost answer would leave it).
 */
async function captureBehindTheGatewaysBack(attemptId: string) {
  const attempt = await g.deps.db('payment_attempts').where({ id: attemptId }).first();
  const cred = (await getCredentials(g.deps, g.app.app_id, 'paypal', false)) as PaypalCredentials;
  const a = await callApi(cred, 'capture', 'POST', `/v2/checkout/orders/${attempt.channel_ref}/capture`, { requestId: `capture:${attempt.channel_ref}` });
  expect(a.ok ? a.status : JSON.stringify(a.error)).toBe(201);
}

// Per channel: the code paid with, the currency, whether the channel gives a refund's share of
// the fee back (Stripe keeps it), and what makes a paid payment one the gateway missed.
const CHANNELS: Array<{ provider: Provider; channel: string; currency: string; feeBack: boolean; miss?: (attemptId: string) => Promise<void> }> = [
  { provider: 'alipay', channel: 'alipay_pc', currency: 'CNY', feeBack: true },
  { provider: 'wechatpay', channel: 'wechat_native', currency: 'CNY', feeBack: true },
  { provider: 'unionpay', channel: 'unionpay_pc', currency: 'CNY', feeBack: true },
  { provider: 'paypal', channel: 'paypal', currency: 'USD', feeBack: true, miss: captureBehindTheGatewaysBack },
  { provider: 'stripe', channel: 'card', currency: 'USD', feeBack: false },
];

describe.each(CHANNELS)('$provider statement of the day through the simulator', ({ provider, channel, currency, feeBack, miss }) => {
  let fine: Awaited<ReturnType<typeof pay>>;
  let missed: Awaited<ReturnType<typeof pay>>;
  let tampered: Awaited<ReturnType<typeof pay>>;
  let refunded: Awaited<ReturnType<typeof pay>>;
  let refundRow: any;
  let phantom: { id: string; orderNo: string };

  beforeAll(async () => {
    fine = await pay(channel, 1000, 'normal', currency);
    missed = await pay(channel, 2300, 'drop', currency);
    await miss?.(missed.attemptId);
    tampered = await pay(channel, 1500, 'normal', currency);
    refunded = await pay(channel, 5000, 'normal', currency);
    refundRow = await refund(refunded.id, 1200);
    phantom = await phantomPayment(provider, channel, 777, currency);
    // The amount here no longer what the channel took; the refund here no longer what it gave back.
    await g.deps.db('payments').where({ id: tampered.id }).update({ amount: 1600 });
    await g.deps.db('refunds').where({ id: refundRow.id }).update({ amount: 1100 });
  });

  it('fetches the day, stores it with its hash, and reports each planted discrepancy once with its kind', async () => {
    const before = await events();
    const result = await fetchDay(g.deps, day(provider));
    expect(result.statement.status).toBe('fetched');
    expect(result.statement.sha256).toMatch(/^[0-9a-f]{64}$/);
    if (provider === 'wechatpay') expect(result.statement.channelHash).toMatch(/^SHA1:[0-9a-f]{40}$/);
    const stored = await g.deps.db('statements').where({ id: result.statement.id }).first();
    expect(crypto.createHash('sha256').update(Buffer.from(stored.file)).digest('hex')).toBe(stored.sha256);

    expect(await kinds(provider)).toEqual([
      `amount_mismatch:${tampered.orderNo}`,
      `ours_not_theirs:${phantom.orderNo}`,
      `refund_mismatch:${refunded.orderNo}/${refundRow.id}`,
      `status_mismatch:${missed.orderNo}`,
    ].sort());
    const list = await dayDiscrepancies(g.deps.db, day(provider));
    expect(list.find((d) => d.kind === 'status_mismatch')!.paymentId).toBe(missed.id);
    expect(list.find((d) => d.kind === 'refund_mismatch')).toMatchObject({ oursAmount: 1100, theirsAmount: 1200 });

    // Fees at the simulator's 0.6%, recorded line by line; the refund gives its share back.
    const rows = await statementRows(g.deps.db, result.statement.id);
    const fee = (orderNo: string, type: string) => rows.find((r) => r.orderNo === orderNo && r.type === type)!.fee;
    expect(fee(fine.orderNo, 'payment')).toBe(sandboxFee(1000));
    expect(fee(refunded.orderNo, 'payment')).toBe(sandboxFee(5000));
    expect(fee(refunded.orderNo, 'refund')).toBe(feeBack ? -sandboxFee(1200) : 0);

    const evs = await eventsSince(before);
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({ object: 'statement_day', channel: provider, date: today, livemode: false });
    expect(evs[0].new_discrepancies).toHaveLength(4);
  });

  it('re-fetching the day replaces it: no duplicate discrepancy, no second event; a resolved one stays resolved', async () => {
    const before = (await events()).length;
    const first = await dayDiscrepancies(g.deps.db, day(provider));
    const phantomOne = first.find((d) => d.kind === 'ours_not_theirs')!;
    expect(await resolveDiscrepancy(g.deps.db, scope(), phantomOne.id, 'Test row, not a real sale', 'ops@test.example')).toBe(true);
    await fetchDay(g.deps, day(provider));
    await checkDay(g.deps, day(provider));
    const again = await dayDiscrepancies(g.deps.db, day(provider));
    expect(again.map((d) => d.id).sort()).toEqual(first.map((d) => d.id).sort());
    expect(again.find((d) => d.id === phantomOne.id)).toMatchObject({ status: 'resolved', resolutionNote: 'Test row, not a real sale' });
    expect((await events()).length).toBe(before);
    expect(await g.deps.db('statements').where({ app_id: g.app.app_id, provider, bill_date: today, kind: 'trade' })).toHaveLength(1);
  });

  it('a re-check after the fix finds the discrepancy gone', async () => {
    await g.deps.db('payments').where({ id: tampered.id }).update({ amount: 1500 });
    await checkDay(g.deps, day(provider));
    const d = (await dayDiscrepancies(g.deps.db, day(provider))).find((x) => x.kind === 'amount_mismatch')!;
    expect(d.status).toBe('gone');
  });
});

describe('the channels\' formats', () => {
  it('Alipay: a zip of GBK CSV files (names without the UTF-8 flag), Chinese text intact', async () => {
    const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
    const got = await alipayStatements.fetchStatement(cred, today, 'trade');
    if (got.status !== 'fetched') throw new Error('no bill');
    const zip = got.file.body;
    expect(zip.subarray(0, 4).toString('hex')).toBe('504b0304');
    expect(zip.readUInt16LE(6) & 0x800).toBe(0);
    const texts = Object.values(unzipSync(new Uint8Array(zip))).map((b) => iconv.decode(Buffer.from(b), 'gbk'));
    const detail = texts.find((t) => t.startsWith('#支付宝业务明细查询'))!;
    expect(detail).toContain('支付宝交易号,商户订单号,业务类型,商品名称');
    expect(detail).toContain('对账测试 茶叶');
    expect(texts.some((t) => t.startsWith('#支付宝业务汇总查询'))).toBe(true);
    // Not UTF-8: the bytes of 业务 differ.
    expect(Buffer.from(Object.values(unzipSync(new Uint8Array(zip)))[0]!).includes(Buffer.from('业务', 'utf8'))).toBe(false);
  });

  it('WeChat Pay: the download is refused when its SHA1 is not the published hash_value; nothing is stored', async () => {
    const cred = (await getCredentials(g.deps, g.app.app_id, 'wechatpay', false)) as WechatpayCredentials;
    const realFetch = globalThis.fetch;
    // A man in the middle changes one amount of the bill on its way.
    globalThis.fetch = (async (input: any, init?: any) => {
      const res = await realFetch(input, init);
      if (!String(input).includes('/billdownload/file')) return res;
      const text = zlib.gunzipSync(Buffer.from(await res.arrayBuffer())).toString('utf8').replace('`10.00', '`1.00');
      return new Response(zlib.gzipSync(Buffer.from(text)), { status: 200 });
    }) as typeof fetch;
    const yesterday = beijingDate(Date.now() - 86_400_000);
    try {
      await expect(wechatpayStatements.fetchStatement(cred, today, 'trade')).rejects.toThrow(/SHA1/);
      // Through the service: the day is marked failed with the reason, and no file is kept.
      const k = day('wechatpay', today);
      const before = await findStatement(g.deps.db, k, 'trade');
      await expect(fetchDay(g.deps, k, { kinds: ['trade'] })).rejects.toThrow(/SHA1/);
      const after = await findStatement(g.deps.db, k, 'trade');
      expect(after!.sha256).toBe(before!.sha256);
      expect(after!.error).toMatch(/hash_value/);
      void yesterday;
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it('an uploaded statement whose fee total disagrees with its lines is reported as a fee mismatch', async () => {
    const cred = (await getCredentials(g.deps, g.app.app_id, 'wechatpay', false)) as WechatpayCredentials;
    const got = await wechatpayStatements.fetchStatement(cred, today, 'trade');
    if (got.status !== 'fetched') throw new Error('no bill');
    const lines = zlib.gunzipSync(got.file.body).toString('utf8').trimEnd().split('\r\n');
    const totals = lines[lines.length - 1]!.split(',');
    totals[4] = '`9.99000';
    lines[lines.length - 1] = totals.join(',');
    await uploadDay(g.deps, day('wechatpay'), 'trade', { body: Buffer.from(lines.join('\r\n') + '\r\n'), fileName: 'tradebill.csv' });
    expect((await kinds('wechatpay')).filter((k) => k.startsWith('fee_mismatch'))).toHaveLength(1);
    const st = await findStatement(g.deps.db, day('wechatpay'), 'trade');
    expect(st).toMatchObject({ source: 'upload', status: 'fetched', channelHash: null });
  });

  it('WeChat fund-flow bill is fetched and kept beside the trade bill', async () => {
    const st = await findStatement(g.deps.db, day('wechatpay'), 'fundflow');
    expect(st).toMatchObject({ status: 'fetched' });
    expect(st!.lineCount).toBeGreaterThan(4);
  });

  it('the daily job fetches yesterday once it is published; a day without business is "missing", not an error', async () => {
    const tenAm = Date.parse(`${today}T10:30:00+08:00`);
    expect(await statementPass(g.deps, tenAm)).toBeGreaterThanOrEqual(2);
    const yesterday = beijingDate(tenAm - 86_400_000);
    const st = await findStatement(g.deps.db, day('alipay', yesterday), 'trade');
    expect(st).toMatchObject({ status: 'missing' });
    // Claimed and done: the next pass has nothing to do.
    expect(await statementPass(g.deps, tenAm + 60_000)).toBe(0);
  });
});

describe('the console', () => {
  let c: ConsoleClient;
  beforeAll(async () => {
    await createConsoleUser(g.deps.db, { email: 'finance@test.example', appId: g.app.app_id, password: 'a long enough passphrase' });
    c = new ConsoleClient(g.url);
    expect((await c.login('finance@test.example', 'a long enough passphrase')).status).toBe(303);
  });

  it('opens on a range with data: statuses per day and channel, the summary with fees and a total, SVG charts', async () => {
    const page = await c.get('/console/reconciliation');
    expect(page.status).toBe(200);
    expect(page.text).toContain(`<td>${today}</td>`);
    expect(page.text).toMatch(new RegExp(`data-statement="alipay" data-status="fetched"><a href="/console/reconciliation/statements/alipay/${today}">fetched, \\d+ open`));
    expect(page.text).toMatch(/<svg class="chart" role="img"/);
    expect(page.text).not.toMatch(/<script(?! nonce)/);
    const fees = [...page.text.matchAll(/<tr data-day="[^"]+" data-channel="alipay_pc" data-currency="CNY">[\s\S]*?data-fees="(\d+)"/g)].map((m) => Number(m[1]));
    expect(fees[0]).toBeGreaterThan(0);
    expect(page.text).toMatch(/data-total data-currency="CNY"/);
  });

  it('the day report links each discrepancy to its payment; resolve with a note and re-check from the page', async () => {
    const path = `/console/reconciliation/statements/alipay/${today}`;
    const report = await c.get(path);
    expect(report.status).toBe(200);
    const open = [...report.text.matchAll(/<tr data-discrepancy="(\w+)" data-status="open"[\s\S]*?href="\/console\/payments\/(pay_\w+)"[\s\S]*?discrepancies\/(disc_\w+)\/resolve/g)];
    expect(open.length).toBeGreaterThan(0);
    const [, , paymentId, discId] = open[0]!;
    expect((await c.get(`/console/payments/${paymentId}`)).status).toBe(200);
    const token = await c.tokenFrom(path);
    const resolved = await c.post(`/console/reconciliation/statements/discrepancies/${discId}/resolve`, { _csrf: token, note: 'Checked with the bank' });
    expect(resolved.status).toBe(303);
    expect((await c.get(path)).text).toContain('Checked with the bank');
    const recheck = await c.post(`${path}/recheck`, { _csrf: token });
    expect(recheck.status).toBe(303);
    expect((await c.get(path)).text).toContain('Checked with the bank');
  });

  it('uploads a statement file for a day from the form (multipart), stored and checked', async () => {
    const cred = (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
    const got = await alipayStatements.fetchStatement(cred, today, 'trade');
    if (got.status !== 'fetched') throw new Error('no bill');
    const token = await c.tokenFrom('/console/reconciliation');
    const form = new FormData();
    form.set('_csrf', token);
    form.set('channel', 'alipay');
    form.set('kind', 'trade');
    form.set('date', today);
    form.set('file', new Blob([new Uint8Array(got.file.body)]), 'bill.csv.zip');
    const res = await fetch(`${g.url}/console/reconciliation/statements/upload`, {
      method: 'POST', body: form, redirect: 'manual',
      headers: { origin: new URL(g.url).origin, cookie: [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    expect(res.status).toBe(303);
    expect(await findStatement(g.deps.db, day('alipay'), 'trade')).toMatchObject({ source: 'upload', status: 'fetched' });
    // Without the form token the upload is refused like any console form.
    form.set('_csrf', 'nope');
    const refused = await fetch(`${g.url}/console/reconciliation/statements/upload`, {
      method: 'POST', body: form, redirect: 'manual', headers: { origin: new URL(g.url).origin, cookie: [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    expect(refused.status).toBe(403);
  });
});
