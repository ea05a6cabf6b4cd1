import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { listParams } from '../http/pagination.ts';
import { CHANNEL_CODES } from '../channels/types.ts';
import { createPaymentSchema } from './validation.ts';
import { createPayment, listPayments, retrievePayment } from './service.ts';
import { simulatePayment, simulateSchema } from './simulate.ts';
import { bodyOf } from '../http/body.ts';

const listSchema = z
  .object({
    ...listParams,
    status: z.enum(['pending', 'succeeded', 'closed']).optional(),
    channel: z.enum(CHANNEL_CODES).optional(),
    out_trade_no: z.string().max(64).optional(),
    'created[gte]': z.coerce.number().int().optional(),
    'created[lte]': z.coerce.number().int().optional(),
  })
  .strict();

export function createPaymentRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    const input = createPaymentSchema.parse(bodyOf(req));
    res.status(200).json(await createPayment(deps, authOf(res), input));
  });
  r.get('/', async (req, res) => {
    const q = listSchema.parse(req.query);
    res.json(await listPayments(deps, authOf(res), { ...q, created_gte: q['created[gte]'], created_lte: q['created[lte]'] }));
  });
  r.get('/:id', async (req, res) => {
    res.json(await retrievePayment(deps, authOf(res), req.params.id));
  });
  return r;
}

/** Test helpers exist only for test keys; a live key gets the same 404 as an unknown URL. */
export function createTestHelperRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/payments/:id/simulate', async (req, res, next) => {
    if (authOf(res).livemode) return next();
    const input = simulateSchema.parse(bodyOf(req));
    res.json(await simulatePayment(deps, authOf(res), req.params.id, input));
  });
  return r;
}
