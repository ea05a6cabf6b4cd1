import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf } from '../http/body.ts';
import { listParams } from '../http/pagination.ts';
import { customerIdSchema } from '../payments/validation.ts';
import { SUBSCRIPTION_STATUSES } from './repo.ts';
import { cancelSubscription, cancelSubscriptionSchema, createSubscription, createSubscriptionSchema, listSubscriptions, retrieveSubscription } from './service.ts';
import { advanceSubscription } from './test-clock.ts';

/** Query of GET /v1/subscriptions. */
export const listSubscriptionsQuery = z
  .object({
    ...listParams,
    customer: customerIdSchema.optional(),
    agreement: z.string().regex(/^agr_[A-Za-z0-9]{1,60}$/, 'must be an agreement id (agr_…)').optional(),
    status: z.enum(SUBSCRIPTION_STATUSES).optional(),
  })
  .strict();

export const advanceSubscriptionSchema = z
  .object({ to: z.number({ error: 'must be a time in unix seconds' }).int('must be a time in unix seconds').min(0, 'must be a time in unix seconds').describe('the new time of the subscription\'s test clock, unix seconds') })
  .strict();

export function createSubscriptionRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    res.json(await createSubscription(deps, authOf(res), paramsOf(createSubscriptionSchema, bodyOf(req))));
  });
  r.get('/', async (req, res) => {
    res.json(await listSubscriptions(deps, authOf(res), paramsOf(listSubscriptionsQuery, req.query)));
  });
  r.get('/:id', async (req, res) => {
    paramsOf(noParams, req.query);
    res.json(await retrieveSubscription(deps, authOf(res), req.params.id));
  });
  r.post('/:id/cancel', async (req, res) => {
    res.json(await cancelSubscription(deps, authOf(res), req.params.id, paramsOf(cancelSubscriptionSchema, bodyOf(req))));
  });
  return r;
}

/** POST /v1/test_helpers/subscriptions/:id/advance: the subscription's test clock (test mode only). */
export function createSubscriptionTestHelperRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/subscriptions/:id/advance', async (req, res, next) => {
    if (authOf(res).livemode) return next();
    res.json(await advanceSubscription(deps, authOf(res), req.params.id, paramsOf(advanceSubscriptionSchema, bodyOf(req))));
  });
  return r;
}
