/**
 * The period rule of a simulated 周期扣款 mandate (protocols/recurring.md §1.4): when the next
 * deduction is due and which days it may be made on. The plan starts at execute_time; each
 * successful deduction moves it one period on (DAY: `period` days; MONTH: `period` calendar
 * months, same day of month, which is at most 28); a missed period keeps the plan on the missed
 * date, so later attempts are refused until alipay.user.agreement.executionplan.modify pushes it.
 * A deduction is allowed on the due date and the 3 days before it, Beijing dates, judged by the
 * time the simulator processes it (its clock, sandbox/clock.ts), not the request's timestamp.
 */
import type { Knex } from 'knex';
import type { SandboxMandate } from './agreements.ts';

const PROVIDER = 'alipay';
/** Days before the due date on which Alipay already takes a deduction. */
export const DEDUCT_LEAD_DAYS = 3;
const BEIJING_OFFSET_MS = 8 * 3600_000;

const parts = (date: string): [number, number, number] => date.split('-').map(Number) as [number, number, number];
const format = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The Beijing calendar date (yyyy-MM-dd) of an instant, unix ms. */
export function beijingDate(ms: number): string {
  return format(ms + BEIJING_OFFSET_MS);
}

export function addDays(date: string, n: number): string {
  const [y, m, d] = parts(date);
  return format(Date.UTC(y, m - 1, d + n));
}

/** Same day of month, n months on (the day is ≤ 28 for MONTH rules, so it always exists). */
export function addMonths(date: string, n: number): string {
  const [y, m, d] = parts(date);
  return format(Date.UTC(y, m - 1 + n, d));
}

/** The due date one period after `date` under the mandate's rule. */
export function nextPeriodDate(m: SandboxMandate, date: string): string {
  return m.data.periodType === 'MONTH' ? addMonths(date, m.data.period) : addDays(date, m.data.period);
}

export interface DeductionTotals {
  count: number;
  /** fen */
  amount: number;
  /** The due date of the latest period paid. */
  lastPeriodDate?: string;
}

/** What a mandate has been charged so far (successful deductions only). */
export async function deductionTotals(db: Knex, appId: string, agreementNo: string): Promise<DeductionTotals> {
  const row = await db('sandbox_agreement_deductions')
    .where({ provider: PROVIDER, merchant_id: appId, agreement_no: agreementNo })
    .first(db.raw('count(*) as n'), db.raw('coalesce(sum(amount), 0) as total'), db.raw('max(period_date) as last'));
  return { count: Number(row?.n ?? 0), amount: Number(row?.total ?? 0), lastPeriodDate: row?.last ?? undefined };
}

/** The due date of the mandate's next deduction (what alipay.user.agreement.query calls next_deduct_time). */
export function nextDeductDate(m: SandboxMandate, totals: DeductionTotals): string {
  const planned = m.data.deductTime ?? m.data.executeTime;
  if (!totals.lastPeriodDate) return planned;
  const following = nextPeriodDate(m, totals.lastPeriodDate);
  return planned > following ? planned : following;
}

/** True when a deduction processed on `today` may pay the period due on `due`. */
export function inDeductWindow(today: string, due: string): boolean {
  return today <= due && today >= addDays(due, -DEDUCT_LEAD_DAYS);
}

/** Records a successful deduction of one period; false when that period was paid already (the row decides races). */
export async function recordDeduction(db: Knex, appId: string, agreementNo: string, periodDate: string, outTradeNo: string, amount: number, at: number): Promise<boolean> {
  const rows = await db('sandbox_agreement_deductions')
    .insert({ provider: PROVIDER, merchant_id: appId, agreement_no: agreementNo, period_date: periodDate, out_trade_no: outTradeNo, amount, created: at })
    .onConflict(['provider', 'merchant_id', 'agreement_no', 'period_date'])
    .ignore()
    .returning('period_date');
  return rows.length > 0;
}
