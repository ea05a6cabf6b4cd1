// npm run bench:seed -- <DATABASE_URL> [--schema NAME] [--payments N]
// A year of a busy gateway for bench/queries.ts: by default 1,000,000 payments, ~875k attempts,
// ~850k events and 100k refunds over four apps, most of them live, growing through the year
// (the last month has about 1.5 times the average). Writes data/bench-seed-<name>.json with the
// apps' keys and a console login. Deterministic: the same arguments give the same rows.
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { createDb, isPostgres, migrate } from '../server/db.ts';
import { createApp } from '../server/apps/service.ts';
import { createConsoleUser } from '../server/dashboard/users.ts';
import { infoPath } from './seed-info.ts';

const args = process.argv.slice(2);
const url = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
if (!url) {
  console.error('usage: tsx bench/seed.ts sqlite:FILE | postgres://… --schema NAME [--payments N]');
  process.exit(2);
}
const schema = flag('schema');
const TOTAL = Number(flag('payments') ?? 1_000_000);
const REFUNDS = Math.round(TOTAL / 10);
const YEAR = 365 * 86_400;
const NOW = Math.floor(Date.now() / 1000);
const START = NOW - YEAR;
const BENCH_PASSWORD = 'bench console passphrase';

/** mulberry32: a small deterministic PRNG, so runs are comparable. */
let state = 0x9e3779b9;
function rand(): number {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const randomChars = (n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * 62)];
  return s;
};
const digits = (n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 10);
  return s;
};
/** The gateway's id shape (server/crypto.ts newId): 8 base62 characters of the time in ms, then 16 random. */
function idAt(prefix: string, ms: number): string {
  let t = ms;
  let time = '';
  for (let i = 0; i < 8; i++) {
    time = alphabet[t % 62] + time;
    t = Math.floor(t / 62);
  }
  return `${prefix}_${time}${randomChars(16)}`;
}
function pick<T>(weighted: Array<[T, number]>): T {
  let r = rand() * weighted.reduce((s, [, w]) => s + w, 0);
  for (const [v, w] of weighted) if ((r -= w) < 0) return v;
  return weighted[weighted.length - 1][0];
}

const CHANNELS: Array<[string, number]> = [
  ['alipay_pc', 28], ['alipay_wap', 16], ['alipay_qr', 10], ['wechat_native', 20], ['wechat_h5', 10], ['wechat_jsapi', 13],
  ['alipay_app', 2], ['wechat_app', 1],
];
const CURRENCIES: Array<[string, number]> = [['CNY', 97], ['USD', 2], ['HKD', 1]];
const FAILURES: Array<[[string, string], number]> = [
  [['ACQ.TRADE_HAS_CLOSE', 'The trade was closed.'], 3], [['USERPAYING', 'The customer did not finish paying.'], 2],
  [['ACQ.BUYER_BALANCE_NOT_ENOUGH', 'The buyer balance is not enough.'], 4], [['NOTENOUGH', '余额不足'], 3],
];
const providerOf = (channel: string) => (channel.startsWith('alipay') ? 'alipay' : 'wechatpay');
const tradeNo = (provider: string, at: number) =>
  provider === 'alipay' ? `${new Date(at * 1000).toISOString().slice(0, 10).replace(/-/g, '')}22001${digits(17)}` : `4200${digits(24)}`;

interface Rows {
  payments: any[];
  payment_attempts: any[];
  events: any[];
  refunds: any[];
}

interface SeedApp {
  app_id: string;
  name: string;
  secret_key: string;
  live_secret_key: string;
  share: number;
}

/** The event row for an object, in the shape events/repo.ts insertEvent writes. */
function eventRow(app: SeedApp, livemode: boolean, type: string, object: Record<string, unknown>, created: number, objectIdColumn: boolean) {
  const row: Record<string, unknown> = {
    id: idAt('evt', created * 1000 + Math.floor(rand() * 1000)),
    app_id: app.app_id,
    livemode,
    type,
    data: JSON.stringify({ object }),
    created,
  };
  if (objectIdColumn) row.object_id = object.id;
  return row;
}

