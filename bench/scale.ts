// Scaling out on PostgreSQL (issue 17): one gateway process, then two on the same database,
// both on this machine, for create-payment and for notifies (each with its webhook delivered to
// a receiver here). Goal: two processes give ≥ 1.6× one. Beside each rate the CPU time per
// operation of every part that shares the 2 cores: the gateway processes, their PostgreSQL
// backends and this process (the load generator and the receiver), so that what bounds a run
// can be read off it.
//   BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test), BENCH_SCALE_SECONDS (8),
//   BENCH_SCALE_CONNECTIONS (total, split over the processes; 32), BENCH_SCALE_NOTIFIES (per run; 4000).
import fs from 'node:fs';
import http from 'node:http';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import type { Knex } from 'knex';
import { createDb, migrate } from '../server/db.ts';
import { createApp } from '../server/apps/service.ts';
import { randomId } from '../server/crypto.ts';
import { findMerchant, findOrder, type SandboxMerchant, type SandboxOrder } from '../server/sandbox/alipay/store.ts';
import { tradeNotifyParams } from '../server/sandbox/alipay/notify.ts';
import { spawnBenchChild, type BenchChild } from './child.ts';

const GOAL = 1.6;
const baseUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const seconds = Number(process.env.BENCH_SCALE_SECONDS ?? 8);
const connections = Number(process.env.BENCH_SCALE_CONNECTIONS ?? 32);
const notifyCount = Number(process.env.BENCH_SCALE_NOTIFIES ?? 4000);

const schema = `bench_${randomId(12).toLowerCase()}`;
// Tagged, so that this run's PostgreSQL backends can be told from everyone else's.
const databaseUrl = `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}application_name=${schema}`;
const masterKey = crypto.randomBytes(32);

interface Gw {
  child: BenchChild;
  url: string;
}

async function startGw(): Promise<Gw> {
  const child = spawnBenchChild('bench/scale-gateway.ts', {
    BENCH_DATABASE_URL: databaseUrl,
    BENCH_SCHEMA: schema,
    BENCH_MASTER_KEY: masterKey.toString('base64'),
  });
  const { url } = await child.next<{ url: string }>();
  return { child, url };
}

const ticks = (pid: number): number => {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
  } catch {
    return 0;
  }
};

/** CPU of this run's PostgreSQL backends, in µs (backends that ended meanwhile are missed). */
async function pgCpuUs(db: Knex): Promise<Map<number, number>> {
  const { rows } = await db.raw('select pid from pg_stat_activity where application_name = ?', [schema]);
  return new Map(rows.map((r: { pid: number }) => [r.pid, ticks(r.pid) * 10_000]));
}

interface Measured {
  ops: number;
  wallS: number;
  gatewayUs: number[];
  pgUs: number;
  benchUs: number;
}

/** Runs `load` with CPU accounting on every process that takes part. */
async function measure(db: Knex, gws: Gw[], load: () => Promise<number>): Promise<Measured> {
  const pg0 = await pgCpuUs(db);
  for (const g of gws) await g.child.command('start');
  const bench0 = process.cpuUsage();
  const t0 = performance.now();
  const ops = await load();
  const wallS = (performance.now() - t0) / 1000;
  const bench = process.cpuUsage(bench0);
  const gatewayUs = [];
  for (const g of gws) gatewayUs.push((await g.child.command<{ cpuUs: number }>('stop')).cpuUs);
  const pg1 = await pgCpuUs(db);
  let pgUs = 0;
  for (const [pid, us] of pg1) pgUs += us - (pg0.get(pid) ?? 0);
  return { ops, wallS, gatewayUs, pgUs, benchUs: bench.user + bench.system };
}

