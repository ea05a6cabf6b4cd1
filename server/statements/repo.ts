/**
 * SQL of statement reconciliation: stored statements and their lines, our side of a day (the
 * attempts and refunds the channel should list), and the discrepancies of a day.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { newId, nowSeconds } from '../crypto.ts';
import type { Provider } from '../channels/types.ts';
import type { StatementKind, StatementRow } from '../channels/statements.ts';
import type { Scope } from '../dashboard/repo.ts';

export interface DayKey extends Scope {
  provider: Provider;
  /** Beijing date YYYY-MM-DD. */
  date: string;
}

export interface StoredStatement {
  id: string;
  provider: Provider;
  date: string;
  kind: StatementKind;
  status: 'pending' | 'fetched' | 'missing' | 'failed';
  source: 'fetch' | 'upload';
  fileName: string | null;
  sha256: string | null;
  channelHash: string | null;
  lineCount: number;
  error: string | null;
  fetchedAt: number | null;
  checkedAt: number | null;
  hasFile: boolean;
}

export function statementFromRow(r: any): StoredStatement {
  return {
    id: r.id, provider: r.provider, date: r.bill_date, kind: r.kind, status: r.status, source: r.source, fileName: r.file_name ?? null,
    sha256: r.sha256 ?? null, channelHash: r.channel_hash ?? null, lineCount: Number(r.line_count ?? 0), error: r.error ?? null,
    fetchedAt: r.fetched_at === null || r.fetched_at === undefined ? null : Number(r.fetched_at),
    checkedAt: r.checked_at === null || r.checked_at === undefined ? null : Number(r.checked_at), hasFile: Boolean(r.sha256),
  };
}

const statementColumns = ['id', 'provider', 'bill_date', 'kind', 'status', 'source', 'file_name', 'sha256', 'channel_hash', 'line_count', 'error', 'fetched_at', 'checked_at'];
const keyWhere = (k: DayKey, kind: StatementKind) => ({ app_id: k.appId, livemode: k.livemode, provider: k.provider, bill_date: k.date, kind });

export async function findStatement(db: Knex | Knex.Transaction, k: DayKey, kind: StatementKind): Promise<StoredStatement | undefined> {
  const row = await db('statements').where(keyWhere(k, kind)).first(statementColumns);
  return row ? statementFromRow(row) : undefined;
}

/** The statement row of a day and kind, created pending when there is none; its id. */
export async function ensureStatement(db: Knex | Knex.Transaction, k: DayKey, kind: StatementKind, nextFetchAtMs: number | null): Promise<string> {
  const now = Date.now();
  await db('statements')
    .insert({ id: newId('stmt'), ...keyWhere(k, kind), status: 'pending', source: 'fetch', next_fetch_at_ms: nextFetchAtMs, created: nowSeconds(), updated_ms: now })
    .onConflict(['app_id', 'livemode', 'provider', 'bill_date', 'kind'])
    .ignore();
  const row = await db('statements').where(keyWhere(k, kind)).first('id');
  return row.id as string;
}

/** A fetched or uploaded file with its lines, replacing what the day had (lines and all). */
export async function saveStatementFile(
  trx: Knex.Transaction, id: string,
  f: { status: 'fetched'; source: 'fetch' | 'upload'; file: Buffer; fileName: string; sha256: string; channelHash: string | null; lineCount: number; rows: StatementRow[] },
): Promise<void> {
  const now = Date.now();
  await trx('statements').where({ id }).update({
    status: f.status, source: f.source, file: f.file, file_name: f.fileName, sha256: f.sha256, channel_hash: f.channelHash, line_count: f.lineCount,
    error: null, next_fetch_at_ms: null, fetched_at: Math.floor(now / 1000), updated_ms: now,
  });
  await trx('statement_rows').where({ statement_id: id }).delete();
  const rows = f.rows.map((r, i) => ({
    statement_id: id, line: i + 1, type: r.type, order_no: r.orderNo.slice(0, 64), refund_no: r.refundNo?.slice(0, 64) ?? null,
    channel_trade_no: r.channelTradeNo?.slice(0, 100) ?? null, amount: r.amount, fee: r.fee, currency: r.currency.slice(0, 3), channel_status: r.channelStatus.slice(0, 40),
    time: r.time ?? null,
  }));
  if (rows.length) await trx.batchInsert('statement_rows', rows, 500);
}

