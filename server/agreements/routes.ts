import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf } from '../http/body.ts';
import { listParams } from '../http/pagination.ts';
import { customerIdSchema } from '../payments/validation.ts';
import { AGREEMENT_STATUSES } from './repo.ts';
import { createAgreement, createAgreementSchema, listAgreements, retrieveAgreement, terminateAgreement } from './service.ts';

/** Query of GET /v1/agreements. */
export const listAgreementsQuery = z
  .object({ ...listParams, customer: customerIdSchema.optional(), status: z.enum(AGREEMENT_STATUSES).optional() })
  .strict();

export function createAgreementRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    res.json(await createAgreement(deps, authOf(res), paramsOf(createAgreementSchema, bodyOf(req))));
  });
  r.get('/', async (req, res) => {
    res.json(await listAgreements(deps, authOf(res), paramsOf(listAgreementsQuery, req.query)));
  });
  r.get('/:id', async (req, res) => {
    paramsOf(noParams, req.query);
    res.json(await retrieveAgreement(deps, authOf(res), req.params.id));
  });
  r.post('/:id/terminate', async (req, res) => {
    paramsOf(noParams, bodyOf(req));
    res.json(await terminateAgreement(deps, authOf(res), req.params.id));
  });
  return r;
}
