// npm run bench:console [-- <DATABASE_URL> [--schema NAME]]
// The merchant console's pages at a million payments (issue 16, Performance), each against the
// 300 ms goal in server time: the gateway (bench/console-gateway.ts, its own process) stamps a
// Server-Timing header when it writes the headers, so the figures leave out the client and the
// loopback. A hello world is timed the same way in the same run (the gateway's `/`), and a bare
// Express hello world from the client side for scale. The full range's CSV is streamed whole
// with the gateway's RSS sampled from /proc before, during and after.
//
// Without arguments it runs on SQLite (data/bench-console.db) and on PostgreSQL
// ($BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/test, schema bench_console). A
// database without a seed is seeded first by bench/seed.ts with BENCH_PAYMENTS payments
// (default 1,000,000) and a tenth as many refunds; the bench then adds what the seed has no
// part in: a notify and a query channel message per paid attempt (the payment page's
// timeline), 90 days of Alipay trade statements built from the main app's paid Alipay attempts,
// and one day's discrepancies.
import fs from 'node:fs';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Knex } from 'knex';
import { createDb, isPostgres, migrate } from '../server/db.ts';
import { beijingDate, beijingRange } from '../server/dashboard/format.ts';
import { spawnBenchChild } from './child.ts';
import { infoPath, type SeedInfo } from './seed-info.ts';
import { downloadCsv } from './measure.ts';

const GOAL_MS = 300;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const N = Number(process.env.BENCH_PAYMENTS ?? 1_000_000);
const MARKER = 'bench-console';

