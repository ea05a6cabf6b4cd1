import type { Knex } from 'knex';
import { newId, nowSeconds } from '../crypto.ts';
import { bool, parseJson } from '../db.ts';
import { sqlOf, type Sql } from '../sql.ts';
import { leaseForNewDeliveries } from '../webhooks/handoff.ts';

export type EventType =
  | 'payment.succeeded'
  | 'payment.closed'
  | 'payment.attempt_failed'
  | 'refund.succeeded'
  | 'refund.failed'
  | 'webhook_endpoint.disabled'
  | 'agreement.active'
  | 'agreement.terminated'
  | 'subscription.created'
  | 'subscription.renewed'
  | 'subscription.payment_failed'
  | 'subscription.past_due'
  | 'subscription.canceled'
  | 'transfer.succeeded'
  | 'transfer.failed'
  | 'transfer.canceled'
  | 'transfer.awaiting_recipient'
  | 'red_packet.sent'
  | 'red_packet.received'
  | 'red_packet.refunded'
  | 'red_packet.failed'
  | 'reconciliation.discrepancy'
  | 'test.webhook';

export interface EventObject {
  id: string;
  object: 'event';
  type: EventType;
  created: number;
  livemode: boolean;
  data: { object: Record<string, unknown> };
}

export interface NewEvent {
  appId: string;
  livemode: boolean;
  type: EventType;
  object: Record<string, unknown>;
}

/**
 * Writes an event and its pending deliveries (the outbox) inside the caller's transaction,
 * so the state change and its event commit or vanish together. The deliveries go to the app's
 * enabled endpoints of the same mode that subscribed to the type, or to `onlyEndpointId` alone
 * (a test event for one endpoint).
 */
export async function insertEvent(trx: Knex | Knex.Transaction | Sql, e: NewEvent, opts: { onlyEndpointId?: string } = {}): Promise<EventObject> {
  const event: EventObject = {
    id: newId('evt'),
    object: 'event',
    type: e.type,
    created: nowSeconds(),
    livemode: e.livemode,
    data: { object: e.object },
  };
  await sqlOf(trx).insert('events', {
    id: event.id,
    app_id: e.appId,
    livemode: e.livemode,
    type: e.type,
    data: JSON.stringify(event.data),
    created: event.created,
    // What the event is about, indexed: a payment's page finds its events without reading their JSON.
    object_id: typeof e.object.id === 'string' ? e.object.id : null,
  });
  const endpointIds = opts.onlyEndpointId ? [opts.onlyEndpointId] : await subscribedEndpointIds(trx, e.appId, e.livemode, e.type);
  await queueDeliveries(trx, event.id, endpointIds, event.created);
  return event;
}

/** The app's enabled, not deleted endpoints of this mode that receive `type`. */
export async function subscribedEndpointIds(trx: Knex | Knex.Transaction | Sql, appId: string, livemode: boolean, type: string): Promise<string[]> {
  const endpoints = await sqlOf(trx).all(
    `select id, enabled_events from webhook_endpoints where app_id = ? and livemode = ? and status = 'enabled' and deleted_at is null`,
    [appId, livemode],
  );
  return endpoints
    .filter((ep) => {
      const types = parseJson<string[]>(ep.enabled_events, ['*']);
      return types.includes('*') || types.includes(type);
    })
    .map((ep) => ep.id as string);
}

/**
 * New pending deliveries of a stored event, due now. A resend is such a new delivery of the
 * same event, so the receiver sees the same webhook-id and body and can deduplicate.
 */
export async function queueDeliveries(trx: Knex | Knex.Transaction | Sql, eventId: string, endpointIds: string[], created: number): Promise<string[]> {
  const now = Date.now();
  if (endpointIds.length === 0) return [];
  const lease = leaseForNewDeliveries(trx, () => rows.map((r) => r.id));
  const rows = endpointIds.map((endpointId) => ({
    id: newId('wd'),
    event_id: eventId,
    endpoint_id: endpointId,
    status: 'pending',
    attempt_count: 0,
    next_attempt_at_ms: now,
    locked_until_ms: lease ?? null,
    created,
    updated_ms: now,
  }));
  await sqlOf(trx).insert('webhook_deliveries', rows);
  return rows.map((r) => r.id);
}

/** One event of the caller's app and mode; undefined for anyone else's. */
export function findEventRow(db: Knex | Knex.Transaction, scope: { appId: string; livemode: boolean }, id: string): Promise<any | undefined> {
  return db('events').where({ id, app_id: scope.appId, livemode: scope.livemode }).first();
}

export function eventFromRow(row: any): EventObject {
  return {
    id: row.id,
    object: 'event',
    type: row.type,
    created: Number(row.created),
    livemode: bool(row.livemode),
    data: parseJson(row.data, { object: {} }),
  };
}
