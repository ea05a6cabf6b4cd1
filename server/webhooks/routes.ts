import express from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf as parse } from '../http/body.ts';
import { listParams } from '../http/pagination.ts';
import {
  createEndpoint,
  createEndpointSchema,
  deleteEndpoint,
  getEndpoint,
  listEndpoints,
  rotateEndpointSecret,
  rotateSecretSchema,
  sendTestEvent,
  updateEndpoint,
  updateEndpointSchema,
} from './service.ts';
import { deliveryListQuery, listDeliveries } from './deliveries.ts';
import { auditApiChange } from '../audit/api.ts';

/** Query of GET /v1/webhook_endpoints. */
export const listEndpointsQuery = z.object(listParams).strict();

/**
 * /v1/webhook_endpoints, mounted by the core after api-key auth, JSON parsing and idempotency.
 * A secret appears only in the answers of create and rotate_secret.
 */
export function createWebhookEndpointRoutes(deps: Deps): express.Router {
  const router = express.Router();

  router.post('/', async (req, res) => {
    const input = parse(createEndpointSchema, bodyOf(req));
    const { endpoint, secret } = await createEndpoint(deps, authOf(res), input);
    await auditApiChange(deps.db, req, res, { action: 'webhook_endpoint.create', object: { type: 'webhook_endpoint', id: endpoint.id }, summary: { url: endpoint.url, enabled_events: endpoint.enabled_events } });
    res.json({ ...endpoint, secret });
  });

  router.get('/', async (req, res) => {
    res.json(await listEndpoints(deps, authOf(res), parse(listEndpointsQuery, req.query)));
  });

  router.get('/:id', async (req, res) => {
    parse(noParams, req.query);
    res.json(await getEndpoint(deps, authOf(res), req.params.id));
  });

  router.post('/:id', async (req, res) => {
    const input = parse(updateEndpointSchema, bodyOf(req));
    const endpoint = await updateEndpoint(deps, authOf(res), req.params.id, input);
    await auditApiChange(deps.db, req, res, { action: 'webhook_endpoint.update', object: { type: 'webhook_endpoint', id: endpoint.id }, summary: { changed: Object.keys(input), url: endpoint.url, enabled_events: endpoint.enabled_events, status: endpoint.status } });
    res.json(endpoint);
  });

  router.post('/:id/rotate_secret', async (req, res) => {
    const input = parse(rotateSecretSchema, bodyOf(req));
    const { endpoint, secret } = await rotateEndpointSecret(deps, authOf(res), req.params.id, input);
    await auditApiChange(deps.db, req, res, { action: 'webhook_endpoint.rotate_secret', object: { type: 'webhook_endpoint', id: endpoint.id }, summary: { ...input } });
    res.json({ ...endpoint, secret });
  });

  router.post('/:id/test', async (req, res) => {
    parse(noParams, bodyOf(req));
    res.json(await sendTestEvent(deps, authOf(res), req.params.id));
  });

  router.get('/:id/deliveries', async (req, res) => {
    res.json(await listDeliveries(deps, authOf(res), { endpointId: req.params.id }, parse(deliveryListQuery, req.query)));
  });

  router.delete('/:id', async (req, res) => {
    parse(noParams, bodyOf(req));
    const deleted = await deleteEndpoint(deps, authOf(res), req.params.id);
    await auditApiChange(deps.db, req, res, { action: 'webhook_endpoint.delete', object: { type: 'webhook_endpoint', id: req.params.id } });
    res.json(deleted);
  });

  return router;
}