/** The channel has no statement for the day: nothing stored, nothing to fetch again. */
export async function markStatementMissing(db: Knex | Knex.Transaction, id: string, reason: string): Promise<void> {
  const now = Date.now();
  await db('statements').where({ id }).whereNot('status', 'fetched').update({ status: 'missing', error: reason.slice(0, 500), next_fetch_at_ms: null, fetched_at: Math.floor(now / 1000), updated_ms: now });
}

/** A fetch failed: the error is kept; a file stored earlier stays (and stays fetched). */
export async function markStatementFailed(db: Knex | Knex.Transaction, id: string, error: string, retryAtMs: number | null): Promise<void> {
  const now = Date.now();
  await db('statements').where({ id }).update({ error: error.slice(0, 1000), next_fetch_at_ms: retryAtMs, updated_ms: now });
  await db('statements').where({ id }).whereIn('status', ['pending', 'missing']).update({ status: 'failed' });
}

export async function markChecked(db: Knex | Knex.Transaction, id: string): Promise<void> {
  await db('statements').where({ id }).update({ checked_at: nowSeconds(), updated_ms: Date.now() });
}

/** The stored bytes of a statement (for a download from the console). */
export async function statementFile(db: Knex, scope: Scope, id: string): Promise<{ file: Buffer; fileName: string } | undefined> {
  const row = await db('statements').where({ id, app_id: scope.appId, livemode: scope.livemode }).whereNotNull('file').first('file', 'file_name');
  return row ? { file: Buffer.from(row.file), fileName: row.file_name ?? `${id}.bin` } : undefined;
}

export interface StoredRow extends StatementRow {
  id: number;
}

export async function statementRows(db: Knex | Knex.Transaction, statementId: string): Promise<StoredRow[]> {
  const rows = await db('statement_rows').where({ statement_id: statementId }).orderBy('line');
  return rows.map((r: any) => ({
    id: Number(r.id), type: r.type, orderNo: r.order_no, refundNo: r.refund_no ?? undefined, channelTradeNo: r.channel_trade_no ?? undefined,
    amount: Number(r.amount), fee: Number(r.fee), currency: r.currency, channelStatus: r.channel_status ?? '', time: r.time === null ? undefined : Number(r.time),
  }));
}

export async function setRowChannels(trx: Knex.Transaction, byRowId: Map<number, string>): Promise<void> {
  for (const [id, channel] of byRowId) await trx('statement_rows').where({ id }).update({ channel });
}

/** Which of these order (and refund) numbers other days' statements of the provider list: they are not missing, only dated apart. */
export async function listedElsewhere(db: Knex | Knex.Transaction, k: DayKey, type: 'payment' | 'refund', numbers: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  const column = type === 'payment' ? 'r.order_no' : 'r.refund_no';
  for (let i = 0; i < numbers.length; i += 500) {
    const rows = await db('statement_rows as r')
      .join('statements as s', 's.id', 'r.statement_id')
      .where({ 's.app_id': k.appId, 's.livemode': k.livemode, 's.provider': k.provider, 's.kind': 'trade', 'r.type': type })
      .whereNot('s.bill_date', k.date)
      .whereIn(column, numbers.slice(i, i + 500))
      .select(`${column} as no`);
    for (const r of rows) out.add(r.no);
  }
  return out;
}

// --- our side -------------------------------------------------------------------------------------

export interface OurAttempt {
  attemptId: string;
  orderNo: string;
  attemptStatus: string;
  channel: string;
  paymentId: string;
  paymentStatus: string;
  amount: number;
  currency: string;
  paidAt: number | null;
}

const attemptColumns = [
  'a.id as attempt_id', 'a.channel_order_no', 'a.status as attempt_status', 'a.channel', 'p.id as payment_id', 'p.status as payment_status', 'p.amount',
  'p.currency', 'p.paid_at',
];
const attemptOf = (r: any): OurAttempt => ({
  attemptId: r.attempt_id, orderNo: r.channel_order_no, attemptStatus: r.attempt_status, channel: r.channel, paymentId: r.payment_id,
  paymentStatus: r.payment_status, amount: Number(r.amount), currency: r.currency, paidAt: r.paid_at === null ? null : Number(r.paid_at),
});

/** Our attempts at the provider under these channel order numbers (the unique (provider, channel_order_no) index). */
export async function attemptsByOrderNo(db: Knex | Knex.Transaction, k: DayKey, orderNos: string[]): Promise<Map<string, OurAttempt>> {
  const out = new Map<string, OurAttempt>();
  const unique = [...new Set(orderNos)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await db('payment_attempts as a')
      .join('payments as p', 'p.id', 'a.payment_id')
      .where({ 'a.provider': k.provider, 'a.app_id': k.appId, 'a.livemode': k.livemode })
      .whereIn('a.channel_order_no', unique.slice(i, i + 500))
      .select(attemptColumns);
    for (const r of rows) out.set(r.channel_order_no, attemptOf(r));
  }
  return out;
}

