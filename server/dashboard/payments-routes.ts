import { Router, type Request, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { toApiError } from '../http/errors.ts';
import { paginate } from '../http/pagination.ts';
import { CHANNEL_CODES } from '../channels/types.ts';
import { paymentFromRow, type PaymentRow } from '../payments/repo.ts';
import { findRefundByOutRefundNo, refundFromRow } from '../refunds/repo.ts';
import { randomId } from '../crypto.ts';
import { createRefund, createRefundSchema } from '../refunds/service.ts';
import { closePayment } from '../payments/close.ts';
import { attemptsOf, eventsOf, findAppPayment, lastFailures, paymentIdsMatching, paymentsByIds, paymentsQuery, refundsOf, refundsQuery, type PaymentFilters } from './repo.ts';
import { beijingMidnight, decimal, parseDecimal } from './format.ts';
import { BASE, one, renderPage, scopeOf } from './page.ts';
import { tOf, translator, type Lang, type Translate } from './i18n.ts';
import { paymentTimeline } from './timeline.ts';

const PAGE_SIZE = 25;
const DAY_SECONDS = 86_400;
const PAYMENT_STATUSES = ['pending', 'succeeded', 'closed'];
const REFUND_STATUSES = ['pending', 'succeeded', 'failed'];
const idPattern = /^[a-z]{2,4}_[A-Za-z0-9]{1,60}$/;
const refundKeyPattern = /^console-[A-Za-z0-9]{24}$/;

/** Cursor parameters from the query; a malformed one is simply ignored (first page). */
export function cursorOf(req: Request): { starting_after?: string; ending_before?: string } {
  const after = one(req.query.starting_after);
  const before = one(req.query.ending_before);
  if (after && idPattern.test(after)) return { starting_after: after };
  if (before && idPattern.test(before)) return { ending_before: before };
  return {};
}

/** Which of "newer" / "older" links a page gets (paginate's has_more points the way it read). */
export function pager<T extends { id: string }>(data: T[], hasMore: boolean, cursor: { starting_after?: string; ending_before?: string }) {
  const backwards = Boolean(cursor.ending_before);
  return {
    newer: data.length && (backwards ? hasMore : Boolean(cursor.starting_after)) ? data[0].id : undefined,
    older: data.length && (backwards || hasMore) ? data[data.length - 1].id : undefined,
  };
}

const pick = (value: string | undefined, allowed: readonly string[]) => (value && allowed.includes(value) ? value : undefined);

/** /console/payments: list with filters and search, detail, refund form. */
export function createPaymentPages(deps: Deps): Router {
  const r = Router();

  r.get('/', async (req, res) => {
    const { filters, range, errors } = listFiltersOf(req, tOf(res));
    const view = { title: 'Payments', filters, statuses: PAYMENT_STATUSES, channels: CHANNEL_CODES };
    // A value that cannot be read is the merchant's typo: said on the form, nothing listed.
    if (errors.length) return renderPage(res, 'payments', { ...view, filterErrors: errors, payments: [], failures: new Map(), pager: {} }, 400);
    const cursor = cursorOf(req);
    const scope = scopeOf(res);
    const ids = filters.q ? await paymentIdsMatching(deps.db, scope, filters.q) : undefined;
    const query = { status: filters.status, channel: filters.channel, ids, ...range };
    const page = await paginate(() => paymentsQuery(deps.db, scope, query), { limit: PAGE_SIZE, ...cursor, url: '' }, paymentFromRow);
    const unpaid = page.data.filter((p) => p.status !== 'succeeded').map((p) => p.id);
    renderPage(res, 'payments', {
      ...view,
      payments: page.data,
      failures: await lastFailures(deps.db, unpaid),
      pager: pager(page.data, page.has_more, cursor),
    });
  });

  /** The payment the URL names, of the console's app (either mode), or the 404. */
  async function paymentOf(req: Request, res: Response): Promise<PaymentRow> {
    const id = String(req.params.id);
    const payment = idPattern.test(id) ? await findAppPayment(deps.db, scopeOf(res).appId, id) : undefined;
    if (!payment) throw new ApiError(404, 'invalid_request_error', 'resource_missing', `No such payment: '${id}'`);
    return payment;
  }

  async function showPayment(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const payment = await paymentOf(req, res);
    const [attempts, refunds] = await Promise.all([attemptsOf(deps.db, payment.id), refundsOf(deps.db, payment.id)]);
    const events = await eventsOf(deps.db, payment, refunds.map((x) => x.id));
    const timeline = await paymentTimeline(deps.db, payment, attempts, refunds, events, tOf(res), res.locals.lang as Lang);
    renderPage(res, 'payment', {
      title: tOf(res)('Payment {no}', { no: payment.out_trade_no }),
      payment,
      attempts,
      refunds,
      events,
      timeline,
      refundable: payment.status === 'succeeded' ? payment.amount - payment.amount_refunded : 0,
      refunded: one(req.query.refunded),
      closed: one(req.query.closed),
      form: { amount: '', reason: '' },
      // Each rendering of the form is one refund: sent twice, it is still that refund.
      refundKey: `console-${randomId(24)}`,
      ...extra,
    }, status);
  }

  r.get('/:id', (req, res) => showPayment(req, res));

  /** Closes a pending payment: each placed channel order is closed first; one found paid wins. */
  r.post('/:id/close', async (req, res) => {
    const payment = await paymentOf(req, res);
    if (payment.status !== 'pending') return showPayment(req, res, { closeError: tOf(res)('This payment is {status} and cannot be closed.', { status: tOf(res)(payment.status) }) }, 400);
    const after = await closePayment(deps, payment);
    deps.logger.info('console payment close', { payment_id: payment.id, status: after.status, user: res.locals.session.userId });
    res.redirect(303, `${BASE}/payments/${payment.id}?closed=${after.status === 'closed' ? '1' : 'paid'}`);
  });

  r.post('/:id/refunds', async (req, res) => {
    const payment = await paymentOf(req, res);
    const form = { amount: (one(req.body?.amount) ?? '').trim(), reason: (one(req.body?.reason) ?? '').trim() };
    // The form's key is the refund's number: a form sent again (double click, a resend after a
    // slow answer) finds its refund instead of making a second one.
    const key = one(req.body?.refund_key);
    const refundKey = key && refundKeyPattern.test(key) ? key : undefined;
    // The payment's own mode: the console may be switched to the other one.
    const scope = { appId: payment.app_id, livemode: payment.livemode };
    const done = (refundId: string) => res.redirect(303, `${BASE}/payments/${payment.id}?refunded=${encodeURIComponent(refundId)}`);
    const earlier = refundKey ? await findRefundByOutRefundNo(deps.db, scope, refundKey) : undefined;
    if (earlier?.payment_id === payment.id) return done(earlier.id);
    try {
      const input = createRefundSchema.parse({ amount: refundAmount(form.amount, payment, tOf(res)), reason: form.reason || undefined, out_refund_no: refundKey });
      const refund = await createRefund(deps, scope, payment.id, input);
      deps.logger.info('console refund', { payment_id: payment.id, refund_id: refund.id, user: res.locals.session.userId });
      done(refund.id);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) throw err;
      // The copy that raced the first one: the key is taken by that refund.
      const first = apiErr.code === 'out_refund_no_taken' && refundKey ? await findRefundByOutRefundNo(deps.db, scope, refundKey) : undefined;
      if (first?.payment_id === payment.id) return done(first.id);
      // Nothing was made: the same form (and key) may be sent again once corrected.
      await showPayment(req, res, { refundError: apiErr.message, form, ...(refundKey ? { refundKey } : {}) }, apiErr.status === 404 ? 404 : 400);
    }
  });

  return r;
}

