// npm run bench:subscriptions (issue 15): 10,000 subscriptions on signed Alipay 周期扣款 agreements
// fall due at the same instant; two gateway processes on one PostgreSQL charge them through the
// real scheduler (claims by FOR UPDATE SKIP LOCKED) and the Alipay simulator; then, for
// comparison, one process drains a set of its own. Printed: charges per second, time to drain,
// two processes / one, and beside them the rate of RSA-2048 signatures node:crypto makes here on
// one thread (each charge costs three: the gateway's request, the simulator's answer, its notify).
// Exactly once is checked at the end: one succeeded payment per period, one deduction per
// out_trade_no at the simulator and one per period; the process exits 1 otherwise.
//   BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test), BENCH_SUBSCRIPTIONS (10000,
//   for the two processes), BENCH_SUBSCRIPTIONS_SINGLE (a quarter of that, for the one process).
// The subscriptions are cloned in the database from one made through the API (customer,
// agreement signed at the simulator's wallet page, subscription): creating 10,000 through the
// API would take longer than charging them. Only the rows are seeded; every charge is real.
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { createDb, migrate } from '../server/db.ts';
import { createApp } from '../server/apps/service.ts';
import { randomId } from '../server/crypto.ts';
import { startBalancer } from '../test/crash/harness.ts';
import { spawnBenchChild, type BenchChild } from './child.ts';
import { rsaSignaturesPerSecond } from './measure.ts';

const baseUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const twoCount = Number(process.env.BENCH_SUBSCRIPTIONS ?? 10_000);
const oneCount = Number(process.env.BENCH_SUBSCRIPTIONS_SINGLE ?? Math.max(1, Math.round(twoCount / 4)));
/** Give up when no period is paid for this long. */
const STALL_MS = Number(process.env.BENCH_SUBSCRIPTIONS_STALL_S ?? 60) * 1000;
const DRAIN_TIMEOUT_MS = Number(process.env.BENCH_SUBSCRIPTIONS_TIMEOUT_S ?? 600) * 1000;

const schema = `bench_subs_${randomId(10).toLowerCase()}`;
const masterKey = crypto.randomBytes(32);
const setDigit = (set: string) => String(set.charCodeAt(0) % 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Gw {
  child: BenchChild;
  url: string;
  port: number;
}

// A TCP balancer in front of the gateway processes, as in production: PUBLIC_URL names it.
const balancer = await startBalancer();

async function startGw(workers: boolean): Promise<Gw> {
  const child = spawnBenchChild('bench/subscriptions-gateway.ts', {
    BENCH_DATABASE_URL: baseUrl,
    BENCH_SCHEMA: schema,
    BENCH_MASTER_KEY: masterKey.toString('base64'),
    BENCH_WORKERS: String(workers),
    BENCH_PUBLIC_URL: balancer.url,
  });
  const { url, port } = await child.next<{ url: string; port: number }>();
  return { child, url, port };
}

/** One subscription made the way a merchant makes it: a customer, an agreement the wallet user signs at the simulator, a weekly subscription due today. */
async function template(key: string): Promise<string> {
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(balancer.url + p, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = (await res.json()) as any;
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
  const customer = await api('POST', '/v1/customers', { name: 'Bench subscriber', out_user_id: 'bench_tpl' });
  const agreement = await api('POST', '/v1/agreements', { customer: customer.id, channel: 'alipay', single_amount_max: 3000, period_rule: { period_type: 'DAY', period: 7, execute_time: today } });
  const html = await (await fetch(agreement.next_action.redirect_url)).text();
  const field = (name: string) => html.match(new RegExp(`name="${name}" value="([^"]+)"`))?.[1] ?? '';
  const signed = await fetch(`${balancer.url}/sandbox/alipay/agreement/action`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ app_id: field('app_id'), external_agreement_no: field('external_agreement_no'), t: field('t'), action: 'sign' }),
  });
  if (((await signed.json()) as { status?: string }).status !== 'NORMAL') throw new Error('subscriptions bench: the template agreement was not signed');
  for (let n = 0; (await api('GET', `/v1/agreements/${agreement.id}`)).status !== 'active'; n++) {
    if (n > 200) throw new Error('subscriptions bench: the template agreement did not become active');
    await sleep(25);
  }
  const s = await api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 1000, subject: 'Bench weekly', interval: 'week', interval_count: 1 });
  return s.id;
}

/**
 * `count` copies of the template (customer, agreement, the simulator's mandate, subscription and
 * its first period), committed in one transaction with the periods due at the commit: all due at once.
 */