/** Our paid attempts at the provider whose payment was paid in [start, end): what the channel's statement of the day should list. */
export async function paidAttempts(db: Knex | Knex.Transaction, k: DayKey, range: { start: number; end: number }): Promise<OurAttempt[]> {
  const rows = await db('payments as p')
    .join('payment_attempts as a', 'a.payment_id', 'p.id')
    .where({ 'p.app_id': k.appId, 'p.livemode': k.livemode, 'a.provider': k.provider, 'a.status': 'succeeded' })
    .whereIn('p.status', ['succeeded', 'closed'])
    .where('p.paid_at', '>=', range.start)
    .where('p.paid_at', '<', range.end)
    .select(attemptColumns);
  return rows.map(attemptOf);
}

export interface OurRefund {
  refundId: string;
  orderNo: string;
  paymentId: string;
  status: string;
  amount: number;
  currency: string;
}

const refundColumns = ['r.id', 'r.status', 'r.amount', 'r.currency', 'r.payment_id', 'a.channel_order_no'];
const refundOf = (r: any): OurRefund => ({ refundId: r.id, orderNo: r.channel_order_no, paymentId: r.payment_id, status: r.status, amount: Number(r.amount), currency: r.currency });

/** Our refunds by id (the refund number the gateway sends the channel is the refund's id). */
export async function refundsById(db: Knex | Knex.Transaction, k: DayKey, ids: string[]): Promise<Map<string, OurRefund>> {
  const out = new Map<string, OurRefund>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await db('refunds as r')
      .join('payment_attempts as a', 'a.id', 'r.attempt_id')
      .where({ 'r.app_id': k.appId, 'r.livemode': k.livemode, 'a.provider': k.provider })
      .whereIn('r.id', unique.slice(i, i + 500))
      .select(refundColumns);
    for (const r of rows) out.set(r.id, refundOf(r));
  }
  return out;
}

/** Our succeeded refunds at the provider made in [start, end). */
export async function succeededRefunds(db: Knex | Knex.Transaction, k: DayKey, range: { start: number; end: number }): Promise<OurRefund[]> {
  const rows = await db('refunds as r')
    .join('payment_attempts as a', 'a.id', 'r.attempt_id')
    .where({ 'r.app_id': k.appId, 'r.livemode': k.livemode, 'r.status': 'succeeded', 'a.provider': k.provider })
    .where('r.created', '>=', range.start)
    .where('r.created', '<', range.end)
    .select(refundColumns);
  return rows.map(refundOf);
}

// --- discrepancies ----------------------------------------------------------------------------------

export const DISCREPANCY_KINDS = ['ours_not_theirs', 'theirs_not_ours', 'amount_mismatch', 'status_mismatch', 'refund_mismatch', 'fee_mismatch', 'total_mismatch'] as const;
export type DiscrepancyKind = (typeof DISCREPANCY_KINDS)[number];

export interface FoundDiscrepancy {
  kind: DiscrepancyKind;
  orderNo: string;
  refundNo: string;
  paymentId?: string;
  refundId?: string;
  oursAmount?: number;
  theirsAmount?: number;
  oursStatus?: string;
  theirsStatus?: string;
  currency?: string;
  detail: string;
}

export interface Discrepancy extends FoundDiscrepancy {
  id: string;
  provider: Provider;
  date: string;
  status: 'open' | 'gone' | 'resolved';
  resolutionNote: string | null;
  resolvedBy: string | null;
  resolvedAt: number | null;
  created: number;
}

function discrepancyOf(r: any): Discrepancy {
  const num = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));
  return {
    id: r.id, provider: r.provider, date: r.bill_date, kind: r.kind, orderNo: r.order_no, refundNo: r.refund_no, paymentId: r.payment_id ?? undefined,
    refundId: r.refund_id ?? undefined, oursAmount: num(r.ours_amount), theirsAmount: num(r.theirs_amount), oursStatus: r.ours_status ?? undefined,
    theirsStatus: r.theirs_status ?? undefined, currency: r.currency ?? undefined, detail: r.detail, status: r.status, resolutionNote: r.resolution_note ?? null,
    resolvedBy: r.resolved_by ?? null, resolvedAt: num(r.resolved_at) ?? null, created: Number(r.created),
  };
}