const args = process.argv.slice(2);
const schemaAt = args.indexOf('--schema');
const argUrl = args.find((a, i) => !a.startsWith('--') && !(schemaAt >= 0 && i === schemaAt + 1));
const targets: Array<{ url: string; schema?: string }> = argUrl
  ? [{ url: argUrl, schema: schemaAt >= 0 ? args[schemaAt + 1] : undefined }]
  : [
      { url: 'sqlite:data/bench-console.db' },
      { url: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', schema: 'bench_console' },
    ];
if (targets.some((t) => t.url.startsWith('postgres') && !t.schema)) {
  console.error('usage: tsx bench/console.ts [sqlite:FILE | postgres://… --schema NAME]');
  process.exit(2);
}

/** The seed's description, seeding first when there is none. */
function seedOf(url: string, schema?: string): SeedInfo {
  const file = infoPath(url, schema);
  if (!fs.existsSync(file)) {
    console.log(`seeding ${url}${schema ? ` schema ${schema}` : ''} with ${N} payments (bench/seed.ts)…`);
    const seeded = spawnSync(process.execPath, ['--import', 'tsx', 'bench/seed.ts', url, ...(schema ? ['--schema', schema] : []), '--payments', String(N)], { stdio: 'inherit' });
    if (seeded.status !== 0) throw new Error(`bench/seed.ts exited with ${seeded.status}`);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as SeedInfo;
}

/**
 * What the console's pages read and the seed does not write, added once (the marker statement
 * says it is there): channel messages, 90 days of statements with their rows, a day's discrepancies.
 */
async function addConsoleData(db: Knex, info: SeedInfo, reportDay: string): Promise<void> {
  const main = info.apps[0].app_id;
  if (await db('statements').where({ app_id: main, file_name: MARKER }).first('id')) return;
  const t = performance.now();
  const pg = isPostgres(db);
  const cat = (...parts: string[]) => (pg ? parts.join(' || ') : parts.join(' || '));
  // A notify (in) and a query (out) per paid attempt, with a body of the size a real one has.
  for (const [kind, direction, offset] of [['notify', 'in', 5], ['query', 'out', 30]] as const) {
    await db.raw(`insert into channel_messages (id, app_id, livemode, provider, kind, direction, payment_id, attempt_id, order_no, http_status, verification, body, body_bytes, duration_ms, created_ms)
      select ${cat(`'cm${kind[0]}_'`, 'a.id')}, a.app_id, a.livemode, a.provider, '${kind}', '${direction}', a.payment_id, a.id, a.channel_order_no, 200, 'verified',
             ${cat(`'{"out_trade_no":"'`, 'a.channel_order_no', `'","trade_no":"'`, 'a.channel_trade_no', `'","trade_status":"TRADE_SUCCESS","total_amount":"'`, pg ? 'p.amount::text' : 'p.amount', `'"}'`)}, 180, 12,
             (a.created + ${offset}) * 1000
        from payment_attempts a join payments p on p.id = a.payment_id where a.status = 'succeeded'`);
  }
  // The main app's Alipay trade statements of the last 90 days, one row per paid Alipay attempt, fee 0.6%.
  const last = beijingDate(info.seeded_at * 1000);
  for (let i = 0; i < 90; i++) {
    const date = beijingDate(info.seeded_at * 1000 - i * 86_400_000);
    const { start, end } = beijingRange(date, date)!;
    const id = `stmt_${crypto.randomBytes(10).toString('hex')}`;
    await db('statements').insert({
      id, app_id: main, livemode: true, provider: 'alipay', bill_date: date, kind: 'trade', status: 'fetched', source: 'upload',
      file: Buffer.from('bench'), file_name: date === last ? MARKER : `${MARKER}-${date}`, sha256: crypto.createHash('sha256').update(date).digest('hex'),
      line_count: 0, attempts: 1, fetched_at: end, checked_at: end, created: end, updated_ms: end * 1000,
    });
    await db.raw(`insert into statement_rows (statement_id, line, type, order_no, channel_trade_no, amount, fee, currency, channel_status, time, channel)
      select ?, 1, 'payment', a.channel_order_no, a.channel_trade_no, p.amount, (p.amount * 6 + 500) / 1000, p.currency, 'TRADE_SUCCESS', p.paid_at, a.channel
        from payments p join payment_attempts a on a.payment_id = p.id and a.status = 'succeeded'
       where p.app_id = ? and p.livemode = ? and p.status = 'succeeded' and p.paid_at >= ? and p.paid_at < ? and a.provider = 'alipay'`, [id, main, pg ? true : 1, start, end]);
  }
  // The report day: 200 discrepancies of every kind, linked to that day's payments.
  const { start, end } = beijingRange(reportDay, reportDay)!;
  const paid = await db('payments').where({ app_id: main, livemode: true, status: 'succeeded' }).where('paid_at', '>=', start).where('paid_at', '<', end)
    .whereIn('channel', ['alipay_pc', 'alipay_wap', 'alipay_qr']).orderBy('paid_at').limit(200).select('id', 'amount', 'out_trade_no');
  const kinds = ['ours_not_theirs', 'theirs_not_ours', 'amount_mismatch', 'status_mismatch', 'refund_mismatch', 'fee_mismatch'];
  const now = Math.floor(Date.now() / 1000);
  const rows = paid.map((p: any, i: number) => ({
    id: `disc_${crypto.randomBytes(10).toString('hex')}`, app_id: main, livemode: true, provider: 'alipay', bill_date: reportDay, kind: kinds[i % kinds.length],
    order_no: `bench${i}${p.out_trade_no}`.slice(0, 64), refund_no: '', payment_id: p.id, ours_amount: Number(p.amount), theirs_amount: Number(p.amount) + (i % 3),
    ours_status: 'succeeded', theirs_status: 'TRADE_SUCCESS', currency: 'CNY', detail: 'Planted by bench/console.ts', status: i % 10 === 0 ? 'resolved' : 'open',
    created: now, updated_ms: now * 1000,
  }));
  for (let i = 0; i < rows.length; i += 50) await db('statement_discrepancies').insert(rows.slice(i, i + 50));
  if (pg) for (const table of ['channel_messages', 'statements', 'statement_rows', 'statement_discrepancies']) await db.raw('analyze ??', [table]);
  console.log(`added channel messages, 90 days of statements and ${rows.length} discrepancies in ${((performance.now() - t) / 1000).toFixed(0)} s`);
}

/** The gateway's RSS in bytes, from /proc (Linux). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function benchTarget(target: { url: string; schema?: string }, hello: string) {
  const info = seedOf(target.url, target.schema);
  const db = createDb(target.url, { schema: target.schema });
  await migrate(db); // 044 and whatever else came after the seed
  const reportDay = beijingDate((info.seeded_at - 3 * 86_400) * 1000);
  await addConsoleData(db, info, reportDay);
  const main = info.apps[0];
  const old = await db('payments').where({ app_id: main.app_id, livemode: true, status: 'succeeded' }).where('created', '<', info.start + 20 * 86_400).orderBy('created').first();
  // A page deep in time: the newest payment of the seed's first 20 days (about 11 months back).
  const deep = await db('payments').where({ app_id: main.app_id, livemode: true, status: 'succeeded' }).where('created', '<', info.start + 20 * 86_400).orderBy([{ column: 'created', order: 'desc' }, { column: 'id', order: 'desc' }]).first();
  const oldRefund = await db('refunds').where({ app_id: main.app_id, livemode: true }).where('created', '<', info.start + 40 * 86_400).orderBy('created').first('payment_id');
  const oldAttempt = await db('payment_attempts').where({ payment_id: old.id, status: 'succeeded' }).first('channel_trade_no');
  await db.destroy();

  const child = spawnBenchChild('bench/console-gateway.ts', {
    BENCH_DATABASE_URL: target.url, BENCH_SCHEMA: target.schema ?? '', BENCH_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
  });
  const { url, pid } = await child.next<{ url: string; pid: number }>();
  try {
    const cookies = new Map<string, string>();
    const request = async (method: string, p: string, form?: Record<string, string>) => {
      const headers: Record<string, string> = { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
      if (form) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        headers.origin = new URL(url).origin;
      }
      const t = performance.now();
      const res = await fetch(url + p, { method, headers, body: form ? new URLSearchParams(form).toString() : undefined, redirect: 'manual' });
      const body = await res.text();
      const clientMs = performance.now() - t;
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair.indexOf('=');
        cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      const timing = /dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '');
      return { status: res.status, body, serverMs: timing ? Number(timing[1]) : NaN, clientMs };
    };
    const token = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)![1];
    const login = await request('POST', '/console/login', { _csrf: token((await request('GET', '/console/login')).body), email: info.console.email, password: info.console.password });
    if (login.status !== 303) throw new Error(`console login failed: ${login.status}`);
    // The main app's live mode, where nearly all of its payments are.
    const switched = await request('POST', '/console/mode', { _csrf: token((await request('GET', '/console/payments')).body), mode: 'live' });
    if (switched.status !== 303) throw new Error(`console mode switch failed: ${switched.status}`);

    const timed = async (p: string, expect?: RegExp) => {
      const first = await request('GET', p);
      if (first.status !== 200) throw new Error(`${p}: ${first.status} ${first.body.slice(0, 300)}`);
      if (expect && !expect.test(first.body)) throw new Error(`${p}: the page lacks ${expect}`);
      const server: number[] = [];
      for (let i = 0; i < RUNS; i++) server.push((await request('GET', p)).serverMs);
      return median(server);
    };
    const helloMs = await timed('/');
    const bare: number[] = [];
    for (let i = 0; i < RUNS + 1; i++) {
      const t = performance.now();
      await (await fetch(hello)).text();
      if (i) bare.push(performance.now() - t);
    }
    const results: Array<[string, number]> = [];
    const measure = async (name: string, p: string, expect?: RegExp) => {
      const ms = await timed(p, expect);
      results.push([name, ms]);
      console.log(`  ${name.padEnd(58)} ${ms.toFixed(1).padStart(7)} ms  ${(ms / helloMs).toFixed(0).padStart(5)}× hello   goal ≤ ${GOAL_MS} ms  ${ms <= GOAL_MS ? 'ok' : 'OVER'}`);
    };
    const today = beijingDate(info.seeded_at * 1000);
    const daysBack = (n: number) => beijingDate((info.seeded_at - (n - 1) * 86_400) * 1000);
    console.log(`${target.url}${target.schema ? ` (schema ${target.schema})` : ''}: ${JSON.stringify(info.counts)}`);
    console.log(`  hello world, the gateway's / (server time)                    ${helloMs.toFixed(2).padStart(7)} ms; bare Express hello world (client time) ${median(bare).toFixed(2)} ms`);
    const row = /data-payment-id=/;
    await measure('payments, first page', '/console/payments', row);
    await measure('payments ?status=succeeded&channel=alipay_pc, last 7 days', `/console/payments?status=succeeded&channel=alipay_pc&from=${daysBack(7)}&to=${today}`, row);
    await measure('payments ?status=pending&channel=wechat_app, 90 days (rare)', `/console/payments?status=pending&channel=wechat_app&from=${daysBack(90)}&to=${today}`);
    await measure('payments ?status=succeeded&channel=alipay_pc, a month ago', `/console/payments?status=succeeded&channel=alipay_pc&from=${daysBack(60)}&to=${daysBack(31)}`, row);
    await measure('payments, last 30 days, ¥500–¥800', `/console/payments?from=${daysBack(30)}&to=${today}&amount_min=500&amount_max=800`);
    await measure('payments, a deep page (11 months, cursor)', `/console/payments?starting_after=${deep.id}`, row);
    await measure('payments, a deep page filtered by status+channel+date', `/console/payments?status=succeeded&channel=${deep.channel}&from=${beijingDate(info.start * 1000)}&to=${beijingDate((info.start + 60 * 86_400) * 1000)}&starting_after=${deep.id}`, row);
    await measure('payments, search by out_trade_no', `/console/payments?q=${encodeURIComponent(old.out_trade_no)}`, row);
    await measure('payments, search by channel trade no', `/console/payments?q=${encodeURIComponent(oldAttempt.channel_trade_no)}`, row);
    await measure("a payment's page (11 months old, refunded, timeline)", `/console/payments/${oldRefund.payment_id}`, /notif/i);
    await measure('reconciliation summary, 90 days', `/console/reconciliation?from=${daysBack(90)}&to=${today}`);
    await measure(`discrepancy report, alipay ${reportDay}`, `/console/reconciliation/statements/alipay/${reportDay}`, /Planted by bench/);

    // The whole seeded range's CSV: every row, streamed, twice; the gateway's memory must stay flat.
    const from = beijingDate(info.start * 1000);
    const mb = (x: number) => (x / 1e6).toFixed(0);
    const streamCsv = async () => {
      await new Promise((r) => setTimeout(r, 500));
      const before = rssOf(pid);
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(rssOf(pid)), 100);
      const t = performance.now();
      const { lines, bytes, contentLength } = await downloadCsv(`${url}/console/reconciliation/transactions.csv?from=${from}&to=${today}`, cookies);
      const ms = performance.now() - t;
      clearInterval(sampler);
      await new Promise((r) => setTimeout(r, 1000));
      const half = Math.floor(samples.length / 2);
      return {
        rows: lines - 1, bytes, ms, before, after: rssOf(pid), peak: Math.max(before, ...samples),
        firstHalf: Math.max(before, ...samples.slice(0, half)), secondHalf: Math.max(before, ...samples.slice(half)),
        contentLength,
      };
    };
    let csv = 'failed';
    let flat = false;
    try {
      const one = await streamCsv();
      const two = await streamCsv();
      // Flat: nothing held grows with the rows. Its second half peaks no higher than its first (plus
      // V8's heap settling), and a second export of the same range peaks no higher than the first.
      flat = one.secondHalf - one.firstHalf < 48e6 && two.peak - one.peak < 48e6;
      csv = `${one.rows} rows, ${mb(one.bytes)} MB in ${(one.ms / 1000).toFixed(1)} s (${Math.round(one.rows / (one.ms / 1000))} rows/s), content-length ${one.contentLength ?? 'none'}; gateway RSS ${mb(one.before)} MB before, peak ${mb(one.firstHalf)} MB in the first half and ${mb(one.secondHalf)} MB in the second, ${mb(one.after)} MB after; a second export peaks at ${mb(two.peak)} MB, ${mb(two.after)} MB after: ${flat ? 'flat' : 'NOT FLAT'}`;
    } catch (err) {
      csv = `failed: ${String((err as Error).cause ?? err)}`;
    }
    console.log(`  CSV ${from} – ${today}: ${csv}`);
    const over = results.filter(([, ms]) => ms > GOAL_MS);
    console.log(`  ${over.length ? `${over.length} of ${results.length} over ${GOAL_MS} ms: ${over.map(([n]) => n).join('; ')}` : `all ${results.length} within ${GOAL_MS} ms`}`);
    return over.length + (flat ? 0 : 1);
  } finally {
    await child.kill();
  }
}

const helloApp = express();
helloApp.disable('x-powered-by');
helloApp.get('/', (_req, res) => {
  res.json({ hello: 'world' });
});
const helloServer = helloApp.listen(0, '127.0.0.1');
await new Promise((r) => helloServer.once('listening', r));
const hello = `http://127.0.0.1:${(helloServer.address() as AddressInfo).port}/`;
let over = 0;
try {
  for (const target of targets) over += await benchTarget(target, hello);
} finally {
  helloServer.close();
}
process.exitCode = over ? 1 : 0;
