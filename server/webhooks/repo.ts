import type { Knex } from 'knex';
import type { AuthContext } from '../deps.ts';
import { isPostgres } from '../db.ts';
import { sqlOf, type Sql } from '../sql.ts';

type Handle = Knex | Knex.Transaction | Sql;

/** SQL for webhook endpoints and the delivery outbox; the only file of this folder that queries. */

export interface EndpointInsert {
  id: string;
  app_id: string;
  livemode: boolean;
  url: string;
  enabled_events: string[];
  secret_sealed: string;
  created: number;
}

export async function insertEndpoint(db: Knex, row: EndpointInsert): Promise<void> {
  await db('webhook_endpoints').insert({ ...row, enabled_events: JSON.stringify(row.enabled_events), status: 'enabled' });
}

/** The caller's live (not deleted) endpoints: every read goes through this scope, so another app's ids are 404. */
export function endpointsOf(db: Knex, auth: AuthContext): Knex.QueryBuilder {
  return db('webhook_endpoints').where({ app_id: auth.appId, livemode: auth.livemode }).whereNull('deleted_at');
}

export function findEndpoint(db: Knex, auth: AuthContext, id: string): Promise<any | undefined> {
  return endpointsOf(db, auth).where({ id }).first();
}

/** Soft-deletes an endpoint and gives up its pending deliveries; false when it is not the caller's. */
export async function softDeleteEndpoint(db: Knex, auth: AuthContext, id: string, nowSec: number): Promise<boolean> {
  return db.transaction(async (trx) => {
    const n = await endpointsOf(trx, auth).where({ id }).update({ deleted_at: nowSec });
    if (n === 0) return false;
    await failPendingDeliveries(trx, id);
    return true;
  });
}

/** Disables an endpoint (it answered 410 Gone, kept failing, or the merchant asked); false when it was not enabled any more. */
export async function disableEndpoint(trx: Knex.Transaction | Sql, id: string, reason: string): Promise<boolean> {
  const n = await sqlOf(trx).run(`update webhook_endpoints set status = 'disabled', disabled_reason = ? where id = ? and status = 'enabled'`, [reason.slice(0, 200), id]);
  if (n === 0) return false;
  await failPendingDeliveries(trx, id);
  return true;
}

/** Re-enables an endpoint with a clean record: the three-day failure clock starts again. */
export async function enableEndpoint(trx: Knex.Transaction, id: string): Promise<void> {
  await trx('webhook_endpoints').where({ id }).update({ status: 'enabled', disabled_reason: null, failing_since: null });
}

export async function updateEndpointFields(trx: Knex.Transaction, id: string, patch: { url?: string; enabled_events?: string[] }): Promise<void> {
  const row: Record<string, unknown> = {};
  if (patch.url !== undefined) row.url = patch.url;
  if (patch.enabled_events !== undefined) row.enabled_events = JSON.stringify(patch.enabled_events);
  if (Object.keys(row).length) await trx('webhook_endpoints').where({ id }).update(row);
}

/**
 * Swaps in a new sealed secret and keeps the current one as the previous secret until
 * `previousExpiresAt` (null: dropped now). Conditional on the current secret, so of two
 * concurrent rotations only one wins and no secret handed out is silently lost.
 */
export async function rotateEndpointSecret(
  db: Knex,
  id: string,
  expect: { currentSealed: string },
  next: { secretSealed: string; previousSealed: string | null; previousExpiresAt: number | null },
): Promise<boolean> {
  const n = await db('webhook_endpoints')
    .where({ id, secret_sealed: expect.currentSealed })
    .whereNull('deleted_at')
    .update({ secret_sealed: next.secretSealed, previous_secret_sealed: next.previousSealed, previous_secret_expires_at: next.previousExpiresAt });
  return n === 1;
}

// A worker holding a lease on one of these notices on completion: its update requires 'pending'.
async function failPendingDeliveries(trx: Knex.Transaction | Sql, endpointId: string): Promise<void> {
  await sqlOf(trx).run(`update webhook_deliveries set status = 'failed', updated_ms = ? where endpoint_id = ? and status = 'pending'`, [Date.now(), endpointId]);
}

export async function endpointRowById(db: Handle, id: string): Promise<any | undefined> {
  return sqlOf(db).first('select * from webhook_endpoints where id = ?', [id]);
}

