import type { Knex } from 'knex';
import { agreementFromRow, type AgreementRow } from '../agreements/repo.ts';
import { periodFromRow, subscriptionFromRow, type PeriodRow, type SubscriptionRow } from '../subscriptions/repo.ts';
import type { Scope } from './repo.ts';

/** The console's SQL for agreements and subscriptions, scoped like repo.ts: app and mode. */

export function agreementsQuery(db: Knex, scope: Scope, f: { status?: string; channel?: string }): Knex.QueryBuilder {
  const q = db('agreements').where({ app_id: scope.appId, livemode: scope.livemode });
  if (f.status) q.where('status', f.status);
  if (f.channel) q.where('channel', f.channel);
  return q;
}

export function subscriptionsQuery(db: Knex, scope: Scope, f: { status?: string }): Knex.QueryBuilder {
  const q = db('subscriptions').where({ app_id: scope.appId, livemode: scope.livemode });
  if (f.status) q.where('status', f.status);
  return q;
}

/** A subscription's charges: the payments of its periods (every try is one), for paginate(). */
export function chargesQuery(db: Knex, s: Pick<SubscriptionRow, 'id' | 'app_id'>): Knex.QueryBuilder {
  return db('payments').where({ subscription_id: s.id, app_id: s.app_id });
}

/** The subscriptions charged through an agreement, newest first (one live at a time, so few). */
export async function subscriptionsOfAgreement(db: Knex, a: Pick<AgreementRow, 'id' | 'app_id'>, limit = 50): Promise<SubscriptionRow[]> {
  const rows = await db('subscriptions').where({ agreement_id: a.id, app_id: a.app_id }).orderBy([{ column: 'created', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
  return rows.map(subscriptionFromRow);
}

/** The agreements of these ids in the app, for the subscription list's links. */
export async function agreementsByIds(db: Knex, appId: string, ids: string[]): Promise<Map<string, AgreementRow>> {
  if (ids.length === 0) return new Map();
  const rows = await db('agreements').where('app_id', appId).whereIn('id', [...new Set(ids)]);
  return new Map(rows.map((r: any) => [r.id, agreementFromRow(r)]));
}

/** The period still to be charged (at most one is pending at a time), if any. */
export async function pendingPeriod(db: Knex, subscriptionId: string): Promise<PeriodRow | undefined> {
  const r = await db('subscription_periods').where({ subscription_id: subscriptionId, status: 'pending' }).orderBy('period_index').first();
  return r ? periodFromRow(r) : undefined;
}

/** The events an object carried (object_id), oldest first: when an agreement was signed and ended. */
export async function objectEvents(db: Knex, appId: string, objectId: string, limit = 50): Promise<Array<{ id: string; type: string; created: number }>> {
  const rows = await db('events').where({ object_id: objectId }).orderBy([{ column: 'created', order: 'asc' }, { column: 'id', order: 'asc' }]).limit(limit).select('id', 'type', 'created', 'app_id');
  // Ids are unique across apps, so this only guards (as repo.ts eventsOf).
  return rows.filter((r: any) => r.app_id === appId).map((r: any) => ({ id: r.id, type: r.type, created: Number(r.created) }));
}
