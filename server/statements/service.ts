/**
 * Statement reconciliation (对账, DESIGN §Console): fetch or take a day's statement, keep it with
 * its SHA-256, read its lines, and match them against the gateway's attempts and refunds by the
 * channel's merchant order number (our attempt's channel_order_no) and refund number (our refund
 * id). What disagrees becomes a discrepancy of the day; the first time a day has new ones, the
 * event reconciliation.discrepancy is written with them (outbox, same transaction).
 */
import crypto from 'node:crypto';
import type { Deps } from '../deps.ts';
import { ApiError, ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../errors.ts';
import { statementChannelFor } from '../channels/registry.ts';
import type { Provider } from '../channels/types.ts';
import type { ParsedStatement, StatementKind } from '../channels/statements.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { insertEvent } from '../events/repo.ts';
import { beijingRange } from '../dashboard/format.ts';
import {
  attemptsByOrderNo, dayDiscrepancies, ensureStatement, findStatement, listedElsewhere, markChecked, markStatementFailed, markStatementMissing,
  paidAttempts, refundsById, replaceDiscrepancies, saveStatementFile, setRowChannels, statementRows, succeededRefunds,
  type DayKey, type FoundDiscrepancy, type StoredStatement,
} from './repo.ts';

export interface CheckResult {
  statement: StoredStatement;
  open: number;
  fresh: number;
  eventId?: string;
}

/** A statement fault as one line for the console; never a stack or a credential. */
export function describeFault(err: unknown): string {
  if (err instanceof SignatureError) return `refused: ${err.message}`;
  if (err instanceof ChannelConfigError) return `not configured: ${err.message}`;
  if (err instanceof ChannelUnavailable) return `the channel could not be reached: ${err.message}`;
  if (err instanceof ChannelRequestError) return `${err.code}: ${err.message}`;
  if (err instanceof MalformedMessageError) return `unreadable statement: ${err.message}`;
  return 'the fetch failed';
}

function adapterOf(provider: Provider) {
  const adapter = statementChannelFor(provider);
  if (!adapter) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', `Statements of ${provider} are not supported yet.`, 'channel');
  return adapter;
}

export function dayRange(date: string): { start: number; end: number } {
  const range = beijingRange(date, date);
  if (!range) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Give the date as YYYY-MM-DD.', 'date');
  return range;
}

/**
 * Fetches every statement the channel publishes for the day, stores each, then checks the day.
 * A fault is recorded on the statement (a file stored earlier is kept) and thrown on unless
 * `retryAtMs` is given (the daily job), which schedules the next try instead.
 */
export async function fetchDay(deps: Deps, k: DayKey, opts: { retryAtMs?: number | null; kinds?: readonly StatementKind[] } = {}): Promise<CheckResult> {
  dayRange(k.date);
  const adapter = adapterOf(k.provider);
  let firstFault: unknown;
  for (const kind of opts.kinds ?? adapter.kinds) {
    const id = await ensureStatement(deps.db, k, kind, null);
    try {
      const cred = await getCredentials(deps, k.appId, k.provider, k.livemode);
      const got = await adapter.fetchStatement(cred, k.date, kind);
      if (got.status === 'missing') {
        await markStatementMissing(deps.db, id, got.reason);
        continue;
      }
      const parsed = adapter.parseStatement(got.file.body, kind);
      await storeFile(deps, id, { source: 'fetch', body: got.file.body, fileName: got.file.fileName, channelHash: got.file.channelHash ? `${got.file.channelHash.type}:${got.file.channelHash.value}` : null, parsed });
    } catch (err) {
      if (err instanceof ApiError) throw err;
      deps.logger.warn('statement fetch failed', { app_id: k.appId, provider: k.provider, date: k.date, kind, error: describeFault(err) });
      await markStatementFailed(deps.db, id, describeFault(err), opts.retryAtMs ?? null);
      firstFault ??= err;
    }
  }
  const result = await checkDay(deps, k);
  if (firstFault !== undefined && opts.retryAtMs === undefined) {
    throw new ApiError(502, 'channel_error', 'statement_fetch_failed', describeFault(firstFault));
  }
  return result;
}

/** An uploaded file for a day (a bill downloaded from the channel's merchant portal): stored, read, checked. */
export async function uploadDay(deps: Deps, k: DayKey, kind: StatementKind, file: { body: Buffer; fileName: string }): Promise<CheckResult> {
  dayRange(k.date);
  const adapter = adapterOf(k.provider);
  if (!adapter.kinds.includes(kind)) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', `${k.provider} has no ${kind} statement.`, 'kind');
  if (file.body.length === 0) throw new ApiError(400, 'invalid_request_error', 'parameter_missing', 'Choose the statement file to upload.', 'file');
  let parsed: ParsedStatement;
  try {
    parsed = adapter.parseStatement(file.body, kind);
  } catch (err) {
    if (err instanceof MalformedMessageError) throw new ApiError(400, 'invalid_request_error', 'statement_unreadable', `This is not a ${k.provider} ${kind} statement: ${err.message}`, 'file');
    throw err;
  }
  const id = await ensureStatement(deps.db, k, kind, null);
  await storeFile(deps, id, { source: 'upload', body: file.body, fileName: file.fileName.slice(0, 200) || `upload-${k.date}`, channelHash: null, parsed });
  return checkDay(deps, k);
}

async function storeFile(deps: Deps, id: string, f: { source: 'fetch' | 'upload'; body: Buffer; fileName: string; channelHash: string | null; parsed: ParsedStatement }): Promise<void> {
  const sha256 = crypto.createHash('sha256').update(f.body).digest('hex');
  await deps.db.transaction((trx) => saveStatementFile(trx, id, {
    status: 'fetched', source: f.source, file: f.body, fileName: f.fileName, sha256, channelHash: f.channelHash, lineCount: f.parsed.lineCount, rows: f.parsed.rows,
  }));
}

/** The file's own disagreements (its totals against its lines), read again from the stored bytes. */
async function fileProblems(deps: Deps, st: StoredStatement): Promise<ParsedStatement['problems']> {
  if (!st.hasFile) return [];
  const row = await deps.db('statements').where({ id: st.id }).first('file');
  try {
    return adapterOf(st.provider).parseStatement(Buffer.from(row.file), st.kind).problems;
  } catch (err) {
    return [{ kind: 'total', detail: `the stored file no longer reads: ${(err as Error).message}` }];
  }
}

/**
 * Matches the day's stored trade statement against our side and records the discrepancies.
 * Idempotent: the same statement and the same payments give the same discrepancies, never twice.
 */
export async function checkDay(deps: Deps, k: DayKey): Promise<CheckResult> {
  const range = dayRange(k.date);
  const statementId = await ensureStatement(deps.db, k, 'trade', null);
  let st = (await findStatement(deps.db, k, 'trade'))!;
  const found: FoundDiscrepancy[] = [];
  const channelOfRow = new Map<number, string>();
  // Only a statement the channel gave (or one uploaded) is compared; a failed or pending fetch proves nothing.
  if (st.status === 'fetched' || st.status === 'missing') {
    const rows = st.status === 'fetched' ? await statementRows(deps.db, statementId) : [];
    const payments = rows.filter((r) => r.type === 'payment');
    const refunds = rows.filter((r) => r.type === 'refund');
    const ours = await attemptsByOrderNo(deps.db, k, payments.map((r) => r.orderNo));
    const listed = new Set<string>();
    for (const r of payments) {
      listed.add(r.orderNo);
      const a = ours.get(r.orderNo);
      const base = { orderNo: r.orderNo, refundNo: '', theirsAmount: r.amount, theirsStatus: r.channelStatus, currency: r.currency };
      if (!a) {
        found.push({ ...base, kind: 'theirs_not_ours', detail: `The channel lists a payment of order ${r.orderNo} (trade ${r.channelTradeNo ?? '?'}) that this gateway never placed.` });
        continue;
      }
      channelOfRow.set(r.id, a.channel);
      const mine = { paymentId: a.paymentId, oursAmount: a.amount, oursStatus: a.paymentStatus };
      if (a.attemptStatus !== 'succeeded') {
        found.push({ ...base, ...mine, oursStatus: `${a.paymentStatus}/${a.attemptStatus}`, kind: 'status_mismatch', detail: `Paid at the channel, ${a.paymentStatus} here: the gateway missed the channel's confirmation (a lost notify); the background query will pick it up, or query it from the payment's page.` });
      } else if (a.amount !== r.amount || a.currency !== r.currency) {
        found.push({ ...base, ...mine, kind: 'amount_mismatch', detail: `The channel took ${r.amount} ${r.currency} (minor units) for order ${r.orderNo}; this gateway has ${a.amount} ${a.currency}.` });
      }
      if (r.fee > r.amount || r.fee < 0) {
        found.push({ ...base, ...mine, refundNo: '#fee', kind: 'fee_mismatch', detail: `The channel's fee ${r.fee} on a payment of ${r.amount} is not possible.` });
      }
    }
    const missing = (await paidAttempts(deps.db, k, range)).filter((a) => !listed.has(a.orderNo));
    const elsewhere = await listedElsewhere(deps.db, k, 'payment', missing.map((a) => a.orderNo));
    for (const a of missing) {
      if (elsewhere.has(a.orderNo)) continue; // paid around midnight: the channel dated it the day before or after
      found.push({
        kind: 'ours_not_theirs', orderNo: a.orderNo, refundNo: '', paymentId: a.paymentId, oursAmount: a.amount, oursStatus: a.paymentStatus, currency: a.currency,
        detail: `Succeeded here on this day, but the channel's statement does not list order ${a.orderNo}: the channel may never have been paid.`,
      });
    }
    const ourRefunds = await refundsById(deps.db, k, refunds.flatMap((r) => (r.refundNo ? [r.refundNo] : [])));
    const refundListed = new Set<string>();
    for (const r of refunds) {
      const refundNo = r.refundNo ?? '';
      refundListed.add(refundNo);
      const mine = refundNo ? ourRefunds.get(refundNo) : undefined;
      const a = ours.get(r.orderNo);
      if (a) channelOfRow.set(r.id, a.channel);
      const base = { orderNo: r.orderNo, refundNo, theirsAmount: r.amount, theirsStatus: r.channelStatus, currency: r.currency, paymentId: mine?.paymentId ?? a?.paymentId };
      if (!mine) {
        found.push({ ...base, kind: 'refund_mismatch', detail: `The channel refunded ${r.amount} of order ${r.orderNo} under refund number ${refundNo || '(none)'}, which is no refund of this gateway.` });
      } else if (mine.status !== 'succeeded') {
        found.push({ ...base, refundId: mine.refundId, oursAmount: mine.amount, oursStatus: mine.status, kind: 'refund_mismatch', detail: `Refunded at the channel, ${mine.status} here.` });
      } else if (mine.amount !== r.amount) {
        found.push({ ...base, refundId: mine.refundId, oursAmount: mine.amount, oursStatus: mine.status, kind: 'refund_mismatch', detail: `The channel refunded ${r.amount}; this gateway's refund is ${mine.amount}.` });
      }
    }
    const unlisted = (await succeededRefunds(deps.db, k, range)).filter((r) => !refundListed.has(r.refundId));
    const refundsElsewhere = await listedElsewhere(deps.db, k, 'refund', unlisted.map((r) => r.refundId));
    for (const r of unlisted) {
      if (refundsElsewhere.has(r.refundId)) continue;
      found.push({
        kind: 'refund_mismatch', orderNo: r.orderNo, refundNo: r.refundId, paymentId: r.paymentId, refundId: r.refundId, oursAmount: r.amount, oursStatus: r.status, currency: r.currency,
        detail: `Refund ${r.refundId} succeeded here on this day, but the channel's statement does not list it.`,
      });
    }
    (await fileProblems(deps, st)).forEach((p, i) => {
      found.push({ kind: p.kind === 'fee' ? 'fee_mismatch' : 'total_mismatch', orderNo: '', refundNo: `#${i + 1}`, detail: `The statement disagrees with itself: ${p.detail}.` });
    });
  }
  const { fresh, eventId } = await deps.db.transaction(async (trx) => {
    if (channelOfRow.size) await setRowChannels(trx, channelOfRow);
    const fresh = await replaceDiscrepancies(trx, k, found);
    await markChecked(trx, statementId);
    if (fresh.length === 0) return { fresh, eventId: undefined };
    const event = await insertEvent(trx, { appId: k.appId, livemode: k.livemode, type: 'reconciliation.discrepancy', object: statementDayObject(st, k, found.length, fresh) });
    return { fresh, eventId: event.id };
  });
  st = (await findStatement(deps.db, k, 'trade'))!;
  const open = (await dayDiscrepancies(deps.db, k)).filter((d) => d.status === 'open').length;
  return { statement: st, open, fresh: fresh.length, ...(eventId ? { eventId } : {}) };
}

function statementDayObject(st: StoredStatement, k: DayKey, open: number, fresh: FoundDiscrepancy[]): Record<string, unknown> {
  return {
    id: st.id, object: 'statement_day', livemode: k.livemode, channel: k.provider, date: k.date, status: st.status, sha256: st.sha256, open_discrepancies: open,
    new_discrepancies: fresh.slice(0, 100).map((d) => ({
      kind: d.kind, order_no: d.orderNo, refund_no: d.refundNo, payment: d.paymentId ?? null, refund: d.refundId ?? null,
      ours_amount: d.oursAmount ?? null, theirs_amount: d.theirsAmount ?? null, detail: d.detail,
    })),
  };
}