// ---- the delivery outbox -------------------------------------------------------------------

/**
 * Leases up to `limit` due deliveries until `leaseUntil` and returns their ids, in one
 * statement and without an explicit transaction: this runs on every wake-up, so it is kept as
 * cheap as a claim can be.
 *
 * PostgreSQL: a MATERIALIZED CTE picks the rows FOR UPDATE SKIP LOCKED, so concurrent workers on
 * other instances never pick the same row nor wait on each other. It must be a CTE: as an
 * `IN (subquery)` the planner may rescan the subquery and, skipping the rows it has just locked,
 * update more than `limit`. FOR UPDATE re-checks the conditions on the row it locks.
 * SQLite: one statement is atomic, and one process works the queue.
 */
export async function claimDueDeliveries(
  db: Knex,
  opts: { dueBefore: number; now: number; leaseUntil: number; limit: number },
): Promise<string[]> {
  const dueSql = `status = 'pending' and next_attempt_at_ms <= ? and (locked_until_ms is null or locked_until_ms < ?)`;
  const order = 'order by next_attempt_at_ms, id limit ?';
  const picked = [opts.dueBefore, opts.now, opts.limit];
  const set = [opts.leaseUntil, opts.now];
  const rows: Array<{ id: string }> = isPostgres(db)
    ? await sqlOf(db).all(
        `with picked as materialized (select id from webhook_deliveries where ${dueSql} ${order} for update skip locked)
         update webhook_deliveries d set locked_until_ms = ?, updated_ms = ? from picked where d.id = picked.id returning d.id`,
        [...picked, ...set],
      )
    : await sqlOf(db).all(
        `update webhook_deliveries set locked_until_ms = ?, updated_ms = ? where id in (select id from webhook_deliveries where ${dueSql} ${order}) returning id`,
        [...set, ...picked],
      );
  return rows.map((r) => r.id);
}

/** Gives back a lease nobody started on (a worker stopping with deliveries handed to it). */
export async function releaseLease(db: Handle, deliveryId: string, leaseUntil: number): Promise<void> {
  await sqlOf(db).run(`update webhook_deliveries set locked_until_ms = null where id = ? and status = 'pending' and locked_until_ms = ?`, [deliveryId, leaseUntil]);
}

/** Everything one attempt needs: the delivery, its stored event and its endpoint. */
export interface DeliveryJob {
  deliveryId: string;
  attemptCount: number;
  leaseUntil: number | null;
  status: string;
  event: { id: string; type: string; created: number; livemode: unknown; data: unknown };
  appId: string;
  endpoint: {
    id: string;
    url: string;
    status: string;
    deleted: boolean;
    secretSealed: string;
    previousSecretSealed: string | null;
    /** unix seconds */
    previousSecretExpiresAt: number | null;
    /** unix seconds, as loaded with the job */
    failingSince: number | null;
  };
}

export async function loadDeliveryJobs(db: Handle, ids: string[]): Promise<DeliveryJob[]> {
  if (ids.length === 0) return [];
  const rows = await sqlOf(db).all(
    `select d.id as delivery_id, d.attempt_count, d.locked_until_ms, d.status as delivery_status,
       e.id as event_id, e.type as event_type, e.created as event_created, e.livemode as event_livemode, e.data as event_data, e.app_id,
       w.id as endpoint_id, w.url, w.status as endpoint_status, w.deleted_at, w.secret_sealed, w.previous_secret_sealed,
       w.previous_secret_expires_at, w.failing_since
     from webhook_deliveries d join events e on e.id = d.event_id join webhook_endpoints w on w.id = d.endpoint_id
     where d.id in (${ids.map(() => '?').join(',')})`,
    ids,
  );
  return rows.map((r: any) => ({
    deliveryId: r.delivery_id,
    attemptCount: Number(r.attempt_count),
    leaseUntil: r.locked_until_ms === null ? null : Number(r.locked_until_ms),
    status: r.delivery_status,
    event: { id: r.event_id, type: r.event_type, created: Number(r.event_created), livemode: r.event_livemode, data: r.event_data },
    appId: r.app_id,
    endpoint: {
      id: r.endpoint_id,
      url: r.url,
      status: r.endpoint_status,
      deleted: r.deleted_at !== null && r.deleted_at !== undefined,
      secretSealed: r.secret_sealed,
      previousSecretSealed: r.previous_secret_sealed ?? null,
      previousSecretExpiresAt: r.previous_secret_expires_at === null || r.previous_secret_expires_at === undefined ? null : Number(r.previous_secret_expires_at),
      failingSince: r.failing_since === null || r.failing_since === undefined ? null : Number(r.failing_since),
    },
  }));
}