export interface PaymentListForm {
  status?: string;
  channel?: string;
  q?: string;
  /** As typed (Beijing dates, yuan), for the form and the pager links. */
  from?: string;
  to?: string;
  amount_min?: string;
  amount_max?: string;
}

/**
 * The payments list's filters from the query string: status and channel (unknown values are
 * ignored, as before), the search term, created from/to as Beijing dates (both days included)
 * and an amount range in yuan, read like every amount the console takes (parseDecimal). The
 * form's errors are sentences from `t`.
 */
export function listFiltersOf(req: Request, t: Translate = translator('en')): { filters: PaymentListForm; range: Pick<PaymentFilters, 'createdFrom' | 'createdBefore' | 'amountMin' | 'amountMax'>; errors: string[] } {
  const text = (name: string) => one(req.query[name])?.trim().slice(0, 40) || undefined;
  const filters: PaymentListForm = {
    status: pick(one(req.query.status), PAYMENT_STATUSES),
    channel: pick(one(req.query.channel), CHANNEL_CODES),
    q: one(req.query.q)?.trim().slice(0, 100) || undefined,
    from: text('from'),
    to: text('to'),
    amount_min: text('amount_min'),
    amount_max: text('amount_max'),
  };
  const errors: string[] = [];
  const range: Pick<PaymentFilters, 'createdFrom' | 'createdBefore' | 'amountMin' | 'amountMax'> = {};
  // Each error is a whole sentence per field (no "{label} must…" fragments to translate).
  const day = (value: string | undefined, error: string) => {
    if (value === undefined) return undefined;
    const start = beijingMidnight(value);
    if (start === undefined) errors.push(error);
    return start;
  };
  const from = day(filters.from, t('Created from must be a date such as 2025-03-01.'));
  const to = day(filters.to, t('Created to must be a date such as 2025-03-01.'));
  if (from !== undefined) range.createdFrom = from;
  if (to !== undefined) range.createdBefore = to + DAY_SECONDS;
  if (from !== undefined && to !== undefined && to < from) errors.push(t('Created to must not be before created from.'));
  const amount = (value: string | undefined, error: string) => {
    if (value === undefined) return undefined;
    const v = parseDecimal(value, 'CNY');
    if (v === undefined) errors.push(error);
    return v;
  };
  range.amountMin = amount(filters.amount_min, t('Minimum amount must be an amount in yuan such as 12.34.'));
  range.amountMax = amount(filters.amount_max, t('Maximum amount must be an amount in yuan such as 12.34.'));
  if (range.amountMin !== undefined && range.amountMax !== undefined && range.amountMax < range.amountMin) errors.push(t('The maximum amount must not be below the minimum.'));
  return { filters, range, errors };
}