function describe(name: string, m: Measured): string {
  const per = (us: number) => (us / 1000 / m.ops).toFixed(2);
  const cores = (us: number) => (us / 1e6 / m.wallS).toFixed(2);
  const gw = m.gatewayUs.map((us) => `${per(us)} ms (${cores(us)} core)`).join(' + ');
  return `${name.padEnd(34)} ${(m.ops / m.wallS).toFixed(0).padStart(6)}/s   CPU per op: gateway ${gw}, PostgreSQL ${per(m.pgUs)} ms (${cores(m.pgUs)} core), load generator ${per(m.benchUs)} ms (${cores(m.benchUs)} core)`;
}

const cannon = (opts: autocannon.Options) =>
  new Promise<autocannon.Result>((resolve, reject) => autocannon(opts, (err, r) => (err ? reject(err) : resolve(r))));

let orderSeq = 0;
/** create-payment on every process at once, the connections split between them; resolves with requests done. */
async function createPayments(gws: Gw[], key: string, duration: number): Promise<number> {
  const results = await Promise.all(gws.map((g) => cannon({
    url: `${g.url}/v1/payments`,
    method: 'POST',
    duration,
    connections: Math.max(1, Math.round(connections / gws.length)),
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ amount: 100, subject: 'Bench order', out_trade_no: `scale_${schema}_${++orderSeq}` }) }) }],
  })));
  for (const r of results) if (r.non2xx || r.errors) console.log(`  WARNING: create-payment run had ${r.non2xx} non-2xx and ${r.errors} errors`);
  return results.reduce((n, r) => n + r.requests.total - r.non2xx - r.errors, 0);
}

/**
 * Pending payments with an attempt each, copied from one paid at the simulator (as the webhook
 * bench does), and their genuine signed notifies.
 */
