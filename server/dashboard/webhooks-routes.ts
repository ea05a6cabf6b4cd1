import { Router, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { toApiError } from '../http/errors.ts';
import { createEndpoint, deleteEndpoint, knownEventTypes } from '../webhooks/service.ts';
import { deliveriesOf, endpointsForConsole, findConsoleEndpoint } from './repo.ts';
import { BASE, one, renderPage, scopeOf } from './page.ts';

const idPattern = /^we_[A-Za-z0-9]{1,60}$/;
/** Event types a merchant may subscribe to from the console (test.webhook is the gateway's own). */
const SUBSCRIBABLE = knownEventTypes.filter((t) => t !== 'test.webhook');

/** /console/webhooks: endpoints, create (the secret shown once), delete, deliveries and attempts. */
export function createWebhookPages(deps: Deps): Router {
  const r = Router();

  async function showList(res: Response, extra: Record<string, unknown> = {}, status = 200) {
    renderPage(res, 'webhooks', {
      title: 'Webhooks',
      endpoints: await endpointsForConsole(deps.db, scopeOf(res)),
      eventTypes: SUBSCRIBABLE,
      form: { url: '', events: [] as string[] },
      ...extra,
    }, status);
  }

  r.get('/', (_req, res) => showList(res));

  r.post('/', async (req, res) => {
    const url = (one(req.body?.url) ?? '').trim();
    const raw = req.body?.events;
    const events = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((e): e is string => typeof e === 'string');
    try {
      const { endpoint, secret } = await createEndpoint(deps, scopeOf(res), { url, enabled_events: events.length ? events : ['*'] });
      deps.logger.info('console webhook endpoint created', { endpoint_id: endpoint.id, user: res.locals.session.userId });
      // Rendered from the POST, not redirected to: the secret exists only in this one response.
      await showList(res, { created: { endpoint, secret } }, 201);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) throw err;
      await showList(res, { formError: apiErr.message, form: { url, events } }, 400);
    }
  });

  r.get('/:id', async (req, res) => {
    const endpoint = idPattern.test(req.params.id) ? await findConsoleEndpoint(deps.db, scopeOf(res), req.params.id) : undefined;
    if (!endpoint) throw new ApiError(404, 'invalid_request_error', 'resource_missing', `No such webhook endpoint: '${req.params.id}'`);
    renderPage(res, 'webhook', { title: 'Webhook endpoint', endpoint, deliveries: await deliveriesOf(deps.db, endpoint.id) });
  });

  r.post('/:id/delete', async (req, res) => {
    if (!idPattern.test(req.params.id)) throw new ApiError(404, 'invalid_request_error', 'resource_missing', `No such webhook endpoint: '${req.params.id}'`);
    await deleteEndpoint(deps, scopeOf(res), req.params.id);
    deps.logger.info('console webhook endpoint deleted', { endpoint_id: req.params.id, user: res.locals.session.userId });
    res.redirect(303, `${BASE}/webhooks`);
  });

  return r;
}
