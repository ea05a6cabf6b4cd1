import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf } from '../http/body.ts';
import { listParams } from '../http/pagination.ts';
import { createCoupon, createCouponSchema, listCoupons, retrieveCoupon, updateCoupon, updateCouponSchema } from './service.ts';

/** Query of GET /v1/coupons. */
export const listCouponsQuery = z
  .object({
    ...listParams,
    active: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
    code: z.string().max(64).optional(),
  })
  .strict();

export function createCouponRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    res.json(await createCoupon(deps, authOf(res), paramsOf(createCouponSchema, bodyOf(req))));
  });
  r.get('/', async (req, res) => {
    res.json(await listCoupons(deps, authOf(res), paramsOf(listCouponsQuery, req.query)));
  });
  r.get('/:id', async (req, res) => {
    paramsOf(noParams, req.query);
    res.json(await retrieveCoupon(deps, authOf(res), req.params.id));
  });
  r.post('/:id', async (req, res) => {
    res.json(await updateCoupon(deps, authOf(res), req.params.id, paramsOf(updateCouponSchema, bodyOf(req))));
  });
  return r;
}