function paymentObject(p: any) {
  return {
    id: p.id, object: 'payment', livemode: p.livemode, app_id: p.app_id, out_trade_no: p.out_trade_no, amount: p.amount, currency: p.currency,
    subject: p.subject, description: p.description, channel: p.channel, status: p.status, amount_refunded: p.amount_refunded,
    channel_trade_no: p.channel_trade_no, paid_at: p.paid_at, expires_at: p.expires_at, return_url: p.return_url,
    metadata: JSON.parse(p.metadata), checkout_url: `https://pay.example.com/pay/${p.checkout_token}`, created: p.created,
    next_action: null, last_attempt_error: p.last_attempt_error ?? null,
  };
}

/**
 * Yields the rows in batches, payments in creation order (as the gateway appends them); refunds
 * and their events are kept back, sorted by time and yielded last.
 */
function* generate(apps: SeedApp[], objectIdColumn: boolean, batch = 5000): Generator<Rows> {
  // Density grows linearly from 1 to 4 over the year: t in [0,1) drawn by inverting its CDF.
  const times: number[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const u = rand();
    const t = (-1 + Math.sqrt(1 + 3 * u * (2 + 3))) / 3; // CDF ∝ t + 1.5 t², normalized to 2.5
    times.push(START + Math.floor(t * YEAR));
  }
  times.sort((a, b) => a - b);
  const refundProbability = REFUNDS / (TOTAL * 0.66);
  const laterRefunds: any[] = [];
  const laterEvents: any[] = [];
  const seqByApp = new Map<string, number>();
  let rows: Rows = { payments: [], payment_attempts: [], events: [], refunds: [] };
  for (let i = 0; i < TOTAL; i++) {
    const created = times[i];
    const app = pick(apps.map((a) => [a, a.share] as [SeedApp, number]));
    const livemode = rand() < 0.95;
    const seq = (seqByApp.get(app.app_id) ?? 0) + 1;
    seqByApp.set(app.app_id, seq);
    const currency = pick(CURRENCIES);
    const amount = Math.max(1, Math.round(Math.exp(3 + rand() * 7)));
    const p: any = {
      id: idAt('pay', created * 1000 + Math.floor(rand() * 1000)),
      app_id: app.app_id,
      livemode,
      out_trade_no: `${new Date(created * 1000).toISOString().slice(0, 10).replace(/-/g, '')}${String(seq).padStart(9, '0')}`,
      amount,
      currency,
      subject: pick([['Tea, 250 g', 3], ['会员月卡', 2], ['Order from the shop', 4], ['Shipping fee', 1]]),
      description: rand() < 0.3 ? 'A longer description the merchant sends with some orders.' : null,
      channel: null,
      status: 'closed',
      amount_refunded: 0,
      channel_trade_no: null,
      paid_at: null,
      expires_at: created + 7200,
      return_url: 'https://shop.example.com/orders/return',
      metadata: rand() < 0.4 ? JSON.stringify({ order_id: String(seq), customer: `c${Math.floor(rand() * 1e6)}` }) : '{}',
      checkout_token: randomChars(32),
      client_ip: `203.0.113.${Math.floor(rand() * 255)}`,
      created,
      updated_ms: created * 1000,
    };
    // Attempts: none (abandoned at the picker) 17.5%, one 77.5%, two (the first failed) 5%.
    const r = rand();
    const attemptCount = r < 0.175 ? 0 : r < 0.95 ? 1 : 2;
    const attempts: any[] = [];
    for (let k = 0; k < attemptCount; k++) {
      const channel = pick(CHANNELS);
      const provider = providerOf(channel);
      const at = created + 5 + k * 60 + Math.floor(rand() * 30);
      const last = k === attemptCount - 1;
      const outcome = !last ? 'failed' : attemptCount === 2 ? (rand() < 0.85 ? 'succeeded' : 'failed') : pick([['succeeded', 80], ['failed', 4], ['closed', 16]]);
      const recent = NOW - created < 7200;
      const status = outcome === 'closed' && recent ? 'pending' : outcome;
      const [code, message] = status === 'failed' ? pick(FAILURES) : [null, null];
      const a: any = {
        id: idAt('att', at * 1000),
        payment_id: p.id,
        app_id: app.app_id,
        livemode,
        channel,
        provider,
        channel_order_no: `${p.out_trade_no.slice(0, 8)}${randomChars(16)}`,
        status,
        channel_trade_no: status === 'succeeded' ? tradeNo(provider, at) : null,
        action: JSON.stringify({ type: 'redirect_to_url', redirect_to_url: { url: `https://openapi.alipay.com/gateway.do?charset=utf-8&method=alipay.trade.page.pay&sign=${randomChars(60)}` } }),
        failure_code: code,
        failure_message: message,
        next_query_at_ms: status === 'pending' ? (at + 10) * 1000 : null,
        query_count: status === 'pending' ? 0 : 2,
        created: at,
        updated_ms: (at + 40) * 1000,
      };
      attempts.push(a);
      p.channel = channel;
      if (status === 'succeeded') {
        p.status = 'succeeded';
        p.channel_trade_no = a.channel_trade_no;
        p.paid_at = at + 20 + Math.floor(rand() * 40);
        p.updated_ms = p.paid_at * 1000;
      }
    }
    if (p.status !== 'succeeded' && NOW - created < 7200) p.status = 'pending';
    const winner = attempts.find((a) => a.status === 'succeeded');
    if (winner && rand() < refundProbability && laterRefunds.length < REFUNDS) {
      const full = rand() < 0.7;
      const refundAmount = full ? p.amount : Math.max(1, Math.floor(p.amount * (0.1 + rand() * 0.5)));
      const at = Math.min(NOW - 1, p.paid_at + 60 + Math.floor(rand() * 20 * 86_400));
      const status = pick([['succeeded', 97], ['failed', 2], ['pending', 1]]);
      const refund = {
        id: idAt('re', at * 1000 + Math.floor(rand() * 1000)),
        payment_id: p.id,
        attempt_id: winner.id,
        app_id: app.app_id,
        livemode,
        channel: winner.channel,
        currency,
        amount: refundAmount,
        status,
        reason: rand() < 0.5 ? 'customer asked' : null,
        out_refund_no: `re_${p.out_trade_no}`,
        channel_refund_no: status === 'succeeded' ? `${winner.channel_trade_no}R1` : null,
        failure_message: status === 'failed' ? 'The channel refused the refund.' : null,
        next_query_at_ms: status === 'pending' ? (at + 60) * 1000 : null,
        created: at,
        updated_ms: at * 1000,
        automatic: false,
        submit_count: 1,
      };
      if (status !== 'failed') p.amount_refunded = refundAmount;
      laterRefunds.push(refund);
      if (status !== 'pending') {
        const { attempt_id: _a, app_id: _b, next_query_at_ms: _c, updated_ms: _d, automatic: _e, submit_count: _f, channel_refund_no: _g, channel: _h, currency: _i, ...shown } = refund;
        laterEvents.push(eventRow(app, livemode, `refund.${status}`, { ...shown, object: 'refund' }, at, objectIdColumn));
      }
    }
    rows.payments.push(p);
    rows.payment_attempts.push(...attempts);
    for (const a of attempts) {
      if (a.status === 'failed') {
        rows.events.push(eventRow(app, livemode, 'payment.attempt_failed', paymentObject({ ...p, status: 'pending', paid_at: null, channel_trade_no: null, last_attempt_error: { channel: a.channel, code: a.failure_code, message: a.failure_message } }), a.created + 30, objectIdColumn));
      }
    }
    if (p.status === 'succeeded') rows.events.push(eventRow(app, livemode, 'payment.succeeded', paymentObject({ ...p, amount_refunded: 0 }), p.paid_at, objectIdColumn));
    if (rows.payments.length >= batch) {
      yield rows;
      rows = { payments: [], payment_attempts: [], events: [], refunds: [] };
    }
  }
  yield rows;
  laterRefunds.sort((a, b) => a.created - b.created);
  laterEvents.sort((a, b) => a.created - b.created);
  for (let i = 0; i < Math.max(laterRefunds.length, laterEvents.length); i += batch) {
    yield { payments: [], payment_attempts: [], refunds: laterRefunds.slice(i, i + batch), events: laterEvents.slice(i, i + batch) };
  }
}

