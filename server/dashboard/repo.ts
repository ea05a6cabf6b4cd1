import type { Knex } from 'knex';
import { bool, isPostgres, parseJson } from '../db.ts';
import { paymentFromRow, type PaymentRow } from '../payments/repo.ts';
import { refundFromRow, type RefundRow } from '../refunds/repo.ts';
import { eventFromRow, type EventObject } from '../events/repo.ts';

/** The console's SQL. Every query is scoped by the logged-in user's app (and mode for lists). */

export interface Scope {
  appId: string;
  livemode: boolean;
}

const PROVIDERS = ['alipay', 'wechatpay', 'unionpay', 'paypal'];

export interface PaymentFilters {
  status?: string;
  channel?: string;
  /** Only these payments: the ones a search term names (paymentIdsMatching). */
  ids?: string[];
  /** Created at or after, unix seconds. */
  createdFrom?: number;
  /** Created before, unix seconds (the midnight after the last day asked for). */
  createdBefore?: number;
  /** Amount at least / at most, minor units, inclusive. */
  amountMin?: number;
  amountMax?: number;
}

/** The app's payments in one mode, filtered; paginate() adds the cursor and the order. */
export function paymentsQuery(db: Knex, scope: Scope, f: PaymentFilters): Knex.QueryBuilder {
  const query = db('payments').where({ app_id: scope.appId, livemode: scope.livemode });
  if (f.status) query.where('status', f.status);
  if (f.channel) query.where('channel', f.channel);
  if (f.ids) query.whereIn('id', f.ids);
  // Created bounds narrow the (…, created, id) index range the cursor already walks. On SQLite
  // they are marked likely(): its planner (no statistics) otherwise rates a two-sided range as so
  // selective that, given status AND channel, it took the app's created index and read every
  // payment of the range (90 days: 120–280 ms) over the status+channel one (0.1 ms).
  const bound = (op: '>=' | '<', value: number) => (isPostgres(db) ? query.where('created', op, value) : query.whereRaw(`likely(created ${op} ?)`, [value]));
  if (f.createdFrom !== undefined) bound('>=', f.createdFrom);
  if (f.createdBefore !== undefined) bound('<', f.createdBefore);
  if (f.amountMin !== undefined) query.where('amount', '>=', f.amountMin);
  if (f.amountMax !== undefined) query.where('amount', '<=', f.amountMax);
  return query;
}

/**
 * The payments a search term names exactly: its out_trade_no, its id, a channel's trade number or
 * our order number at a channel (the attempts hold every one a payment ever had). A UNION of four
 * index lookups: as one WHERE with ORs and a subquery, both planners read every payment.
 */
export async function paymentIdsMatching(db: Knex, scope: Scope, q: string): Promise<string[]> {
  const own = { app_id: scope.appId, livemode: scope.livemode };
  const rows = await db('payments').select('id').where({ ...own, out_trade_no: q })
    .union([
      db('payments').select('id').where({ ...own, id: q }),
      db('payment_attempts').select('payment_id as id').where({ ...own, channel_trade_no: q }),
      db('payment_attempts').select('payment_id as id').whereIn('provider', PROVIDERS).where({ ...own, channel_order_no: q }),
    ]);
  return rows.map((r: { id: string }) => r.id);
}

export interface LastFailure {
  channel: string;
  code: string | null;
  message: string | null;
}

/**
 * For each listed payment whose latest attempt failed, that failure: a payment the customer tried
 * and failed to pay must not look like one nobody touched. One index lookup per listed payment
 * (attempts by payment_id), so it costs the same at any table size.
 */
export async function lastFailures(db: Knex, paymentIds: string[]): Promise<Map<string, LastFailure>> {
  if (paymentIds.length === 0) return new Map();
  const rows = await db('payment_attempts')
    .whereIn('payment_id', paymentIds)
    .select('payment_id', 'id', 'status', 'channel', 'failure_code', 'failure_message', 'created');
  const latest = new Map<string, any>();
  for (const r of rows) {
    const seen = latest.get(r.payment_id);
    if (!seen || Number(r.created) > Number(seen.created) || (Number(r.created) === Number(seen.created) && r.id > seen.id)) latest.set(r.payment_id, r);
  }
  const out = new Map<string, LastFailure>();
  for (const [paymentId, r] of latest) {
    if (r.status === 'failed') out.set(paymentId, { channel: r.channel, code: r.failure_code ?? null, message: r.failure_message ?? null });
  }
  return out;
}

/** A payment of the app in either mode (the detail page shows its own mode). */
export async function findAppPayment(db: Knex, appId: string, id: string): Promise<PaymentRow | undefined> {
  const row = await db('payments').where({ id, app_id: appId }).first();
  return row ? paymentFromRow(row) : undefined;
}

export async function attemptsOf(db: Knex, paymentId: string): Promise<any[]> {
  return db('payment_attempts').where({ payment_id: paymentId }).orderBy([{ column: 'created' }, { column: 'id' }]);
}