const dKey = (d: { kind: string; orderNo: string; refundNo: string }) => `${d.kind}\u0000${d.orderNo}\u0000${d.refundNo}`;

/**
 * Makes the day's discrepancies what a check found: new ones are inserted (open), ones found
 * again are refreshed (open again unless resolved), ones no longer found become gone. Returns the
 * ones that had never been recorded before: only those raise an event.
 */
export async function replaceDiscrepancies(trx: Knex.Transaction, k: DayKey, found: FoundDiscrepancy[]): Promise<FoundDiscrepancy[]> {
  const where = { app_id: k.appId, livemode: k.livemode, provider: k.provider, bill_date: k.date };
  const existing = new Map((await trx('statement_discrepancies').where(where).select('id', 'kind', 'order_no', 'refund_no', 'status'))
    .map((r: any) => [dKey({ kind: r.kind, orderNo: r.order_no, refundNo: r.refund_no }), r]));
  const now = Date.now();
  const fresh: FoundDiscrepancy[] = [];
  const seen = new Set<string>();
  for (const d of found) {
    const key = dKey(d);
    if (seen.has(key)) continue;
    seen.add(key);
    const fields = {
      payment_id: d.paymentId ?? null, refund_id: d.refundId ?? null, ours_amount: d.oursAmount ?? null, theirs_amount: d.theirsAmount ?? null,
      ours_status: d.oursStatus?.slice(0, 24) ?? null, theirs_status: d.theirsStatus?.slice(0, 40) ?? null, currency: d.currency ?? null, detail: d.detail.slice(0, 1000), updated_ms: now,
    };
    const row = existing.get(key);
    if (!row) {
      await trx('statement_discrepancies').insert({ id: newId('disc'), ...where, kind: d.kind, order_no: d.orderNo.slice(0, 64), refund_no: d.refundNo.slice(0, 64), ...fields, status: 'open', created: nowSeconds() });
      fresh.push(d);
    } else {
      await trx('statement_discrepancies').where({ id: row.id }).update({ ...fields, ...(row.status === 'resolved' ? {} : { status: 'open' }) });
    }
  }
  const gone = [...existing.entries()].filter(([key, r]) => !seen.has(key) && r.status === 'open').map(([, r]) => r.id);
  if (gone.length) await trx('statement_discrepancies').whereIn('id', gone).update({ status: 'gone', updated_ms: now });
  return fresh;
}

export async function dayDiscrepancies(db: Knex, k: DayKey): Promise<Discrepancy[]> {
  const rows = await db('statement_discrepancies')
    .where({ app_id: k.appId, livemode: k.livemode, provider: k.provider, bill_date: k.date })
    .orderBy([{ column: 'status' }, { column: 'kind' }, { column: 'order_no' }, { column: 'refund_no' }]);
  return rows.map(discrepancyOf);
}

export async function findDiscrepancy(db: Knex, scope: Scope, id: string): Promise<Discrepancy | undefined> {
  const row = await db('statement_discrepancies').where({ id, app_id: scope.appId, livemode: scope.livemode }).first();
  return row ? discrepancyOf(row) : undefined;
}

/** Resolves an open (or gone) discrepancy; false when it was resolved already. */
export async function resolveDiscrepancy(db: Knex, scope: Scope, id: string, note: string, by: string): Promise<boolean> {
  const n = await db('statement_discrepancies')
    .where({ id, app_id: scope.appId, livemode: scope.livemode })
    .whereNot('status', 'resolved')
    .update({ status: 'resolved', resolution_note: note, resolved_by: by.slice(0, 200), resolved_at: nowSeconds(), updated_ms: Date.now() });
  return n === 1;
}

// --- the range's overview -----------------------------------------------------------------------------

export interface DayStatus {
  provider: Provider;
  date: string;
  kind: StatementKind;
  status: StoredStatement['status'];
  source: string;
  lineCount: number;
  error: string | null;
  open: number;
}

