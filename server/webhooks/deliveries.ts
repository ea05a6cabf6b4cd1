import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { findEventRow, queueDeliveries, subscribedEndpointIds } from '../events/repo.ts';
import { invalid, notFound } from '../errors.ts';
import { listParams, paginate, type ListPage } from '../http/pagination.ts';
import { attemptsOfDeliveries, deliveriesWhere, eventTypesOf, findEndpoint } from './repo.ts';
import { wakeWorkers } from './service.ts';

/** Deliveries and their attempts for the API and the console, and resending an event. No req/res here. */

export interface WebhookAttemptObject {
  /** unix seconds */
  attempted_at: number;
  /** null when no HTTP answer came (refused address, network error, timeout); see `error`. */
  status_code: number | null;
  latency_ms: number;
  /** The first 1 KB of the answer's body. */
  response_excerpt: string | null;
  error: string | null;
}

export interface WebhookDeliveryObject {
  id: string;
  object: 'webhook_delivery';
  event: string;
  event_type: string | null;
  webhook_endpoint: string;
  status: 'pending' | 'delivered' | 'failed';
  attempt_count: number;
  /** unix seconds of the next try while pending, else null */
  next_attempt_at: number | null;
  last_status_code: number | null;
  created: number;
  attempts: WebhookAttemptObject[];
}

/** One try of a delivery, as the API answers it. */
export const webhookAttemptObjectSchema = z
  .object({
    attempted_at: z.number().int(),
    status_code: z.number().int().nullable(),
    latency_ms: z.number(),
    response_excerpt: z.string().nullable(),
    error: z.string().nullable(),
  })
  .strict()
  .meta({ id: 'WebhookAttempt' });

/** The webhook delivery object as the API answers it; a test parses real answers with it. */
export const webhookDeliveryObjectSchema = z
  .object({
    id: z.string().describe('wd_…'),
    object: z.literal('webhook_delivery'),
    event: z.string(),
    event_type: z.string().nullable(),
    webhook_endpoint: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempt_count: z.number().int(),
    next_attempt_at: z.number().int().nullable(),
    last_status_code: z.number().int().nullable(),
    created: z.number().int(),
    attempts: z.array(webhookAttemptObjectSchema),
  })
  .strict()
  .meta({ id: 'WebhookDelivery' });

export const deliveryListQuery = z.object({ ...listParams, status: z.enum(['pending', 'delivered', 'failed']).optional() }).strict();

/** Input of POST /v1/events/:id/resend: one endpoint, or (absent) every endpoint subscribed to the type. */
export const resendSchema = z.object({ webhook_endpoint: z.string().min(1).max(64).optional() }).strict();

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Page rows plus their attempts and event types, in two queries rather than one per row. */
async function toObjects(deps: Deps, rows: any[]): Promise<WebhookDeliveryObject[]> {
  const attempts = await attemptsOfDeliveries(deps.db, rows.map((r) => r.id));
  const types = await eventTypesOf(deps.db, rows.map((r) => r.event_id));
  const byDelivery = new Map<string, WebhookAttemptObject[]>();
  for (const a of attempts) {
    const list = byDelivery.get(a.delivery_id) ?? [];
    list.push({
      attempted_at: Math.floor(Number(a.attempted_at_ms) / 1000),
      status_code: numOrNull(a.status_code),
      latency_ms: Number(a.latency_ms),
      response_excerpt: a.response_excerpt ?? null,
      error: a.error ?? null,
    });
    byDelivery.set(a.delivery_id, list);
  }
  return rows.map((r) => ({
    id: r.id,
    object: 'webhook_delivery',
    event: r.event_id,
    event_type: types.get(r.event_id) ?? null,
    webhook_endpoint: r.endpoint_id,
    status: r.status,
    attempt_count: Number(r.attempt_count),
    next_attempt_at: r.status === 'pending' ? Math.ceil(Number(r.next_attempt_at_ms) / 1000) : null,
    last_status_code: numOrNull(r.last_status_code),
    created: Number(r.created),
    attempts: byDelivery.get(r.id) ?? [],
  }));
}

/** Deliveries of one of the caller's endpoints or events, newest first; 404 for anyone else's. */
export async function listDeliveries(
  deps: Deps,
  auth: AuthContext,
  of: { endpointId: string } | { eventId: string },
  query: z.output<typeof deliveryListQuery>,
): Promise<ListPage<WebhookDeliveryObject>> {
  const { status, ...page } = query;
  let url: string;
  let scope: { endpointId?: string; eventId?: string };
  if ('endpointId' in of) {
    if (!(await findEndpoint(deps.db, auth, of.endpointId))) throw notFound('webhook_endpoint', of.endpointId);
    url = `/v1/webhook_endpoints/${of.endpointId}/deliveries`;
    scope = { endpointId: of.endpointId };
  } else {
    if (!(await findEventRow(deps.db, auth, of.eventId))) throw notFound('event', of.eventId);
    url = `/v1/events/${of.eventId}/deliveries`;
    scope = { eventId: of.eventId };
  }
  const raw = await paginate(() => deliveriesWhere(deps.db, { ...scope, status }), { ...page, url }, (r) => r);
  return { ...raw, data: await toObjects(deps, raw.data) };
}

/**
 * Queues the stored event again: new deliveries of the same event, so the receiver gets the same
 * webhook-id and body (and deduplicates if it had it already). A named endpoint gets it whatever
 * it subscribed to; otherwise every enabled endpoint subscribed to the type does.
 */
export async function resendEvent(deps: Deps, auth: AuthContext, eventId: string, input: z.input<typeof resendSchema>): Promise<ListPage<WebhookDeliveryObject>> {
  const { webhook_endpoint } = resendSchema.parse(input);
  const ids = await deps.db.transaction(async (trx) => {
    const event = await findEventRow(trx, auth, eventId);
    if (!event) throw notFound('event', eventId);
    let targets: string[];
    if (webhook_endpoint) {
      const ep = await findEndpoint(trx, auth, webhook_endpoint);
      if (!ep) throw notFound('webhook_endpoint', webhook_endpoint, 'webhook_endpoint');
      if (ep.status !== 'enabled') throw invalid('endpoint_disabled', 'This endpoint is disabled; enable it before resending to it.', 'webhook_endpoint');
      targets = [ep.id];
    } else {
      targets = await subscribedEndpointIds(trx, auth.appId, auth.livemode, event.type);
      if (targets.length === 0) throw invalid('no_webhook_endpoints', `No enabled webhook endpoint receives ${event.type} events.`, 'webhook_endpoint');
    }
    return queueDeliveries(trx, event.id, targets, Math.floor(Date.now() / 1000));
  });
  wakeWorkers(deps, eventId);
  const rows = await deliveriesWhere(deps.db, { eventId }).whereIn('id', ids).orderBy('id');
  return { object: 'list', url: `/v1/events/${eventId}/deliveries`, data: await toObjects(deps, rows), has_more: false };
}
