import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { listParams, timestampParam } from '../http/pagination.ts';
import { CHANNEL_CODES } from '../channels/types.ts';
import { confirmPaymentSchema, createPaymentSchema } from './validation.ts';
import { confirmPayment, createPayment, listPayments, retrievePayment, toPaymentObject } from './service.ts';
import { closePayment } from './close.ts';
import { findPayment } from './repo.ts';
import { invalid, notFound } from '../errors.ts';
import { createRefundRoutes } from '../refunds/routes.ts';
import { simulatePayment, simulateSchema } from './simulate.ts';
import { bodyOf, noParams, paramsOf } from '../http/body.ts';

/** Query of GET /v1/payments. */
export const listPaymentsQuery = z
  .object({
    ...listParams,
    status: z.enum(['pending', 'succeeded', 'closed']).optional(),
    channel: z.enum(CHANNEL_CODES).optional(),
    out_trade_no: z.string().max(64).optional(),
    subscription: z.string().regex(/^sub_[A-Za-z0-9]{1,60}$/, 'must be a subscription id (sub_…)').optional(),
    'created[gte]': timestampParam.optional(),
    'created[lte]': timestampParam.optional(),
  })
  .strict();

export function createPaymentRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    const input = paramsOf(createPaymentSchema, bodyOf(req));
    res.status(200).json(await createPayment(deps, authOf(res), input));
  });
  r.get('/', async (req, res) => {
    const q = paramsOf(listPaymentsQuery, req.query);
    res.json(await listPayments(deps, authOf(res), { ...q, created_gte: q['created[gte]'], created_lte: q['created[lte]'] }));
  });
  r.get('/:id', async (req, res) => {
    paramsOf(noParams, req.query);
    res.json(await retrievePayment(deps, authOf(res), req.params.id));
  });
  r.post('/:id/confirm', async (req, res) => {
    const input = paramsOf(confirmPaymentSchema, bodyOf(req));
    res.json(await confirmPayment(deps, authOf(res), req.params.id, input));
  });
  r.post('/:id/close', async (req, res) => {
    paramsOf(noParams, bodyOf(req));
    const auth = authOf(res);
    const payment = await findPayment(deps.db, auth, req.params.id);
    if (!payment) throw notFound('payment', req.params.id);
    if (payment.status !== 'pending') throw invalid('payment_unexpected_state', `This payment is ${payment.status} and cannot be closed.`, 'id');
    const after = await closePayment(deps, payment);
    if (after.status === 'succeeded') throw invalid('payment_unexpected_state', 'The customer paid before the payment could be closed; it has succeeded.', 'id');
    res.json(toPaymentObject(after, deps.config.publicUrl));
  });
  const refundRoutes = createRefundRoutes(deps);
  r.use(refundRoutes.onPayments);
  return r;
}

/** Test helpers exist only for test keys; a live key gets the same 404 as an unknown URL. */
export function createTestHelperRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/payments/:id/simulate', async (req, res, next) => {
    if (authOf(res).livemode) return next();
    const input = paramsOf(simulateSchema, bodyOf(req));
    res.json(await simulatePayment(deps, authOf(res), req.params.id, input, { ip: req.ip }));
  });
  return r;
}
