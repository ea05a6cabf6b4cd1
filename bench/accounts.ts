// npm run bench:accounts: payments with channel balance (a conditional debit, the payment, its
// ledger entry and payment.succeeded in one transaction) against a bare Express hello world in
// the same run, and their p99; then the customer list at a million customers, each read the
// median of 5 over loopback against its 300 ms goal. SQLite by default;
// BENCH_ACCOUNTS_DATABASE_URL=postgres://… runs both parts on PostgreSQL (a fresh schema).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import autocannon from 'autocannon';
import knexFactory from 'knex';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { startGateway } from '../server/index.ts';
import { createApp } from '../server/apps/service.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? 1_000_000);
const pgUrl = process.env.BENCH_ACCOUNTS_DATABASE_URL;
const GOAL_MS = 300;

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ duration: seconds, connections, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}
const line = (name: string, r: autocannon.Result) =>
  `${name.padEnd(26)} ${r.requests.average.toFixed(0).padStart(7)} req/s   p50 ${String(r.latency.p50).padStart(4)} ms   p99 ${String(r.latency.p99).padStart(4)} ms   non-2xx ${r.non2xx}   errors ${r.errors}`;

// ---- 1. throughput: the gateway and the hello world in a child process, as bench/run.ts does ----
// On PostgreSQL in a schema of its own (search_path in the URL), dropped at the end.
const throughputSchema = pgUrl ? `bench_bal_${crypto.randomBytes(4).toString('hex')}` : undefined;
const admin = pgUrl ? knexFactory({ client: 'pg', connection: pgUrl }) : undefined;
if (admin) await admin.raw(`CREATE SCHEMA "${throughputSchema}"`);
// BENCH_CPU_PROF=DIR: the servers' process writes a V8 CPU profile there (bench/profile-summary.ts reads it).
const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'bench/servers.ts'], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: {
    ...process.env,
    ...(pgUrl ? { BENCH_DATABASE_URL: `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${throughputSchema}`)}` } : {}),
  },
});
const first = await new Promise<string>((resolve, reject) => {
  readline.createInterface({ input: child.stdout! }).once('line', resolve);
  child.once('exit', (code) => reject(new Error(`bench servers exited with ${code}`)));
});
const { gateway, hello, key } = JSON.parse(first) as { gateway: string; hello: string; key: string };
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
const runId = Date.now().toString(36);
let seq = 0;
try {
  // Payers are many people (BENCH_PAYERS, 50 by default); BENCH_PAYERS=1 is the worst case, every
  // payment waiting for the one customer row (on PostgreSQL, each for the previous one's commit).
  const payers: string[] = [];
  for (let i = 0; i < Number(process.env.BENCH_PAYERS ?? 50); i++) {
    const customer = await (await fetch(`${gateway}/v1/customers`, { method: 'POST', headers, body: JSON.stringify({ out_user_id: `bench_${runId}_${i}` }) })).json() as { id: string };
    // Enough stored value for every payment of the run (1 fen each).
    await fetch(`${gateway}/v1/customers/${customer.id}/balance_transactions`, { method: 'POST', headers, body: JSON.stringify({ amount: 10_000_000_000 }) });
    payers.push(customer.id);
  }
  await run({ url: hello, duration: 2 });
  const helloResult = await run({ url: hello });
  const body = () => JSON.stringify({ amount: 1, subject: 'Bench balance', out_trade_no: `bal_${runId}_${++seq}`, customer: payers[seq % payers.length], channel: 'balance' });
  await run({ url: `${gateway}/v1/payments`, method: 'POST', headers, duration: 2, requests: [{ setupRequest: (req) => ({ ...req, body: body() }) }] });
  const balance = await run({ url: `${gateway}/v1/payments`, method: 'POST', headers, requests: [{ setupRequest: (req) => ({ ...req, body: body() }) }] });
  // For scale: a plain create (no customer, no channel) in the same run, as bench/run.ts measures it.
  const plainBody = () => JSON.stringify({ amount: 1, subject: 'Bench order', out_trade_no: `plain_${runId}_${++seq}` });
  const plain = await run({ url: `${gateway}/v1/payments`, method: 'POST', headers, requests: [{ setupRequest: (req) => ({ ...req, body: plainBody() }) }] });
  console.log(`autocannon, ${connections} connections, ${seconds} s each, ${pgUrl ? 'PostgreSQL' : 'SQLite'}`);
  console.log(line('GET hello-world', helloResult));
  console.log(line('POST channel=balance', balance));
  console.log(line('POST (plain create)', plain));
  console.log(`balance payment / hello-world throughput: ${((balance.requests.average / helloResult.requests.average) * 100).toFixed(1)}% (goal ≥ 40%), p99 ${balance.latency.p99} ms; balance / plain create: ${((balance.requests.average / plain.requests.average) * 100).toFixed(1)}%`);
  console.log(`${payers.length} paying customers; ${balance.non2xx} non-2xx${balance.non2xx || balance.errors ? ' WARNING: the run had failures' : ''}`);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  if (admin) {
    await admin.raw(`DROP SCHEMA IF EXISTS "${throughputSchema}" CASCADE`);
    await admin.destroy();
  }
}

// ---- 2. the customer list at a million customers -------------------------------------------
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-bench-accounts-'));
const schema = pgUrl ? `bench_acc_${crypto.randomBytes(4).toString('hex')}` : undefined;
const listGateway = await startGateway(loadConfig({}, {
  port: 0, databaseUrl: pgUrl ?? `sqlite:${path.join(dir, 'customers.db')}`, databaseSchema: schema,
  masterKey: crypto.randomBytes(32).toString('base64'), dataDir: dir, demo: 'false', workers: 'false', apiRateLimit: 0, cashierRateLimit: 1_000_000_000,
}), createLogger('silent'));
try {
  const db = listGateway.deps.db;
  const app = await createApp(db, { name: 'Bench customers' });
  const seeded = Date.now();
  const base = 1_700_000_000;
  const BATCH = 500;
  for (let start = 0; start < CUSTOMERS; start += BATCH * 20) {
    await db.transaction(async (trx) => {
      for (let b = start; b < Math.min(start + BATCH * 20, CUSTOMERS); b += BATCH) {
        const rows = [];
        for (let i = b; i < Math.min(b + BATCH, CUSTOMERS); i++) {
          rows.push({
            id: `cus_${String(i).padStart(12, '0')}`, app_id: app.app_id, livemode: false, out_user_id: `user_${i}`, name: `Customer ${i}`,
            email: null, phone: null, metadata: '{}', balance: i % 1000, currency: 'CNY',
            // A few a minute over two years, as a shop's sign-ups come.
            created: base + Math.floor(i * 63), updated_ms: 0, deleted_at: null,
          });
        }
        await trx('customers').insert(rows);
      }
    });
  }
  if (pgUrl) await db.raw('analyze customers');
  console.log(`seeded ${CUSTOMERS} customers in ${((Date.now() - seeded) / 1000).toFixed(0)} s`);
  const get = async (p: string) => {
    const times: number[] = [];
    await fetch(listGateway.url + p, { headers: { authorization: `Bearer ${app.secret_key}` } }).then((r) => r.arrayBuffer());
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const res = await fetch(listGateway.url + p, { headers: { authorization: `Bearer ${app.secret_key}` } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${p}: ${res.status}`);
      times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b)[2];
  };
  const deep = `cus_${String(Math.floor(CUSTOMERS / 10)).padStart(12, '0')}`;
  for (const [name, p] of [
    ['first page (limit 100)', '/v1/customers?limit=100'],
    ['deep page (starting_after)', `/v1/customers?limit=100&starting_after=${deep}`],
    ['ending_before', `/v1/customers?limit=100&ending_before=${deep}`],
    ['by out_user_id', `/v1/customers?out_user_id=user_${Math.floor(CUSTOMERS / 2)}`],
  ] as const) {
    const ms = await get(p);
    console.log(`${`GET customers ${name}`.padEnd(42)} ${ms.toFixed(1).padStart(7)} ms (goal ≤ ${GOAL_MS} ms)${ms > GOAL_MS ? '  OVER' : ''}`);
  }
} finally {
  await listGateway.stop();
  if (schema) {
    const admin = knexFactory({ client: 'pg', connection: pgUrl });
    await admin.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.destroy();
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