export async function refundsOf(db: Knex, paymentId: string): Promise<RefundRow[]> {
  const rows = await db('refunds').where({ payment_id: paymentId }).orderBy([{ column: 'created' }, { column: 'id' }]);
  return rows.map(refundFromRow);
}

/** Events about this payment or one of its refunds (events.object_id), oldest first, bounded. */
export async function eventsOf(db: Knex, p: PaymentRow, refundIds: string[], limit = 100): Promise<EventObject[]> {
  const rows = await db('events')
    .whereIn('object_id', [p.id, ...refundIds])
    .orderBy([{ column: 'created' }, { column: 'id' }])
    .limit(limit);
  // Ids are unique across apps, so this only guards; in SQL, app_id would draw SQLite's planner
  // (no statistics) to the app's event index and a walk of every event since the payment.
  return rows.filter((r: any) => r.app_id === p.app_id).map(eventFromRow);
}

export function refundsQuery(db: Knex, scope: Scope, f: { status?: string }): Knex.QueryBuilder {
  const q = db('refunds').where({ app_id: scope.appId, livemode: scope.livemode });
  if (f.status) q.where('status', f.status);
  return q;
}

export async function paymentsByIds(db: Knex, appId: string, ids: string[]): Promise<Map<string, PaymentRow>> {
  if (ids.length === 0) return new Map();
  // By primary key alone, the app checked here: with app_id in the WHERE, SQLite's planner took the
  // app's index and read every payment of the app.
  const rows = await db('payments').whereIn('id', [...new Set(ids)]);
  return new Map(rows.filter((r: any) => r.app_id === appId).map((r: any) => [r.id, paymentFromRow(r)]));
}

export interface EndpointAlert {
  id: string;
  url: string;
  livemode: boolean;
  status: string;
  disabled_reason: string | null;
  failing_since: number | null;
}

/** Endpoints of the app (both modes) that are disabled or have been failing: every page shows them. */
export async function endpointAlerts(db: Knex, appId: string): Promise<EndpointAlert[]> {
  const rows = await db('webhook_endpoints')
    .where({ app_id: appId })
    .whereNull('deleted_at')
    .where((w) => w.where('status', 'disabled').orWhereNotNull('failing_since'))
    .orderBy('created', 'desc')
    .limit(20)
    .select('id', 'url', 'livemode', 'status', 'disabled_reason', 'failing_since');
  return rows.map((r: any) => ({ ...r, livemode: bool(r.livemode), failing_since: r.failing_since === null ? null : Number(r.failing_since) }));
}

/** Console view of endpoints: the public object plus what only the merchant's console shows. */
export async function endpointsForConsole(db: Knex, scope: Scope): Promise<any[]> {
  const rows = await db('webhook_endpoints')
    .where({ app_id: scope.appId, livemode: scope.livemode })
    .whereNull('deleted_at')
    .orderBy([{ column: 'created', order: 'desc' }, { column: 'id', order: 'desc' }])
    .select('id', 'url', 'enabled_events', 'status', 'disabled_reason', 'failing_since', 'created');
  return rows.map((r: any) => ({
    ...r,
    enabled_events: parseJson<string[]>(r.enabled_events, ['*']),
    failing_since: r.failing_since === null ? null : Number(r.failing_since),
    created: Number(r.created),
  }));
}

export async function findConsoleEndpoint(db: Knex, scope: Scope, id: string): Promise<any | undefined> {
  const list = await db('webhook_endpoints').where({ id, app_id: scope.appId, livemode: scope.livemode }).whereNull('deleted_at').select('*');
  const r = list[0];
  return r && { ...r, enabled_events: parseJson<string[]>(r.enabled_events, ['*']), failing_since: r.failing_since === null ? null : Number(r.failing_since) };
}

export async function appRecord(db: Knex, appId: string): Promise<{ id: string; name: string; origins: string[] } | undefined> {
  const r = await db('apps').where({ id: appId }).first('id', 'name', 'allowed_origins');
  return r ? { id: r.id, name: r.name, origins: parseJson<string[]>(r.allowed_origins, []) } : undefined;
}

export async function updateAppOrigins(db: Knex, appId: string, origins: string[]): Promise<void> {
  await db('apps').where({ id: appId }).update({ allowed_origins: JSON.stringify(origins) });
}

export interface ChannelConfigStatus {
  provider: string;
  livemode: boolean;
  generated: boolean;
  updated: number;
}

/** Which channel configs exist and when they changed: never the config itself. */
export async function channelConfigStatus(db: Knex, appId: string): Promise<ChannelConfigStatus[]> {
  const rows = await db('channel_configs').where({ app_id: appId }).select('provider', 'livemode', 'generated', 'updated');
  return rows.map((r: any) => ({ provider: r.provider, livemode: bool(r.livemode), generated: bool(r.generated), updated: Number(r.updated) }));
}
