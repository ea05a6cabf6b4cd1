import type { Knex } from 'knex';
import { newId, nowSeconds } from '../crypto.ts';
import { bool, parseJson } from '../db.ts';

export type EventType =
  | 'payment.succeeded'
  | 'payment.closed'
  | 'payment.attempt_failed'
  | 'refund.succeeded'
  | 'refund.failed'
  | 'webhook_endpoint.disabled'
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
 * so the state change and its event commit or vanish together.
 */
export async function insertEvent(trx: Knex | Knex.Transaction, e: NewEvent): Promise<EventObject> {
  const event: EventObject = {
    id: newId('evt'),
    object: 'event',
    type: e.type,
    created: nowSeconds(),
    livemode: e.livemode,
    data: { object: e.object },
  };
  await trx('events').insert({
    id: event.id,
    app_id: e.appId,
    livemode: e.livemode,
    type: e.type,
    data: JSON.stringify(event.data),
    created: event.created,
  });
  const endpoints = await trx('webhook_endpoints')
    .where({ app_id: e.appId, livemode: e.livemode, status: 'enabled' })
    .whereNull('deleted_at')
    .select('id', 'enabled_events');
  const now = Date.now();
  const rows = endpoints
    .filter((ep) => {
      const types = parseJson<string[]>(ep.enabled_events, ['*']);
      return types.includes('*') || types.includes(e.type);
    })
    .map((ep) => ({
      id: newId('wd'),
      event_id: event.id,
      endpoint_id: ep.id,
      status: 'pending',
      attempt_count: 0,
      next_attempt_at_ms: now,
      created: event.created,
      updated_ms: now,
    }));
  if (rows.length) await trx('webhook_deliveries').insert(rows);
  return event;
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
