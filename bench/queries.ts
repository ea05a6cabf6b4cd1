// npm run bench:queries -- <DATABASE_URL> [--schema NAME]
// Times the console's and the API's reads on a database seeded by bench/seed.ts (a million
// payments), each against its 300 ms goal: a gateway runs in this process on that database
// (no workers) and each figure is the median of 5 requests over loopback after one warm-up.
// The 31-day CSV is timed whole, with the process's RSS growth while it streams.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { startGateway } from '../server/index.ts';
import { summarize } from '../server/dashboard/reconciliation.ts';
import { beijingDate, beijingRange } from '../server/dashboard/format.ts';
import { infoPath, type SeedInfo } from './seed-info.ts';
import { downloadCsv } from './measure.ts';

const args = process.argv.slice(2);
const url = args.find((a) => !a.startsWith('--'));
const schemaAt = args.indexOf('--schema');
const schema = schemaAt >= 0 ? args[schemaAt + 1] : undefined;
if (!url) {
  console.error('usage: tsx bench/queries.ts sqlite:FILE | postgres://… --schema NAME');
  process.exit(2);
}
const info = JSON.parse(fs.readFileSync(infoPath(url, schema), 'utf8')) as SeedInfo;
const GOAL_MS = 300;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-bench-'));
const migrateStarted = Date.now();
const gateway = await startGateway(
  loadConfig({}, {
    port: 0, databaseUrl: url, databaseSchema: schema, masterKey: crypto.randomBytes(32).toString('base64'), dataDir: dir,
    demo: 'false', workers: 'false', apiRateLimit: 0, cashierRateLimit: 1_000_000_000,
  }),
  createLogger('silent'),
);
const startupMs = Date.now() - migrateStarted;
const db = gateway.deps.db;
const main = info.apps[0];
const scope = { appId: main.app_id, livemode: true };

// Probes: values a merchant would look up, taken from the oldest month of the main app.
const old = await db('payments').where({ app_id: main.app_id, livemode: true, status: 'succeeded' }).where('created', '<', info.start + 20 * 86_400).orderBy('created').first();
const oldRefunded = await db('refunds').where({ app_id: main.app_id, livemode: true }).where('created', '<', info.start + 40 * 86_400).orderBy('created').first();
const deepRefund = await db('refunds').where({ app_id: main.app_id, livemode: true }).where('created', '<', info.start + 30 * 86_400).orderBy('created', 'desc').first('id');
const oldAttempt = await db('payment_attempts').where({ payment_id: old.id, status: 'succeeded' }).first();
const deepEvent = await db('events').where({ app_id: main.app_id, livemode: true }).where('created', '<', info.start + 30 * 86_400).orderBy('created', 'desc').first('id');

// A console session, through the login form as a browser does.
const cookies = new Map<string, string>();
async function consoleRequest(method: string, p: string, form?: Record<string, string>): Promise<Response> {
  const headers: Record<string, string> = { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  if (form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers.origin = new URL(gateway.url).origin;
  }
  const res = await fetch(gateway.url + p, { method, headers, body: form ? new URLSearchParams(form).toString() : undefined, redirect: 'manual' });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const eq = pair.indexOf('=');
    cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return res;
}
const loginPage = await (await consoleRequest('GET', '/console/login')).text();
const loginToken = /name="_csrf" value="([^"]+)"/.exec(loginPage)![1];
const login = await consoleRequest('POST', '/console/login', { _csrf: loginToken, email: info.console.email, password: info.console.password });
if (login.status !== 303) throw new Error(`console login failed: ${login.status}`);
// The main app's live mode, where nearly all of its payments are.
const formToken = /name="_csrf" value="([^"]+)"/.exec(await (await consoleRequest('GET', '/console/payments')).text())![1];
const switched = await consoleRequest('POST', '/console/mode', { _csrf: formToken, mode: 'live' });
if (switched.status !== 303) throw new Error(`console mode switch failed: ${switched.status}`);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}
async function page(p: string) {
  const res = await consoleRequest('GET', p);
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${p}: ${res.status} ${body.slice(0, 200)}`);
  return body;
}
async function api(p: string) {
  const res = await fetch(gateway.url + p, { headers: { authorization: `Bearer ${main.live_secret_key}` } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${p}: ${res.status} ${body.slice(0, 200)}`);
  return body;
}

