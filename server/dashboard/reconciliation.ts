import type { Deps } from '../deps.ts';
import { channelFor, isProvider } from '../channels/registry.ts';
import type { ChannelCode } from '../channels/types.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, SignatureError } from '../errors.ts';
import type { Scope } from './repo.ts';
import { beijingTime, decimal, money } from './format.ts';
import {
  createdByDay, paymentTotals, paymentTotalsByDay, paymentsPage, pendingCandidates, refundTotals, refundTotalsByDay, refundsPage, succeededCandidates, type TotalRow,
  type CheckCandidate, type Position, type Range, type Transaction,
} from './reconciliation-repo.ts';
import { statementFees } from '../statements/repo.ts';
import { barChart, rateChart } from './charts.ts';
import { translator, type Lang } from './i18n.ts';

/** Cross-channel reconciliation: per-channel totals, a check against the channels, the CSV. */

export interface ChannelSummary {
  channel: string;
  currency: string;
  payments: { count: number; sum: number };
  refunds: { count: number; sum: number };
  /** Duplicate payments the gateway refunded by itself: money in and out again, outside the net. */
  automatic: { count: number; sum: number };
  net: number;
}

export async function summarize(deps: Deps, scope: Scope, range: Range): Promise<ChannelSummary[]> {
  const [paid, refunded] = await Promise.all([paymentTotals(deps.db, scope, range), refundTotals(deps.db, scope, range)]);
  return channelSummaries(paid, refunded);
}

/** The range's totals per channel and currency from totals of its parts (the range's, or its days'). */
function channelSummaries(paid: TotalRow[], refunded: Array<TotalRow & { automatic: boolean }>): ChannelSummary[] {
  const byKey = new Map<string, ChannelSummary>();
  const entry = (channel: string, currency: string) => {
    const key = `${channel}\u0000${currency}`;
    let s = byKey.get(key);
    if (!s) byKey.set(key, (s = { channel, currency, payments: { count: 0, sum: 0 }, refunds: { count: 0, sum: 0 }, automatic: { count: 0, sum: 0 }, net: 0 }));
    return s;
  };
  for (const p of paid) {
    const s = entry(p.channel, p.currency);
    s.payments.count += p.count;
    s.payments.sum += p.sum;
  }
  for (const r of refunded) {
    const s = entry(r.channel, r.currency);
    const bucket = r.automatic ? s.automatic : s.refunds;
    bucket.count += r.count;
    bucket.sum += r.sum;
  }
  const list = [...byKey.values()];
  for (const s of list) s.net = s.payments.sum - s.refunds.sum;
  return list.sort((a, b) => a.channel.localeCompare(b.channel) || a.currency.localeCompare(b.currency));
}

/** At most this many channel orders are asked about per check: each one is a request to the channel. */
export const CHECK_LIMIT = 200;
const CHECK_CONCURRENCY = 4;
/** No new question is started after this: an unreachable channel (15 s timeouts) must not hold the page for minutes. */
const CHECK_BUDGET_MS = 20_000;

export type MismatchKind = 'paid_at_channel' | 'amount_differs' | 'not_paid_at_channel';

export interface Mismatch {
  kind: MismatchKind;
  candidate: CheckCandidate;
  channelStatus: string;
  channelAmount?: number;
  channelTradeNo?: string;
}

export interface CheckReport {
  checked: number;
  /** True when there were more orders than CHECK_LIMIT: the rest were not asked about. */
  truncated: boolean;
  /** Orders left unasked because the time budget ran out. */
  skipped: number;
  mismatches: Mismatch[];
  errors: Array<{ candidate: CheckCandidate; message: string }>;
}

/**
 * Asks the channels about the range's orders, pending ones first: a payment still pending here
 * whose order the channel says is paid (a lost notify), and a succeeded payment whose amount (or
 * status) differs at the channel. Reports only; the payment worker applies channel answers.
 */
