import { Router, type Request, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { toApiError } from '../http/errors.ts';
import { createEndpoint, deleteEndpoint, knownEventTypes, MAX_ROTATION_OVERLAP_S, rotateEndpointSecret, sendTestEvent, updateEndpoint } from '../webhooks/service.ts';
import { listDeliveries, resendEvent } from '../webhooks/deliveries.ts';
import { endpointsForConsole, findConsoleEndpoint } from './repo.ts';
import { findAppDelivery } from './timeline-repo.ts';
import { cursorOf, pager } from './payments-routes.ts';
import { BASE, one, renderPage, scopeOf, sessionOf } from './page.ts';

const idPattern = /^we_[A-Za-z0-9]{1,60}$/;
const eventIdPattern = /^evt_[A-Za-z0-9]{1,60}$/;
const deliveryPattern = /^wd_[A-Za-z0-9]{1,60}$/;
const DELIVERIES_PER_PAGE = 20;
/** How long the old secret keeps signing beside the new one, as the console offers it. */
const ROTATION_OVERLAPS = [
  { seconds: 0, label: 'stop it now' }, { seconds: 3600, label: '1 hour' }, { seconds: MAX_ROTATION_OVERLAP_S, label: '24 hours' },
];
const noEndpoint = (id: string) => new ApiError(404, 'invalid_request_error', 'resource_missing', `No such webhook endpoint: '${id}'`);
/** Event types a merchant may subscribe to from the console (test.webhook is the gateway's own). */
const SUBSCRIBABLE = knownEventTypes.filter((t) => t !== 'test.webhook');

/**
 * /console/webhooks: endpoints, create (the secret shown once), delete; an endpoint's page with its
 * deliveries and attempts (paginated), a test event, resend, enable/disable and secret rotation.
 */
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

  /**
   * The endpoint's page: its facts, its actions (test event, re-enable or disable, rotate the
   * secret, resend a delivery's event) and its deliveries, newest first, a page at a time.
   */
  async function showEndpoint(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const id = req.params.id as string;
    const endpoint = idPattern.test(id) ? await findConsoleEndpoint(deps.db, scopeOf(res), id) : undefined;
    if (!endpoint) throw noEndpoint(id);
    const cursor = cursorOf(req);
    const page = await listDeliveries(deps, scopeOf(res), { endpointId: endpoint.id }, { limit: DELIVERIES_PER_PAGE, ...cursor });
    renderPage(res, 'webhook', {
      title: 'Webhook endpoint', endpoint, deliveries: page.data, pager: pager(page.data, page.has_more, cursor), overlaps: ROTATION_OVERLAPS, ...extra,
    }, status);
  }

  r.get('/:id', (req, res) => showEndpoint(req, res));

  /** One delivery and its attempts, on its endpoint's page: where a payment's timeline links each webhook attempt. */
  r.get('/:id/deliveries/:delivery', async (req, res) => {
    const id = req.params.id as string;
    const deliveryId = String(req.params.delivery);
    const endpoint = idPattern.test(id) ? await findConsoleEndpoint(deps.db, scopeOf(res), id) : undefined;
    const found = endpoint && deliveryPattern.test(deliveryId) ? await findAppDelivery(deps.db, scopeOf(res), endpoint.id, deliveryId) : undefined;
    if (!endpoint || !found) throw new ApiError(404, 'invalid_request_error', 'resource_missing', `No such webhook delivery: '${deliveryId}'`);
    const page = await listDeliveries(deps, scopeOf(res), { eventId: found.event_id }, { limit: 100 });
    renderPage(res, 'webhook', {
      title: 'Webhook delivery', endpoint, deliveries: page.data.filter((d) => d.id === found.id), pager: {}, overlaps: ROTATION_OVERLAPS, onlyDelivery: found.id,
    });
  });

  /** An action's answer: the endpoint's page with what happened, or with the refusal beside the actions. */
  async function endpointAction(req: Request, res: Response, act: (id: string) => Promise<Record<string, unknown>>) {
    const id = req.params.id as string;
    if (!idPattern.test(id)) throw noEndpoint(id);
    let shown: Record<string, unknown>;
    try {
      shown = await act(id);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) throw err;
      // Another app's endpoint (or none) is a 404 page from showEndpoint itself.
      return showEndpoint(req, res, { actionError: apiErr.message }, apiErr.status);
    }
    // Rendered from the POST: a rotated secret exists only in this one response.
    res.set('Cache-Control', 'no-store');
    return showEndpoint(req, res, shown);
  }
  const who = (res: Response) => ({ app_id: sessionOf(res).appId, user: sessionOf(res).userId });

  r.post('/:id/test', (req, res) => endpointAction(req, res, async (id) => {
    const event = await sendTestEvent(deps, scopeOf(res), id);
    deps.logger.info('console webhook test sent', { ...who(res), endpoint_id: id, event_id: event.id });
    return { notice: `A test.webhook event (${event.id}) is on its way to this endpoint.` };
  }));

  r.post('/:id/status', (req, res) => endpointAction(req, res, async (id) => {
    const status = one(req.body?.status);
    if (status !== 'enabled' && status !== 'disabled') throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Choose enabled or disabled.', 'status');
    await updateEndpoint(deps, scopeOf(res), id, { status });
    deps.logger.info(`console webhook endpoint ${status}`, { ...who(res), endpoint_id: id });
    return { notice: status === 'enabled' ? 'Endpoint enabled: new events are delivered to it again.' : 'Endpoint disabled: nothing is sent to it until you enable it.' };
  }));

  r.post('/:id/rotate', (req, res) => endpointAction(req, res, async (id) => {
    const expiresIn = Number(one(req.body?.expires_in));
    if (!ROTATION_OVERLAPS.some((o) => o.seconds === expiresIn)) {
      throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Choose how long the old secret keeps signing.', 'expires_in');
    }
    const { secret } = await rotateEndpointSecret(deps, scopeOf(res), id, { expires_in: expiresIn });
    deps.logger.info('console webhook secret rotated', { ...who(res), endpoint_id: id });
    return { rotated: { secret, overlap: ROTATION_OVERLAPS.find((o) => o.seconds === expiresIn)!.label } };
  }));

  r.post('/:id/resend', (req, res) => endpointAction(req, res, async (id) => {
    const eventId = one(req.body?.event) ?? '';
    if (!eventIdPattern.test(eventId)) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Choose the event to send again.', 'event');
    await resendEvent(deps, scopeOf(res), eventId, { webhook_endpoint: id });
    deps.logger.info('console webhook event resent', { ...who(res), endpoint_id: id, event_id: eventId });
    return { notice: `Event ${eventId} is queued again for this endpoint (same webhook-id: a receiver that had it already can tell).` };
  }));

  r.post('/:id/delete', async (req, res) => {
    if (!idPattern.test(req.params.id)) throw new ApiError(404, 'invalid_request_error', 'resource_missing', `No such webhook endpoint: '${req.params.id}'`);
    await deleteEndpoint(deps, scopeOf(res), req.params.id);
    deps.logger.info('console webhook endpoint deleted', { endpoint_id: req.params.id, user: res.locals.session.userId });
    res.redirect(303, `${BASE}/webhooks`);
  });

  return r;
}