export interface AttemptRecord {
  deliveryId: string;
  attemptedAtMs: number;
  statusCode: number | null;
  latencyMs: number;
  responseExcerpt: string | null;
  error: string | null;
}

export async function insertAttempt(trx: Handle, a: AttemptRecord): Promise<void> {
  await sqlOf(trx).insert('webhook_attempts', {
    delivery_id: a.deliveryId,
    attempted_at_ms: a.attemptedAtMs,
    status_code: a.statusCode,
    latency_ms: a.latencyMs,
    response_excerpt: a.responseExcerpt,
    error: a.error,
  });
}

/**
 * Ends a lease with the delivery's new state. Conditional on the lease still being ours and the
 * delivery still pending: if the lease ran out and another worker took it, or the endpoint was
 * deleted or disabled meanwhile, this changes nothing (the attempt is recorded all the same).
 */
export async function completeDelivery(
  trx: Handle,
  job: { deliveryId: string; leaseUntil: number | null },
  next: { status: 'pending' | 'delivered' | 'failed'; attemptCount: number; lastStatusCode: number | null; nextAttemptAtMs?: number; now: number },
): Promise<boolean> {
  const retryAt = next.nextAttemptAtMs !== undefined;
  const lease = job.leaseUntil === null ? 'locked_until_ms is null' : 'locked_until_ms = ?';
  const n = await sqlOf(trx).run(
    `update webhook_deliveries set status = ?, attempt_count = ?, last_status_code = ?, locked_until_ms = null, updated_ms = ?${retryAt ? ', next_attempt_at_ms = ?' : ''}
     where id = ? and status = 'pending' and ${lease}`,
    [next.status, next.attemptCount, next.lastStatusCode, next.now, ...(retryAt ? [next.nextAttemptAtMs] : []), job.deliveryId, ...(job.leaseUntil === null ? [] : [job.leaseUntil])],
  );
  return n === 1;
}

/**
 * failing_since (unix seconds) is when the endpoint last went from accepting to failing; a
 * success clears it. Returns its value after this attempt, which the worker compares with the
 * three-day limit.
 */
export async function markEndpointHealth(trx: Handle, endpointId: string, ok: boolean, nowSec: number): Promise<number | null> {
  const sql = sqlOf(trx);
  if (ok) {
    await sql.run('update webhook_endpoints set failing_since = null where id = ? and failing_since is not null', [endpointId]);
    return null;
  }
  await sql.run('update webhook_endpoints set failing_since = ? where id = ? and failing_since is null', [nowSec, endpointId]);
  const row = await sql.first('select failing_since from webhook_endpoints where id = ?', [endpointId]);
  return row?.failing_since === null || row?.failing_since === undefined ? null : Number(row.failing_since);
}

// ---- deliveries for the API and the console ----------------------------------------------

/** Deliveries of one endpoint or one event; the caller has already checked that it owns them. */
export function deliveriesWhere(db: Knex, by: { endpointId?: string; eventId?: string; status?: string }): Knex.QueryBuilder {
  let q = db('webhook_deliveries');
  if (by.endpointId) q = q.where('endpoint_id', by.endpointId);
  if (by.eventId) q = q.where('event_id', by.eventId);
  if (by.status) q = q.where('status', by.status);
  return q;
}

export async function attemptsOfDeliveries(db: Knex, deliveryIds: string[]): Promise<any[]> {
  if (deliveryIds.length === 0) return [];
  return db('webhook_attempts').whereIn('delivery_id', deliveryIds).orderBy('id');
}

export async function eventTypesOf(db: Knex, eventIds: string[]): Promise<Map<string, string>> {
  if (eventIds.length === 0) return new Map();
  const rows = await db('events').whereIn('id', [...new Set(eventIds)]).select('id', 'type');
  return new Map(rows.map((r: { id: string; type: string }) => [r.id, r.type]));
}
