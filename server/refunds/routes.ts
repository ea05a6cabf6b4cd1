import { Router } from 'express';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf } from '../http/body.ts';
import { createRefund, createRefundSchema, retrieveRefund } from './service.ts';

/** POST /v1/payments/:id/refunds (mounted on the payments router) and GET /v1/refunds/:id. */
export function createRefundRoutes(deps: Deps): { onPayments: Router; refunds: Router } {
  const onPayments = Router({ mergeParams: true });
  onPayments.post('/:id/refunds', async (req, res) => {
    const input = paramsOf(createRefundSchema, bodyOf(req));
    res.json(await createRefund(deps, authOf(res), String(req.params.id), input));
  });
  const refunds = Router();
  refunds.get('/:id', async (req, res) => {
    paramsOf(noParams, req.query);
    res.json(await retrieveRefund(deps, authOf(res), String(req.params.id)));
  });
  return { onPayments, refunds };
}
