import { Router, type Request, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { beijingDate, beijingRange, beijingYesterday } from './format.ts';
import { CHECK_LIMIT, checkWithChannels, dailySummary, transactionsCsv, type CheckReport } from './reconciliation.ts';
import { latestPaidAt } from './reconciliation-repo.ts';
import { statementDays } from '../statements/repo.ts';
import { statementProviders } from '../channels/registry.ts';
import { createStatementPages } from '../statements/routes.ts';
import { sendCsv } from './csv-response.ts';
import { one, renderPage, scopeOf } from './page.ts';

/**
 * Longest range the page covers: a quarter (its totals are index-only scans; its table has a row
 * per day and channel). The CSV streams any range, so its bound only refuses nonsense.
 */
const PAGE_MAX_DAYS = 92;
const CSV_MAX_DAYS = 3660;

interface Period {
  from: string;
  to: string;
  start: number;
  end: number;
}

/**
 * from/to (Beijing dates, inclusive) from a query or form. Without them, the week up to the
 * latest day with a succeeded payment (the page opens on data), or yesterday when there is none.
 */
function periodOf(source: Record<string, unknown> | undefined, latest?: number, maxDays = PAGE_MAX_DAYS): Period {
  const open = latest === undefined ? undefined : beijingDate(latest * 1000);
  const defaultFrom = open ? beijingDate(latest! * 1000 - 6 * 86_400_000) : beijingYesterday();
  const from = one(source?.from)?.trim() || (one(source?.to)?.trim() ? one(source?.to)!.trim() : defaultFrom);
  if (!one(source?.from)?.trim() && !one(source?.to)?.trim() && open) return { from, to: open, ...beijingRange(from, open)! };
  const to = one(source?.to)?.trim() || from;
  const range = beijingRange(from, to);
  if (!range) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Give the dates as YYYY-MM-DD, the first one not after the last.', 'from');
  if (range.end - range.start > maxDays * 86_400) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', `Choose at most ${maxDays} days.`, 'to');
  return { from, to, ...range };
}

/** /console/reconciliation: per-channel totals, a check against the channels, the CSV. */
export function createReconciliationPages(deps: Deps): Router {
  const r = Router();

  async function show(req: Request, res: Response, period: Period, report?: CheckReport) {
    const scope = scopeOf(res);
    // The range's totals come with the days' (the same rows): no second pass over the range's payments.
    const [{ summary, ...daily }, statements] = await Promise.all([dailySummary(deps, scope, period), statementDays(deps.db, scope, period.from, period.to)]);
    renderPage(res, 'reconciliation', {
      title: 'Reconciliation', period, summary, report, checkLimit: CHECK_LIMIT, daily, statements, statementChannels: statementProviders(),
    });
  }

  r.get('/', async (req, res) => {
    const q = req.query as Record<string, unknown>;
    const latest = one(q.from) || one(q.to) ? undefined : await latestPaidAt(deps.db, scopeOf(res));
    await show(req, res, periodOf(q, latest));
  });
  // The channels' statements: a day's report, fetch, upload, resolve (server/statements/routes.ts).
  r.use('/statements', createStatementPages(deps));

  // A POST: it sends up to CHECK_LIMIT requests to the channels, which a link or prefetch must not trigger.
  r.post('/check', async (req, res) => {
    const period = periodOf(req.body);
    const report = await checkWithChannels(deps, scopeOf(res), period);
    await show(req, res, period, report);
  });

  r.get('/transactions.csv', async (req, res) => {
    const period = periodOf(req.query as Record<string, unknown>, undefined, CSV_MAX_DAYS);
    const scope = scopeOf(res);
    const name = `checkstand-${scope.livemode ? 'live' : 'test'}-${period.from}${period.to === period.from ? '' : `_${period.to}`}.csv`;
    await sendCsv(res, transactionsCsv(deps, scope, period), name, deps.logger, 'reconciliation');
  });

  return r;
}