async function prepareNotifies(db: Knex, gw: Gw, key: string, count: number): Promise<Array<{ payment: string; body: string }>> {
  const api = async (p: string, body: unknown) => {
    const res = await fetch(gw.url + p, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const first = await api('/v1/payments', { amount: 100, subject: 'Bench tea', out_trade_no: `tpl_${randomId(8)}` });
  await api(`/v1/test_helpers/payments/${first.id}/simulate`, { channel: 'alipay_pc', notify: 'drop' });
  const payment = await db('payments').where({ id: first.id }).first();
  const attempt = await db('payment_attempts').where({ payment_id: first.id }).first();
  // The simulator keeps the trade under the merchant's Alipay app id.
  const trade = await db('sandbox_orders').where({ provider: 'alipay', out_trade_no: attempt.channel_order_no }).first('merchant_id');
  const merchant: SandboxMerchant | undefined = trade && (await findMerchant(db, masterKey, trade.merchant_id));
  const order: SandboxOrder | undefined = trade && (await findOrder(db, trade.merchant_id, { outTradeNo: attempt.channel_order_no }));
  if (!merchant || !order) throw new Error('scale bench: the simulated template trade was not found');
  const notifies: Array<{ payment: string; body: string }> = [];
  const now = Date.now();
  for (let start = 0; start < count; start += 500) {
    const payments = [];
    const attempts = [];
    for (let i = start; i < Math.min(count, start + 500); i++) {
      const id = `pay_scale${schema.slice(6)}${i}`;
      const orderNo = `cs${crypto.randomBytes(15).toString('hex')}`;
      payments.push({ ...payment, id, out_trade_no: `scale_n_${i}`, checkout_token: randomId(32), updated_ms: now });
      attempts.push({ ...attempt, id: `att_scale${schema.slice(6)}${i}`, payment_id: id, channel_order_no: orderNo, updated_ms: now });
      const o: SandboxOrder = { ...order, outTradeNo: orderNo, tradeNo: `2026${String(i).padStart(24, '0')}` };
      notifies.push({ payment: id, body: new URLSearchParams(tradeNotifyParams(merchant, o, crypto.randomBytes(12).toString('hex'))).toString() });
    }
    await db('payments').insert(payments);
    await db('payment_attempts').insert(attempts);
  }
  return notifies;
}

/** Posts the notifies, closed loop, spread over the processes; resolves once every webhook has arrived. */
async function postNotifies(gws: Gw[], appId: string, notifies: Array<{ payment: string; body: string }>, received: Set<string>): Promise<number> {
  let refused = 0;
  const per = Math.ceil(notifies.length / gws.length);
  await Promise.all(gws.map((g, gi) => {
    const mine = notifies.slice(gi * per, (gi + 1) * per);
    let next = 0;
    return cannon({
      url: `${g.url}/notify/alipay/${appId}`,
      method: 'POST',
      connections: Math.max(1, Math.round(connections / gws.length)),
      amount: mine.length,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      requests: [{ setupRequest: (req) => ({ ...req, body: mine[next++ % mine.length].body }), onResponse: (status, body) => { if (status !== 200 || body !== 'success') refused++; } }],
    });
  }));
  const deadline = Date.now() + 60_000;
  const wanted = notifies.filter((n) => !received.has(n.payment));
  while (wanted.some((n) => !received.has(n.payment)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const missing = notifies.filter((n) => !received.has(n.payment)).length;
  if (refused || missing) console.log(`  WARNING: ${refused} notifies refused, ${missing} webhooks missing`);
  return notifies.length - missing;
}

export async function scaleBench(): Promise<{ create: number; notify: number }> {
  const db = createDb(databaseUrl, { schema });
  await migrate(db);
  const app = await createApp(db, { name: 'Scale bench' });
  const received = new Set<string>();
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('end', () => {
      try {
        received.add(JSON.parse(Buffer.concat(chunks).toString()).data.object.id);
      } catch {
        // not a payment event
      }
      res.writeHead(204).end();
    });
  });
  receiver.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const gws: Gw[] = [];
  try {
    gws.push(await startGw());
    const hook = await fetch(`${gws[0].url}/v1/webhook_endpoints`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.secret_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`, enabled_events: ['payment.succeeded'] }),
    });
    if (!hook.ok) throw new Error(`webhook endpoint: ${hook.status} ${await hook.text()}`);
    const prepStarted = Date.now();
    const notifies = await prepareNotifies(db, gws[0], app.secret_key, 2 * notifyCount);
    console.log(`scale-out on PostgreSQL (${connections} connections in all, ${seconds} s per create run, ${notifyCount} notifies per run; ${notifies.length} notifies prepared in ${((Date.now() - prepStarted) / 1000).toFixed(1)} s)`);

    await createPayments(gws, app.secret_key, 2); // warm-up
    const one = await measure(db, gws, () => createPayments(gws, app.secret_key, seconds));
    console.log(describe('POST /v1/payments, 1 process', one));
    const oneN = await measure(db, gws, () => postNotifies(gws, app.app_id, notifies.slice(0, notifyCount), received));
    console.log(describe('notify → webhook, 1 process', oneN));

    gws.push(await startGw());
    await createPayments(gws.slice(1), app.secret_key, 2); // warm-up of the second
    const two = await measure(db, gws, () => createPayments(gws, app.secret_key, seconds));
    console.log(describe('POST /v1/payments, 2 processes', two));
    const twoN = await measure(db, gws, () => postNotifies(gws, app.app_id, notifies.slice(notifyCount), received));
    console.log(describe('notify → webhook, 2 processes', twoN));

    const rate = (m: Measured) => m.ops / m.wallS;
    const create = rate(two) / rate(one);
    const notify = rate(twoN) / rate(oneN);
    const verdict = (x: number) => `${x.toFixed(2)}× (${x >= GOAL ? 'meets' : 'MISSES'} the goal of ≥ ${GOAL}×)`;
    console.log(`two processes / one: create-payment ${verdict(create)}, notify → webhook ${verdict(notify)}`);
    return { create, notify };
  } finally {
    for (const g of gws) await g.child.kill();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
    await db.raw(`drop schema if exists "${schema}" cascade`).catch(() => undefined);
    await db.destroy();
  }
}

// Run alone: tsx bench/scale.ts
if (import.meta.url === `file://${process.argv[1]}`) await scaleBench();