async function seed(db: Knex, tplId: string, set: string, count: number): Promise<string[]> {
  const sub = await db('subscriptions').where({ id: tplId }).first();
  const agr = await db('agreements').where({ id: sub.agreement_id }).first();
  const cus = await db('customers').where({ id: sub.customer_id }).first();
  const period = await db('subscription_periods').where({ subscription_id: tplId, period_index: 0 }).first();
  const mandate = await db('sandbox_agreements').where({ provider: 'alipay', agreement_no: agr.channel_agreement_no }).first();
  const ids: string[] = [];
  await db.transaction(async (trx) => {
    const now = Date.now();
    for (let start = 0; start < count; start += 500) {
      const rows = { customers: [] as any[], agreements: [] as any[], sandbox_agreements: [] as any[], subscriptions: [] as any[], subscription_periods: [] as any[] };
      for (let i = start; i < Math.min(count, start + 500); i++) {
        const n = `${set}${String(i).padStart(6, '0')}`;
        const ids3 = { cus: `cus_bench${n}`, agr: `agr_bench${n}`, sub: `sub_bench${n}` };
        const external = `bench${set}${crypto.randomBytes(8).toString('hex')}`;
        // Alipay's agreement numbers are digits: 2099, the set's digit, the index.
        const agreementNo = `2099${setDigit(set)}${String(i).padStart(19, '0')}`;
        rows.customers.push({ ...cus, id: ids3.cus, out_user_id: `bench_${n}` });
        rows.agreements.push({ ...agr, id: ids3.agr, customer_id: ids3.cus, external_agreement_no: external, channel_agreement_no: agreementNo });
        rows.sandbox_agreements.push({ ...mandate, external_agreement_no: external, agreement_no: agreementNo });
        rows.subscriptions.push({ ...sub, id: ids3.sub, customer_id: ids3.cus, agreement_id: ids3.agr, updated_ms: now });
        rows.subscription_periods.push({ ...period, subscription_id: ids3.sub, status: 'pending', order_no: null, payment_id: null, tries: 0, submit_count: 0, next_try_at_ms: now, updated_ms: now });
        ids.push(ids3.sub);
      }
      for (const [table, list] of Object.entries(rows)) await trx(table).insert(list);
    }
  });
  return ids;
}

interface Drained {
  seconds: number;
  rate: number;
}

/** Waits until every period of the set is paid (or nothing moves for a minute), timing from the seed's commit. */
async function drain(db: Knex, set: string, count: number, committedAt: number): Promise<Drained> {
  const like = `sub_bench${set}%`;
  let last = -1;
  let lastMoved = Date.now();
  for (;;) {
    const paid = Number((await db('subscription_periods').where('subscription_id', 'like', like).where({ period_index: 0, status: 'succeeded' }).count({ n: '*' }))[0].n);
    if (paid >= count) break;
    if (paid !== last) [last, lastMoved] = [paid, Date.now()];
    if (Date.now() - lastMoved > STALL_MS || Date.now() - committedAt > DRAIN_TIMEOUT_MS) {
      console.log(`  the scheduler stopped at ${paid} of ${count} periods paid`);
      break;
    }
    await sleep(50);
  }
  const seconds = (Date.now() - committedAt) / 1000;
  return { seconds, rate: count / seconds };
}

/** Exactly once for a set: the problems found (empty when each period was charged once and none missed). */
async function verify(db: Knex, set: string, ids: string[], merchantId: string): Promise<string[]> {
  const like = `sub_bench${set}%`;
  const problems: string[] = [];
  const periods = await db('subscription_periods').where('subscription_id', 'like', like).select('subscription_id', 'period_index', 'status', 'order_no', 'payment_id');
  const first = periods.filter((p) => Number(p.period_index) === 0);
  const unpaid = first.filter((p) => p.status !== 'succeeded');
  if (first.length !== ids.length || unpaid.length) problems.push(`${unpaid.length + ids.length - first.length} of ${ids.length} periods not charged (missed)`);
  const payments = await db('payments').where('subscription_id', 'like', like).select('id', 'subscription_id', 'subscription_period', 'status');
  const succeeded = new Map<string, number>();
  for (const p of payments.filter((x) => x.status === 'succeeded')) succeeded.set(`${p.subscription_id}#${p.subscription_period}`, (succeeded.get(`${p.subscription_id}#${p.subscription_period}`) ?? 0) + 1);
  const twice = [...succeeded.values()].filter((n) => n > 1).length;
  if (twice) problems.push(`${twice} periods with more than one succeeded payment (charged twice)`);
  const other = payments.filter((p) => p.status !== 'succeeded');
  if (other.length) {
    const sample = await db('payments').where({ id: other[0].id }).first('status', 'last_attempt_error');
    problems.push(`${other.length} payments not succeeded (tries that failed or never ended; one: ${sample.status} ${sample.last_attempt_error ?? ''})`);
  }
  const orderNos = first.map((p) => p.order_no).filter(Boolean);
  const deductions: Array<{ out_trade_no: string; n: string | number }> = [];
  for (let i = 0; i < orderNos.length; i += 1000) {
    deductions.push(...(await db('sandbox_agreement_deductions').where({ provider: 'alipay', merchant_id: merchantId }).whereIn('out_trade_no', orderNos.slice(i, i + 1000)).groupBy('out_trade_no').select('out_trade_no', db.raw('count(*) as n'))));
  }
  const atSim = new Map(deductions.map((d) => [d.out_trade_no, Number(d.n)]));
  const notAtSim = orderNos.filter((no) => !atSim.has(no)).length;
  const doubled = [...atSim.values()].filter((n) => n !== 1).length;
  if (notAtSim) problems.push(`${notAtSim} periods' order numbers without a deduction at the simulator`);
  if (doubled) problems.push(`${doubled} out_trade_nos deducted more than once at the simulator`);
  // Per mandate: one deduction (one period was due), whatever its number.
  const agreementNos = (await db('agreements').where('id', 'like', `agr_bench${set}%`).pluck('channel_agreement_no')) as string[];
  const perMandate = await db('sandbox_agreement_deductions').where({ provider: 'alipay', merchant_id: merchantId }).where('agreement_no', 'like', `2099${setDigit(set)}%`).groupBy('agreement_no').select('agreement_no', db.raw('count(*) as n'));
  const overCharged = perMandate.filter((r) => Number(r.n) > 1).length;
  if (overCharged) problems.push(`${overCharged} agreements deducted more than once at the simulator`);
  if (perMandate.length !== agreementNos.length) problems.push(`${agreementNos.length - perMandate.length} agreements never deducted at the simulator`);
  return problems;
}