/** Every statement of the range's days with its open discrepancy count (one query each). */
export async function statementDays(db: Knex, scope: Scope, from: string, to: string): Promise<DayStatus[]> {
  const [rows, open] = await Promise.all([
    db('statements').where({ app_id: scope.appId, livemode: scope.livemode }).whereBetween('bill_date', [from, to])
      .select('provider', 'bill_date', 'kind', 'status', 'source', 'line_count', 'error'),
    db('statement_discrepancies').where({ app_id: scope.appId, livemode: scope.livemode, status: 'open' }).whereBetween('bill_date', [from, to])
      .groupBy('provider', 'bill_date').select('provider', 'bill_date').count({ n: '*' }),
  ]);
  const openBy = new Map(open.map((r: any) => [`${r.provider}\u0000${r.bill_date}`, Number(r.n)]));
  return rows.map((r: any) => ({
    provider: r.provider, date: r.bill_date, kind: r.kind, status: r.status, source: r.source, lineCount: Number(r.line_count), error: r.error ?? null,
    open: r.kind === 'trade' ? openBy.get(`${r.provider}\u0000${r.bill_date}`) ?? 0 : 0,
  }));
}

/** Fees the statements of the range recorded, per Beijing day, channel (ours when matched) and currency. */
export async function statementFees(db: Knex, scope: Scope, from: string, to: string): Promise<Array<{ date: string; channel: string; currency: string; fee: number }>> {
  const rows = await db('statement_rows as r')
    .join('statements as s', 's.id', 'r.statement_id')
    .where({ 's.app_id': scope.appId, 's.livemode': scope.livemode, 's.kind': 'trade' })
    .whereBetween('s.bill_date', [from, to])
    .groupBy('s.bill_date', 's.provider', 'r.channel', 'r.currency')
    .select('s.bill_date', 's.provider', 'r.channel', 'r.currency')
    .sum({ fee: 'r.fee' });
  return rows.map((r: any) => ({ date: r.bill_date, channel: r.channel ?? r.provider, currency: r.currency, fee: Number(r.fee ?? 0) }));
}

/** The app, mode and provider of every stored channel configuration the daily job fetches for. */
export async function configuredChannels(db: Knex, providers: Provider[]): Promise<Array<{ appId: string; livemode: boolean; provider: Provider }>> {
  const rows = await db('channel_configs').whereIn('provider', providers).select('app_id', 'livemode', 'provider');
  return rows.map((r: any) => ({ appId: r.app_id, livemode: Boolean(r.livemode), provider: r.provider }));
}

/** Statement rows due for a (re)fetch by the daily job. */
export async function dueStatements(db: Knex, nowMs: number, limit: number): Promise<Array<DayKey & { id: string; kind: StatementKind; nextFetchAtMs: number; attempts: number }>> {
  const rows = await db('statements').whereIn('status', ['pending', 'failed']).where('next_fetch_at_ms', '<=', nowMs).where('source', 'fetch').limit(limit)
    .select('id', 'app_id', 'livemode', 'provider', 'bill_date', 'kind', 'next_fetch_at_ms', 'attempts');
  return rows.map((r: any) => ({
    id: r.id, appId: r.app_id, livemode: Boolean(r.livemode), provider: r.provider, date: r.bill_date, kind: r.kind, nextFetchAtMs: Number(r.next_fetch_at_ms), attempts: Number(r.attempts),
  }));
}

/** Claims a due statement for one fetch (the row count decides between processes). */
export async function claimStatement(db: Knex, id: string, nextFetchAtMs: number, leaseUntilMs: number): Promise<boolean> {
  const n = await db('statements').where({ id, next_fetch_at_ms: nextFetchAtMs }).update({ next_fetch_at_ms: leaseUntilMs, attempts: db.raw('attempts + 1'), updated_ms: Date.now() });
  return n === 1;
}

// --- the event's object --------------------------------------------------------------------------------

export const statementDayObjectSchema = z.object({
  id: z.string().describe('stmt_…, the trade statement of the day'),
  object: z.literal('statement_day'),
  livemode: z.boolean(),
  channel: z.string().describe('The provider: alipay, wechatpay…'),
  date: z.string().describe('The Beijing date the statement covers, YYYY-MM-DD'),
  status: z.enum(['fetched', 'missing', 'failed', 'pending']),
  sha256: z.string().nullable(),
  open_discrepancies: z.number().int(),
  new_discrepancies: z.array(z.object({
    kind: z.enum(DISCREPANCY_KINDS),
    order_no: z.string().describe('The order number at the channel (the attempt\'s channel order number)'),
    refund_no: z.string(),
    payment: z.string().nullable(),
    refund: z.string().nullable(),
    ours_amount: z.number().int().nullable(),
    theirs_amount: z.number().int().nullable(),
    detail: z.string(),
  }).strict()).describe('What this check found that no check of the day had found before (at most 100)'),
}).strict().meta({ id: 'StatementDay' });
