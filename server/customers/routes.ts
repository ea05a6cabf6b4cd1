import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf } from '../http/body.ts';
import { listParams } from '../http/pagination.ts';
import {
  adjustBalance, createBalanceTransactionSchema, createCustomer, createCustomerSchema, deleteCustomer, listBalanceTransactions, listCustomers,
  retrieveCustomer, updateCustomer, updateCustomerSchema,
} from './service.ts';

/** Query of GET /v1/customers. */
export const listCustomersQuery = z
  .object({ ...listParams, out_user_id: z.string().max(64).optional(), email: z.string().max(254).optional() })
  .strict();

/** Query of GET /v1/customers/:id/balance_transactions. */
export const listBalanceTransactionsQuery = z.object({ ...listParams }).strict();

export function createCustomerRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    res.json(await createCustomer(deps, authOf(res), paramsOf(createCustomerSchema, bodyOf(req))));
  });
  r.get('/', async (req, res) => {
    res.json(await listCustomers(deps, authOf(res), paramsOf(listCustomersQuery, req.query)));
  });
  r.get('/:id', async (req, res) => {
    paramsOf(noParams, req.query);
    res.json(await retrieveCustomer(deps, authOf(res), req.params.id));
  });
  r.post('/:id', async (req, res) => {
    res.json(await updateCustomer(deps, authOf(res), req.params.id, paramsOf(updateCustomerSchema, bodyOf(req))));
  });
  r.delete('/:id', async (req, res) => {
    paramsOf(noParams, req.query);
    res.json(await deleteCustomer(deps, authOf(res), req.params.id));
  });
  r.post('/:id/balance_transactions', async (req, res) => {
    res.json(await adjustBalance(deps, authOf(res), req.params.id, paramsOf(createBalanceTransactionSchema, bodyOf(req))));
  });
  r.get('/:id/balance_transactions', async (req, res) => {
    res.json(await listBalanceTransactions(deps, authOf(res), req.params.id, paramsOf(listBalanceTransactionsQuery, req.query)));
  });
  return r;
}