async function columnsOf(db: Knex, table: string): Promise<Set<string>> {
  return new Set(Object.keys(await db(table).columnInfo()));
}

const TABLES = ['payments', 'payment_attempts', 'refunds', 'events'] as const;

async function main() {
  const db = createDb(url!, { schema });
  await migrate(db);
  if (Number((await db('payments').count({ n: '*' }))[0].n) > 0) {
    console.error('the database already has payments: seed an empty one');
    process.exit(1);
  }
  const apps: SeedApp[] = [];
  for (const [name, share] of [['Main shop', 0.7], ['Second shop', 0.2], ['Third shop', 0.08], ['Tiny shop', 0.02]] as const) {
    const created = await createApp(db, { name });
    // Apps are created with live keys unless asked otherwise; the query bench reads with the live one.
    apps.push({ ...created, live_secret_key: created.live_secret_key!, share });
  }
  const email = 'bench@checkstand.local';
  await createConsoleUser(db, { email, appId: apps[0].app_id, password: BENCH_PASSWORD });
  const objectIdColumn = (await columnsOf(db, 'events')).has('object_id');
  const columns = Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, [...(await columnsOf(db, t))]]))) as Record<(typeof TABLES)[number], string[]>;
  const started = Date.now();
  const counts = { payments: 0, payment_attempts: 0, events: 0, refunds: 0 };
  if (isPostgres(db)) {
    for (const rows of generate(apps, objectIdColumn)) {
      await db.transaction(async (trx) => {
        for (const t of TABLES) if (rows[t].length) await insertPg(trx, t, presentColumns(columns[t], rows[t]), rows[t]);
      });
      for (const t of TABLES) counts[t] += rows[t].length;
      if (counts.payments % 100_000 === 0 && rows.payments.length) console.error(`${counts.payments} payments…`);
    }
    await db.destroy();
    // ANALYZE for the planner's statistics, VACUUM for the visibility map (index-only scans).
    const admin = createDb(url!, { schema });
    for (const t of TABLES) await admin.raw(`VACUUM ANALYZE ??`, [t]);
    await admin.destroy();
  } else {
    // better-sqlite3 itself: prepared single-row inserts in one transaction per batch beat any builder.
    const conn = await (db.client as any).acquireConnection();
    conn.pragma('synchronous = OFF');
    const inserts = new Map<string, any>();
    const insertOf = (t: string, cols: string[]) => {
      const key = `${t}:${cols.join(',')}`;
      if (!inserts.has(key)) inserts.set(key, conn.prepare(`insert into ${t} (${cols.map((c) => `"${c}"`).join(',')}) values (${cols.map(() => '?').join(',')})`));
      return inserts.get(key);
    };
    const write = conn.transaction((rows: Rows) => {
      for (const t of TABLES) {
        if (!rows[t].length) continue;
        const cols = presentColumns(columns[t], rows[t]);
        const insert = insertOf(t, cols);
        for (const row of rows[t]) insert.run(cols.map((c) => sqliteValue(row[c])));
      }
    });
    for (const rows of generate(apps, objectIdColumn)) {
      write(rows);
      for (const t of TABLES) counts[t] += rows[t].length;
      if (counts.payments % 100_000 === 0 && rows.payments.length) console.error(`${counts.payments} payments…`);
    }
    conn.pragma('wal_checkpoint(TRUNCATE)');
    await (db.client as any).releaseConnection(conn);
    await db.destroy();
  }
  const info = { url, schema, seeded_at: NOW, start: START, apps, console: { email, password: BENCH_PASSWORD }, counts };
  fs.mkdirSync('data', { recursive: true });
  fs.writeFileSync(infoPath(url!, schema), JSON.stringify(info, null, 2));
  console.log(`seeded ${JSON.stringify(counts)} in ${((Date.now() - started) / 1000).toFixed(0)} s; ${infoPath(url!, schema)}`);
}

/**
 * The table's columns the generated rows set: the rest are left to their defaults, so a later
 * migration's NOT NULL … DEFAULT column (payments.amount_discount, …) does not get a NULL.
 */
function presentColumns(cols: string[], rows: any[]): string[] {
  return cols.filter((c) => rows.some((r) => r[c] !== undefined));
}

const sqliteValue = (v: unknown) => (v === undefined ? null : typeof v === 'boolean' ? (v ? 1 : 0) : v);

/** One multi-row INSERT per batch: the rows go as one JSON parameter that json_populate_recordset() unpacks. */
async function insertPg(trx: Knex.Transaction, table: string, cols: string[], rows: any[]) {
  const list = cols.map(() => '??').join(',');
  await trx.raw(`insert into ?? (${list}) select ${list} from json_populate_recordset(null::??, ?::json)`, [table, ...cols, ...cols, table, JSON.stringify(rows)]);
}

await main();