export async function checkWithChannels(deps: Deps, scope: Scope, range: Range): Promise<CheckReport> {
  const pending = await pendingCandidates(deps.db, scope, range, CHECK_LIMIT + 1);
  const succeeded = await succeededCandidates(deps.db, scope, range, CHECK_LIMIT + 1 - Math.min(pending.length, CHECK_LIMIT + 1));
  const all = [...pending, ...succeeded];
  const candidates = all.slice(0, CHECK_LIMIT);
  const report: CheckReport = { checked: 0, truncated: all.length > CHECK_LIMIT, skipped: 0, mismatches: [], errors: [] };
  const deadline = Date.now() + CHECK_BUDGET_MS;
  let next = 0;
  const work = async () => {
    while (next < candidates.length && Date.now() < deadline) {
      const c = candidates[next++];
      try {
        const m = await checkOne(deps, scope, c);
        report.checked++;
        if (m) report.mismatches.push(m);
      } catch (err) {
        report.errors.push({ candidate: c, message: describeFault(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: CHECK_CONCURRENCY }, work));
  report.skipped = candidates.length - next;
  const order = new Map(candidates.map((c, i) => [c.attempt_id, i]));
  report.mismatches.sort((a, b) => order.get(a.candidate.attempt_id)! - order.get(b.candidate.attempt_id)!);
  return report;
}

async function checkOne(deps: Deps, scope: Scope, c: CheckCandidate): Promise<Mismatch | undefined> {
  const adapter = isProvider(c.provider) ? channelFor(c.provider) : undefined;
  if (!adapter) throw new ChannelConfigError(`${c.provider} is not available in this build`);
  const cred = await getCredentials(deps, scope.appId, adapter.provider, scope.livemode);
  const q = await adapter.queryPayment(cred, c.channel_order_no, {
    channel: c.channel as ChannelCode, reference: c.channel_ref, channelTradeNo: c.channel_trade_no, amount: c.amount, currency: c.currency,
    createdAt: c.attempt_created, expiresAt: c.expires_at,
  });
  const seen = { channelStatus: q.status, channelAmount: q.amount, channelTradeNo: q.channelTradeNo };
  if (c.payment_status === 'pending') {
    return q.status === 'succeeded' ? { kind: 'paid_at_channel', candidate: c, ...seen } : undefined;
  }
  if (q.status === 'succeeded') {
    return q.amount !== undefined && q.amount !== c.amount ? { kind: 'amount_differs', candidate: c, ...seen } : undefined;
  }
  // Alipay closes a trade once it is refunded in full (TRADE_CLOSED): expected, not a mismatch.
  if (q.status === 'closed' && c.amount_refunded > 0) return undefined;
  if (q.status === 'pending') return undefined;
  return { kind: 'not_paid_at_channel', candidate: c, ...seen };
}

/** A channel fault as one line for the merchant; never a stack or a credential. */
function describeFault(err: unknown): string {
  if (err instanceof ChannelConfigError) return `not configured: ${err.message}`;
  if (err instanceof ChannelUnavailable) return 'the channel could not be reached';
  if (err instanceof SignatureError) return "the channel's answer did not verify";
  if (err instanceof ChannelRequestError) return `${err.code}: ${err.message}`;
  return 'the check failed';
}

/** Rows read per query while the CSV streams: enough to keep queries few, small enough to keep memory flat. */
export const CSV_BATCH = 2000;

const csvColumns = [
  'type', 'id', 'time_beijing', 'channel', 'payment_id', 'out_trade_no', 'channel_order_no', 'channel_trade_no',
  'amount', 'amount_minor', 'currency', 'automatic', 'reason',
];

/**
 * A CSV cell. Text a spreadsheet would run as a formula (= + - @, tab, CR) gets a leading quote
 * (OWASP "CSV injection"): out_trade_no and reason come from the merchant's customers' orders.
 */
export function csvCell(value: string | number | boolean | null): string {
  let s = value === null ? '' : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s) && !/^-\d+(\.\d+)?$/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Every succeeded payment and refund of the range, oldest first by (time, id): the two keyset
 * reads are merged as they go, each refilled a batch at a time when it runs dry. Nothing is held
 * but the current batches, and no query stays open between them (on SQLite one connection serves
 * the whole gateway; knex's better-sqlite3 stream() would read every row into memory anyway).
 */
export async function* transactions(deps: Deps, scope: Scope, range: Range, batch = CSV_BATCH): AsyncGenerator<Transaction> {
  const sources = [
    (after: Position | undefined) => paymentsPage(deps.db, scope, range, after, batch),
    (after: Position | undefined) => refundsPage(deps.db, scope, range, after, batch),
  ].map((read) => ({ read, rows: [] as Transaction[], at: 0, after: undefined as Position | undefined, done: false }));
  const head = async (s: (typeof sources)[number]) => {
    if (s.at === s.rows.length && !s.done) {
      s.rows = await s.read(s.after);
      s.at = 0;
      s.done = s.rows.length < batch;
      const last = s.rows[s.rows.length - 1];
      if (last) s.after = { time: last.time, id: last.id };
    }
    return s.at < s.rows.length ? s.rows[s.at] : undefined;
  };
  for (;;) {
    const [p, r] = [await head(sources[0]), await head(sources[1])];
    if (!p && !r) return;
    const takePayment = p && (!r || p.time < r.time || (p.time === r.time && p.id < r.id));
    const s = takePayment ? sources[0] : sources[1];
    yield s.rows[s.at++];
  }
}

/**
 * The CSV, as chunks of lines to stream. The first chunk carries the header and the first rows,
 * so a failing first query surfaces before the response has started.
 */
export async function* transactionsCsv(deps: Deps, scope: Scope, range: Range): AsyncGenerator<string> {
  // Excel opens UTF-8 CSV correctly only with a byte-order mark (subjects and reasons are often Chinese).
  let chunk = '\uFEFF' + csvColumns.join(',') + '\r\n';
  let lines = 0;
  for await (const t of transactions(deps, scope, range)) {
    const signed = t.type === 'refund' ? -t.amount : t.amount;
    chunk += [
      t.type, t.id, beijingTime(t.time), t.channel, t.payment_id, t.out_trade_no, t.channel_order_no, t.channel_trade_no,
      decimal(signed, t.currency), signed, t.currency, t.automatic, t.reason,
    ].map(csvCell).join(',') + '\r\n';
    if (++lines === 500) {
      yield chunk;
      chunk = '';
      lines = 0;
    }
  }
  yield chunk;
}

// --- the summary per day, and its charts ---------------------------------------------------------------

export interface DaySummary {
  date: string;
  channel: string;
  currency: string;
  count: number;
  gross: number;
  refunds: number;
  /** What the channel's statement of the day charged (0 until a statement is in). */
  fees: number;
  net: number;
}

const dateOfDay = (day: number) => new Date(day * 86_400_000).toISOString().slice(0, 10);

/**
 * Per Beijing day, channel and currency: succeeded payments (count, gross), refunds (not the
 * automatic ones), the fees the channels' statements recorded, and the net; plus the range's
 * totals per currency and the two charts (volume, success rate), drawn in the page's language.
 */
export async function dailySummary(deps: Deps, scope: Scope, period: Range & { from: string; to: string }) {
  const [paid, refunded, created, fees] = await Promise.all([
    paymentTotalsByDay(deps.db, scope, period), refundTotalsByDay(deps.db, scope, period, { withAutomatic: true }), createdByDay(deps.db, scope, period),
    statementFees(deps.db, scope, period.from, period.to),
  ]);
  const rows = new Map<string, DaySummary>();
  const entry = (date: string, channel: string, currency: string) => {
    const key = `${date}\u0000${channel}\u0000${currency}`;
    let r = rows.get(key);
    if (!r) rows.set(key, (r = { date, channel, currency, count: 0, gross: 0, refunds: 0, fees: 0, net: 0 }));
    return r;
  };
  for (const p of paid) {
    const r = entry(dateOfDay(p.day), p.channel, p.currency);
    r.count += p.count;
    r.gross += p.sum;
  }
  // Automatic refunds return a duplicate payment that never counted: they stay out of the net.
  for (const x of refunded) if (!x.automatic) entry(dateOfDay(x.day), x.channel, x.currency).refunds += x.sum;
  for (const f of fees) if (f.fee) entry(f.date, f.channel, f.currency).fees += f.fee;
  const days = [...rows.values()].sort((a, b) => a.date.localeCompare(b.date) || a.channel.localeCompare(b.channel) || a.currency.localeCompare(b.currency));
  const totals = new Map<string, DaySummary>();
  for (const d of days) {
    d.net = d.gross - d.refunds - d.fees;
    const t = totals.get(d.currency) ?? { date: `${period.from} – ${period.to}`, channel: 'all', currency: d.currency, count: 0, gross: 0, refunds: 0, fees: 0, net: 0 };
    t.count += d.count;
    t.gross += d.gross;
    t.refunds += d.refunds;
    t.fees += d.fees;
    t.net += d.net;
    totals.set(d.currency, t);
  }
  // Charts over every day of the range, in the main currency (the one with the most volume).
  const main = [...totals.values()].sort((a, b) => b.gross - a.gross)[0]?.currency ?? 'CNY';
  const dates: string[] = [];
  for (let t = period.start; t < period.end; t += 86_400) dates.push(dateOfDay(Math.floor((t + 28_800) / 86_400)));
  const volumeOf = (date: string) => days.filter((d) => d.date === date && d.currency === main).reduce((s, d) => s + d.gross, 0);
  const byDay = new Map(created.map((c) => [dateOfDay(c.day), c]));
  const volumeChart = (lang: Lang) => {
    const t = translator(lang);
    const points = dates.map((date) => {
      const v = volumeOf(date);
      return { label: date.slice(5), value: v, title: t('{date}: {amount}', { date, amount: money(v, main, lang) }) };
    });
    return barChart(t('Volume per day ({currency})', { currency: main }), points, (v) => money(v, main, lang));
  };
  const successRateChart = (lang: Lang) => {
    const t = translator(lang);
    const points = dates.map((date) => {
      const c = byDay.get(date);
      return c && c.created
        ? { label: date.slice(5), value: c.succeeded / c.created, title: t('{date}: {succeeded} of {created} payments succeeded ({percent}%)', { date, succeeded: c.succeeded, created: c.created, percent: Math.round((100 * c.succeeded) / c.created) }) }
        : { label: date.slice(5), value: null, title: t('{date}: no payments', { date }) };
    });
    return rateChart(t('Success rate per day (payments created that day that succeeded)'), points);
  };
  return {
    // summarize()'s figures from the same rows: the page reads each index once (90 days: 180k entries).
    summary: channelSummaries(paid, refunded),
    days,
    totals: [...totals.values()],
    /** The SVG charts, in the language the page is read in. */
    charts: { volume: volumeChart, successRate: successRateChart },
  };
}
