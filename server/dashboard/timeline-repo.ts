import type { Knex } from 'knex';

/** The SQL behind a payment's timeline that the other console repos do not have: its events' webhook deliveries. */

export interface TimelineDelivery {
  id: string;
  event_id: string;
  endpoint_id: string;
  endpoint_url: string;
  status: string;
  attempts: Array<{ attempted_at_ms: number; status_code: number | null; latency_ms: number; error: string | null }>;
}

/** Deliveries of these events with their endpoint's URL and their attempts: two index lookups (deliveries by event_id, attempts by delivery_id). */
export async function deliveriesOfEvents(db: Knex, eventIds: string[], limit = 200): Promise<TimelineDelivery[]> {
  if (eventIds.length === 0) return [];
  const rows = await db('webhook_deliveries as d')
    .join('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
    .whereIn('d.event_id', eventIds)
    .orderBy('d.id')
    .limit(limit)
    .select('d.id', 'd.event_id', 'd.endpoint_id', 'd.status', 'e.url as endpoint_url');
  if (rows.length === 0) return [];
  const attempts = await db('webhook_attempts')
    .whereIn('delivery_id', rows.map((r: any) => r.id))
    .orderBy('id')
    .select('delivery_id', 'attempted_at_ms', 'status_code', 'latency_ms', 'error');
  const byDelivery = new Map<string, TimelineDelivery['attempts']>();
  for (const a of attempts) {
    const list = byDelivery.get(a.delivery_id) ?? [];
    list.push({ attempted_at_ms: Number(a.attempted_at_ms), status_code: a.status_code === null ? null : Number(a.status_code), latency_ms: Number(a.latency_ms), error: a.error ?? null });
    byDelivery.set(a.delivery_id, list);
  }
  return rows.map((r: any) => ({ ...r, attempts: byDelivery.get(r.id) ?? [] }));
}

/** The event one of the app's deliveries carries, with its endpoint: for the delivery's own page. */
export async function findAppDelivery(db: Knex, scope: { appId: string; livemode: boolean }, endpointId: string, deliveryId: string): Promise<{ id: string; event_id: string } | undefined> {
  const row = await db('webhook_deliveries as d')
    .join('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
    .where({ 'd.id': deliveryId, 'd.endpoint_id': endpointId, 'e.app_id': scope.appId, 'e.livemode': scope.livemode })
    .first('d.id', 'd.event_id');
  return row ?? undefined;
}
