import express from 'express';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf as parse } from '../http/body.ts';
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
    res.json(await createKey(deps.db, authOf(res)));
  });
  router.get('/:id', async (req, res) => {
    parse(noParams, req.query);
    res.json(await retrieveKey(deps.db, authOf(res), req.params.id));
  });
  router.post('/:id/roll', async (req, res) => {
    const { key } = await rollKey(deps.db, authOf(res), req.params.id, parse(rollApiKeySchema, bodyOf(req)));
    res.json(key);
  });
  router.post('/:id/revoke', async (req, res) => {
    parse(noParams, bodyOf(req));
    res.json(await revokeKey(deps.db, authOf(res), req.params.id));
  });
  return router;
}