const today = beijingDate(info.seeded_at * 1000);
const daysBack = (n: number) => beijingDate((info.seeded_at - (n - 1) * 86_400) * 1000);
const results: Array<[string, number]> = [];
const measure = async (name: string, fn: () => Promise<unknown>) => {
  const ms = await timed(fn);
  results.push([name, ms]);
  console.log(`${name.padEnd(58)} ${ms.toFixed(0).padStart(6)} ms   goal ≤ ${GOAL_MS} ms   ${ms <= GOAL_MS ? 'ok' : 'OVER'}`);
};

console.log(`${url}${schema ? ` (schema ${schema})` : ''}: ${JSON.stringify(info.counts)}; gateway start with migrations ${startupMs} ms`);
await measure('console search by out_trade_no (old payment)', () => page(`/console/payments?q=${encodeURIComponent(old.out_trade_no)}`));
await measure('console search by channel trade number', () => page(`/console/payments?q=${encodeURIComponent(oldAttempt.channel_trade_no)}`));
await measure('console search that finds nothing', () => page('/console/payments?q=no_such_order_number'));
await measure('console payments, first page', () => page('/console/payments'));
await measure('console payments, page 11 months deep', () => page(`/console/payments?starting_after=${old.id}`));
await measure('console payments, page 11 months deep, newer', () => page(`/console/payments?ending_before=${old.id}`));
await measure('API GET /v1/payments?limit=100, 11 months deep', () => api(`/v1/payments?limit=100&starting_after=${old.id}`));
await measure('API GET /v1/events?limit=100, 11 months deep', () => api(`/v1/events?limit=100&starting_after=${deepEvent.id}`));
await measure('console payments ?status=closed', () => page('/console/payments?status=closed'));
await measure('console payments ?channel=wechat_app (1%)', () => page('/console/payments?channel=wechat_app'));
await measure('console payments ?channel=unionpay_pc (none)', () => page('/console/payments?channel=unionpay_pc'));
await measure('console payments ?status=pending&channel=alipay_app', () => page('/console/payments?status=pending&channel=alipay_app'));
await measure('console payments ?status=succeeded&channel=wechat_app', () => page('/console/payments?status=succeeded&channel=wechat_app'));
await measure('console payment page (11 months old, refunded)', () => page(`/console/payments/${oldRefunded.payment_id}`));
await measure('console refunds, first page', () => page('/console/refunds'));
await measure('console refunds, 11 months deep', () => page(`/console/refunds?starting_after=${deepRefund.id}`));
await measure('console refunds ?status=failed', () => page('/console/refunds?status=failed'));
await measure('console reconciliation page, 1 day', () => page(`/console/reconciliation?from=${today}&to=${today}`));
await measure('console reconciliation page, 31 days', () => page(`/console/reconciliation?from=${daysBack(31)}&to=${today}`));
await measure('reconciliation summary, 90 days (summarize)', () => summarize(gateway.deps, scope, beijingRange(daysBack(90), today)!));

// The 31-day CSV: every row, streamed. Its time grows with the rows; memory must not.
try {
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t = performance.now();
  const { lines, bytes, contentLength } = await downloadCsv(`${gateway.url}/console/reconciliation/transactions.csv?from=${daysBack(31)}&to=${today}`, cookies);
  clearInterval(sampler);
  const ms = performance.now() - t;
  console.log(`CSV, 31 days: ${lines - 1} rows, ${(bytes / 1e6).toFixed(1)} MB in ${(ms / 1000).toFixed(1)} s; RSS +${((peak - before) / 1e6).toFixed(0)} MB at peak, content-length ${contentLength ?? 'none'}`);
} catch (err) {
  console.log(`CSV, 31 days: failed: ${String((err as Error).cause ?? err)}`);
}

const over = results.filter(([, ms]) => ms > GOAL_MS);
console.log(over.length ? `${over.length} of ${results.length} over ${GOAL_MS} ms` : `all ${results.length} within ${GOAL_MS} ms`);
await gateway.stop();
fs.rmSync(dir, { recursive: true, force: true });
