import express from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf as parse } from '../http/body.ts';
import { listParams, paginate, timestampParam } from '../http/pagination.ts';
import { eventFromRow } from './repo.ts';
import { deliveryListQuery, listDeliveries, resendEvent, resendSchema } from '../webhooks/deliveries.ts';

// `payment.succeeded`, or a whole family with a trailing wildcard: `payment.*` (as Stripe allows).
const typeFilter = z.string().max(64).regex(/^[a-z_]+(\.[a-z_]+)*(\.\*)?$/, 'must be an event type such as payment.succeeded or payment.*');

/** Query of GET /v1/events. */
export const listEventsQuery = z
  .object({
    ...listParams,
    type: typeFilter.optional(),
    created: timestampParam.optional(),
    'created[gt]': timestampParam.optional(),
    'created[gte]': timestampParam.optional(),
    'created[lt]': timestampParam.optional(),
    'created[lte]': timestampParam.optional(),
  })
  .strict();

type ListQuery = z.output<typeof listEventsQuery>;

/**
 * Express 5 parses queries with the 'simple' parser, so `created[gte]=1` arrives as the key
 * 'created[gte]'. Should the app switch to the 'extended' parser, it arrives as
 * {created: {gte: '1'}}; both shapes end up as the flat keys.
 */
function flattenQuery(query: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(query as Record<string, unknown>) };
  const created = out.created;
  if (created && typeof created === 'object' && !Array.isArray(created)) {
    delete out.created;
    for (const [op, v] of Object.entries(created)) out[`created[${op}]`] = v;
  }
  return out;
}

// The caller's events: app AND mode, so a test key never sees live events and vice versa.
// (Query building sits here because events/repo.ts is shared; it could move there.)
function eventsOf(db: Knex, auth: AuthContext, q: Partial<ListQuery> = {}): Knex.QueryBuilder {
  let query = db('events').where({ app_id: auth.appId, livemode: auth.livemode });
  if (q.type?.endsWith('.*')) query = query.whereRaw("type like ? escape '\\'", [q.type.slice(0, -1).replace(/[\\%_]/g, '\\$&') + '%']);
  else if (q.type) query = query.where('type', q.type);
  if (q.created !== undefined) query = query.where('created', q.created);
  if (q['created[gt]'] !== undefined) query = query.where('created', '>', q['created[gt]']);
  if (q['created[gte]'] !== undefined) query = query.where('created', '>=', q['created[gte]']);
  if (q['created[lt]'] !== undefined) query = query.where('created', '<', q['created[lt]']);
  if (q['created[lte]'] !== undefined) query = query.where('created', '<=', q['created[lte]']);
  return query;
}

/** /v1/events: the event log (kept, never pruned), its deliveries and resending; mounted by the core after api-key auth. */
export function createEventRoutes(deps: Deps): express.Router {
  const router = express.Router();

  router.get('/', async (req, res) => {
    const { limit, starting_after, ending_before, ...filters } = parse(listEventsQuery, flattenQuery(req.query));
    const auth = authOf(res);
    res.json(await paginate(() => eventsOf(deps.db, auth, filters), { limit, starting_after, ending_before, url: '/v1/events' }, eventFromRow));
  });

  router.get('/:id', async (req, res) => {
    parse(noParams, req.query);
    const row = await eventsOf(deps.db, authOf(res)).where({ id: req.params.id }).first();
    if (!row) throw notFound('event', req.params.id);
    res.json(eventFromRow(row));
  });

  router.get('/:id/deliveries', async (req, res) => {
    res.json(await listDeliveries(deps, authOf(res), { eventId: req.params.id }, parse(deliveryListQuery, req.query)));
  });

  router.post('/:id/resend', async (req, res) => {
    res.json(await resendEvent(deps, authOf(res), req.params.id, parse(resendSchema, bodyOf(req))));
  });

  return router;
}