export async function subscriptionsBench(): Promise<{ ok: boolean; ratio: number }> {
  const started = Date.now();
  const db = createDb(baseUrl, { schema });
  await migrate(db);
  const app = await createApp(db, { name: 'Subscriptions bench' });
  const gws: Gw[] = [];
  try {
    const seeder = await startGw(false);
    balancer.setBackends([seeder.port]);
    const tpl = await template(app.secret_key);
    await seeder.child.kill();
    const merchantId = (await db('sandbox_agreements').where({ provider: 'alipay' }).first('merchant_id')).merchant_id as string;
    // The template's own period is not measured: it is paid before the runs start.
    await db('subscription_periods').where({ subscription_id: tpl }).update({ status: 'canceled', next_try_at_ms: null });
    console.log(`subscriptions on PostgreSQL: ${twoCount} due at once for two gateway processes, ${oneCount} for one (BENCH_SUBSCRIPTIONS, BENCH_SUBSCRIPTIONS_SINGLE)`);

    const run = async (processes: number, set: string, count: number) => {
      for (let i = 0; i < processes; i++) gws.push(await startGw(true));
      balancer.setBackends(gws.map((g) => g.port));
      const t0 = Date.now();
      const ids = await seed(db, tpl, set, count);
      const committedAt = Date.now();
      const d = await drain(db, set, count, committedAt);
      for (const g of gws.splice(0)) await g.child.kill();
      const problems = await verify(db, set, ids, merchantId);
      console.log(
        `${`${processes} process${processes > 1 ? 'es' : ''}`.padEnd(12)} ${String(count).padStart(6)} periods due at once (seeded in ${((committedAt - t0) / 1000).toFixed(1)} s): ` +
          `drained in ${d.seconds.toFixed(1)} s, ${d.rate.toFixed(0)} charges/s, ${(d.rate / processes).toFixed(0)} per process; ` +
          `exactly once: ${problems.length ? `NO: ${problems.join('; ')}` : 'yes (one succeeded payment per period, one deduction per out_trade_no)'}`,
      );
      return { ...d, problems };
    };
    const two = await run(2, 'b', twoCount);
    const one = await run(1, 'a', oneCount);
    const ratio = two.rate / one.rate;
    const sign = rsaSignaturesPerSecond(2);
    console.log(`two processes / one: ${ratio.toFixed(2)}×`);
    console.log(`node:crypto RSA-2048 signatures, one thread: ${sign.toFixed(0)}/s; one process's charges / (signatures ÷ 3): ${((one.rate / (sign / 3)) * 100).toFixed(1)}%`);
    const ok = two.problems.length === 0 && one.problems.length === 0;
    console.log(`${ok ? 'each period charged exactly once, none missed' : 'FAILED: a period was charged twice or missed'}; ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
    return { ok, ratio };
  } finally {
    for (const g of gws) await g.child.kill();
    await balancer.close();
    await db.raw(`drop schema if exists "${schema}" cascade`).catch(() => undefined);
    await db.destroy();
  }
}

// Run alone: tsx bench/subscriptions.ts
if (import.meta.url === `file://${process.argv[1]}`) {
  const { ok } = await subscriptionsBench();
  if (!ok) process.exitCode = 1;
}
