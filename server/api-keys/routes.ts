import express from 'express';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf as parse } from '../http/body.ts';
import { auditApiChange } from '../audit/api.ts';
import { createApiKeySchema, createKey, listKeys, retrieveKey, revokeKey, rollApiKeySchema, rollKey } from './service.ts';

/**
 * /v1/api_keys, mounted after api-key auth, JSON parsing and idempotency: the keys of the calling
 * key's app and mode. A secret appears only in the answers of create and roll.
 */
export function createApiKeyRoutes(deps: Deps): express.Router {
  const router = express.Router();
  router.get('/', async (req, res) => {
    parse(noParams, req.query);
    res.json(await listKeys(deps.db, authOf(res)));
  });
  router.post('/', async (req, res) => {
    parse(createApiKeySchema, bodyOf(req));
    const key = await createKey(deps.db, authOf(res));
    await auditApiChange(deps.db, req, res, { action: 'api_key.create', object: { type: 'api_key', id: key.id } });
    res.json(key);
  });
  router.get('/:id', async (req, res) => {
    parse(noParams, req.query);
    res.json(await retrieveKey(deps.db, authOf(res), req.params.id));
  });
  router.post('/:id/roll', async (req, res) => {
    const input = parse(rollApiKeySchema, bodyOf(req));
    const { key } = await rollKey(deps.db, authOf(res), req.params.id, input);
    await auditApiChange(deps.db, req, res, { action: 'api_key.roll', object: { type: 'api_key', id: req.params.id }, summary: { successor: key.id, expires_in: input.expires_in } });
    res.json(key);
  });
  router.post('/:id/revoke', async (req, res) => {
    parse(noParams, bodyOf(req));
    const key = await revokeKey(deps.db, authOf(res), req.params.id);
    await auditApiChange(deps.db, req, res, { action: 'api_key.revoke', object: { type: 'api_key', id: key.id } });
    res.json(key);
  });
  return router;
}
