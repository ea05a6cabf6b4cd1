import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf } from '../http/body.ts';
import { listParams } from '../http/pagination.ts';
import { customerIdSchema } from '../payments/validation.ts';
import { TRANSFER_CHANNELS, TRANSFER_STATUSES } from './repo.ts';
import { cancelTransfer, createTransfer, createTransferSchema, listTransfers, retrieveTransfer } from './service.ts';
import { simulateTransferRecipient } from './simulate.ts';

/** Query of GET /v1/transfers. */
export const listTransfersQuery = z
  .object({
    ...listParams,
    status: z.enum(TRANSFER_STATUSES).optional(),
    channel: z.enum(TRANSFER_CHANNELS).optional(),
    out_transfer_no: z.string().max(64).optional(),
    customer: customerIdSchema.optional(),
  })
  .strict();

export const simulateTransferSchema = z
  .object({ outcome: z.enum(['confirm', 'decline', 'expire'], { error: 'must be confirm, decline or expire' }) })
  .strict();

export function createTransferRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    res.json(await createTransfer(deps, authOf(res), paramsOf(createTransferSchema, bodyOf(req))));
  });
  r.get('/', async (req, res) => {
    res.json(await listTransfers(deps, authOf(res), paramsOf(listTransfersQuery, req.query)));
  });
  r.get('/:id', async (req, res) => {
    paramsOf(noParams, req.query);
    res.json(await retrieveTransfer(deps, authOf(res), req.params.id));
  });
  r.post('/:id/cancel', async (req, res) => {
    paramsOf(noParams, bodyOf(req));
    res.json(await cancelTransfer(deps, authOf(res), req.params.id));
  });
  return r;
}

/** POST /v1/test_helpers/transfers/:id/simulate: the recipient confirms, declines, or lets the confirmation lapse. */
export function createTransferTestHelperRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/transfers/:id/simulate', async (req, res, next) => {
    if (authOf(res).livemode) return next();
    res.json(await simulateTransferRecipient(deps, authOf(res), req.params.id, paramsOf(simulateTransferSchema, bodyOf(req))));
  });
  return r;
}