/** The refund form takes major units ("12.34"); blank means whatever is left. */
function refundAmount(text: string, payment: PaymentRow, t: Translate): number | undefined {
  if (text === '') return undefined;
  const amount = parseDecimal(text, payment.currency);
  if (amount === undefined || amount <= 0) {
    throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', t('Enter the amount to refund as a number such as {example}.', { example: decimal(Math.min(payment.amount, 1234), payment.currency) }), 'amount');
  }
  return amount;
}

/** /console/refunds: every refund of the app in the current mode. */
export function createRefundPages(deps: Deps): Router {
  const r = Router();
  r.get('/', async (req, res) => {
    const filters = { status: pick(one(req.query.status), REFUND_STATUSES) };
    const cursor = cursorOf(req);
    const scope = scopeOf(res);
    const page = await paginate(() => refundsQuery(deps.db, scope, filters), { limit: PAGE_SIZE, ...cursor, url: '' }, refundFromRow);
    const payments = await paymentsByIds(deps.db, scope.appId, page.data.map((x) => x.payment_id));
    renderPage(res, 'refunds', {
      title: 'Refunds',
      refunds: page.data,
      payments,
      filters,
      statuses: REFUND_STATUSES,
      pager: pager(page.data, page.has_more, cursor),
    });
  });
  return r;
}
