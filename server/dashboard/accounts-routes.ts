import { tOf } from './i18n.ts';
import { Router } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { paginate } from '../http/pagination.ts';
import { balanceTransactionFromRow, customerFromRow } from '../customers/repo.ts';
import { couponFromRow } from '../coupons/repo.ts';
import { paymentFromRow } from '../payments/repo.ts';
import { one, renderPage, scopeOf } from './page.ts';
import { cursorOf, pager } from './payments-routes.ts';

const PAGE_SIZE = 25;
const customerIdPattern = /^cus_[A-Za-z0-9]{1,60}$/;

/** /console/customers: the app's customers with their balances, and each one's ledger (read-only). */
export function createCustomerPages(deps: Deps): Router {
  const r = Router();
  r.get('/', async (req, res) => {
    const scope = scopeOf(res);
    const q = one(req.query.q)?.trim().slice(0, 64) || undefined;
    const cursor = cursorOf(req);
    const page = await paginate(() => {
      const b = deps.db('customers').where({ app_id: scope.appId, livemode: scope.livemode }).whereNull('deleted_at');
      if (q) b.where((w) => w.where('out_user_id', q).orWhere('id', q).orWhere('email', q));
      return b;
    }, { limit: PAGE_SIZE, ...cursor, url: '' }, customerFromRow);
    renderPage(res, 'customers', { title: 'Customers', customers: page.data, q, pager: pager(page.data, page.has_more, cursor) });
  });
  r.get('/:id', async (req, res) => {
    const id = String(req.params.id);
    const scope = scopeOf(res);
    const row = customerIdPattern.test(id) ? await deps.db('customers').where({ id, app_id: scope.appId, livemode: scope.livemode }).first() : undefined;
    if (!row) throw new ApiError(404, 'invalid_request_error', 'resource_missing', `No such customer: '${id}'`);
    const customer = customerFromRow(row);
    const cursor = cursorOf(req);
    const ledger = await paginate(() => deps.db('balance_transactions').where({ customer_id: id }), { limit: PAGE_SIZE, ...cursor, url: '' }, balanceTransactionFromRow);
    const payments = (await deps.db('payments').where({ customer_id: id }).orderBy([{ column: 'created', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(10)).map(paymentFromRow);
    renderPage(res, 'customer', { title: tOf(res)('Customer {id}', { id: customer.out_user_id ?? customer.id }), customer, ledger: ledger.data, payments, pager: pager(ledger.data, ledger.has_more, cursor) });
  });
  return r;
}

/** /console/coupons: the app's coupons and how often each has been used (read-only). */
export function createCouponPages(deps: Deps): Router {
  const r = Router();
  r.get('/', async (req, res) => {
    const scope = scopeOf(res);
    const cursor = cursorOf(req);
    const page = await paginate(() => deps.db('coupons').where({ app_id: scope.appId, livemode: scope.livemode }), { limit: PAGE_SIZE, ...cursor, url: '' }, couponFromRow);
    renderPage(res, 'coupons', { title: 'Coupons', coupons: page.data, pager: pager(page.data, page.has_more, cursor) });
  });
  return r;
}
