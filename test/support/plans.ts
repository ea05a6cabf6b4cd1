import type { Knex } from 'knex';
import { paymentIdsMatching, paymentsQuery, eventsOf, paymentsByIds, refundsQuery, lastFailures } from '../../server/dashboard/repo.ts';
import { createdByDay, paymentTotals, paymentsPage, refundTotals, refundsPage } from '../../server/dashboard/reconciliation-repo.ts';
import { statementFees } from '../../server/statements/repo.ts';
import { paginate } from '../../server/http/pagination.ts';

/** Runs a repo call and returns each SQL statement it sent, with its bindings. */
export async function statementsOf(db: Knex, call: () => Promise<unknown>): Promise<Array<{ sql: string; bindings: unknown[] }>> {
  const seen: Array<{ sql: string; bindings: unknown[] }> = [];
  const listener = (q: { sql: string; bindings: unknown[] }) => seen.push({ sql: q.sql, bindings: q.bindings });
  db.on('query', listener);
  try {
    await call();
  } finally {
    db.removeListener('query', listener);
  }
  return seen;
}

export const scope = { appId: 'app_plan', livemode: true };
const range = { start: 1_700_000_000, end: 1_702_678_400 };
const payment = { id: 'pay_plan', app_id: 'app_plan', livemode: true } as any;

/** The reads bench/queries.ts times, each as the console or the API runs it (cursor pages deep). */
export function reads(db: Knex): Record<string, () => Promise<unknown>> {
  const deep = (q: () => Knex.QueryBuilder) => async () => {
    await db('apps').insert({ id: 'app_plan', name: 'Plans', created: 1 }).onConflict('id').ignore();
    await db('payments').insert({
      id: 'pay_cursor', app_id: 'app_plan', livemode: true, out_trade_no: 'cursor', amount: 1, currency: 'CNY', subject: 's', status: 'closed', channel: 'unionpay_pc',
      expires_at: 1, checkout_token: 'tok_cursor', created: 1_700_000_000, updated_ms: 1,
    }).onConflict('id').ignore();
    return paginate(q, { limit: 25, starting_after: 'pay_cursor', url: '' }, (r) => r);
  };
  return {
    search: () => paymentIdsMatching(db, scope, '2025030100000001'),
    searchPage: () => paginate(() => paymentsQuery(db, scope, { ids: ['pay_a', 'pay_b'] }), { limit: 25, url: '' }, (r) => r),
    deepPage: deep(() => paymentsQuery(db, scope, {})),
    deepStatus: deep(() => paymentsQuery(db, scope, { status: 'closed' })),
    deepChannel: deep(() => paymentsQuery(db, scope, { channel: 'unionpay_pc' })),
    deepStatusChannel: deep(() => paymentsQuery(db, scope, { status: 'closed', channel: 'unionpay_pc' })),
    // The console's date and amount filters (from/to Beijing days, amount in fen), first page and deep.
    filteredStatusChannel: () => paginate(() => paymentsQuery(db, scope, { status: 'closed', channel: 'unionpay_pc', createdFrom: range.start, createdBefore: range.end }), { limit: 25, url: '' }, (r) => r),
    filteredDeep: deep(() => paymentsQuery(db, scope, { status: 'closed', channel: 'unionpay_pc', createdFrom: range.start - 86_400, createdBefore: range.end })),
    filteredAmount: () => paginate(() => paymentsQuery(db, scope, { createdFrom: range.start, createdBefore: range.end, amountMin: 500, amountMax: 800 }), { limit: 25, url: '' }, (r) => r),
    createdPerDay: () => createdByDay(db, scope, { start: range.start, end: range.start + 3 * 86_400 }),
    statementFees: () => statementFees(db, scope, '2023-11-15', '2023-12-15'),
    eventsOfPayment: () => eventsOf(db, payment, ['re_plan']),
    listFailures: () => lastFailures(db, ['pay_a', 'pay_b']),
    refundsPayments: () => paymentsByIds(db, 'app_plan', ['pay_a', 'pay_b']),
    refundsList: () => paginate(() => refundsQuery(db, scope, { status: 'failed' }), { limit: 25, url: '' }, (r) => r),
    paymentTotals: () => paymentTotals(db, scope, range),
    refundTotals: () => refundTotals(db, scope, range),
    csvPayments: () => paymentsPage(db, scope, range, { time: range.start + 10, id: 'pay_x' }, 2000),
    csvRefunds: () => refundsPage(db, scope, range, { time: range.start + 10, id: 're_x' }, 2000),
  };
}
