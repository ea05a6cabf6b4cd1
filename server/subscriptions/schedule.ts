/**
 * The calendar of a subscription on an Alipay 周期扣款 agreement (protocols/recurring.md §1.1,
 * §1.4). Alipay deducts only on the agreement's scheduled dates (execute_time, then every
 * `period` days or calendar months, the same day of the month) and the 3 days before each, in
 * Beijing time (UTC+8, no daylight saving). Pure functions: no clock, no database.
 */

const DAY_MS = 86_400_000;
const BEIJING_OFFSET_MS = 8 * 3_600_000;
/** Tries of one period, Beijing 10:00 on: 2 days before the scheduled date, the day before, the date itself (≤ 2 retries, as Alipay advises). */
export const TRY_DAYS_BEFORE = [2, 1, 0] as const;
const TRY_HOUR = 10;
/** Alipay takes a deduction on the scheduled date and the 3 days before it. */
export const WINDOW_DAYS_BEFORE = 3;

export interface PeriodRule {
  period_type: 'DAY' | 'MONTH';
  period: number;
  execute_time: string;
}

/** yyyy-MM-dd → days since 1970-01-01 (a calendar date, no time zone). */
const dayNumber = (date: string): number => Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10))) / DAY_MS;
const dateOfDay = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);

/** The Beijing calendar date of an instant (ms). */
export const beijingDate = (ms: number): string => new Date(ms + BEIJING_OFFSET_MS).toISOString().slice(0, 10);

/** Beijing midnight starting `date`, ms. */
export const beijingMidnightMs = (date: string): number => dayNumber(date) * DAY_MS - BEIJING_OFFSET_MS;

/** The agreement's k-th scheduled date (k = 0 is execute_time). */
export function scheduledDate(rule: PeriodRule, k: number): string {
  if (rule.period_type === 'DAY') return dateOfDay(dayNumber(rule.execute_time) + k * rule.period);
  const y = Number(rule.execute_time.slice(0, 4));
  const m = Number(rule.execute_time.slice(5, 7)) - 1 + k * rule.period;
  // MONTH rules fall on day 1–28: every month has that day.
  return dateOfDay(Date.UTC(y + Math.floor(m / 12), ((m % 12) + 12) % 12, Number(rule.execute_time.slice(8, 10))) / DAY_MS);
}

/** The index of the first scheduled date on or after `date`. */
export function firstScheduleIndexOnOrAfter(rule: PeriodRule, date: string): number {
  const target = dayNumber(date);
  let k: number;
  if (rule.period_type === 'DAY') {
    k = Math.ceil((target - dayNumber(rule.execute_time)) / rule.period);
  } else {
    const months = (Number(date.slice(0, 4)) - Number(rule.execute_time.slice(0, 4))) * 12 + Number(date.slice(5, 7)) - Number(rule.execute_time.slice(5, 7));
    k = Math.floor(months / rule.period);
  }
  k = Math.max(0, k - 1);
  while (dayNumber(scheduledDate(rule, k)) < target) k++;
  return k;
}

/** Whether `date` is one of the agreement's scheduled dates. */
export const isScheduledDate = (rule: PeriodRule, date: string): boolean => scheduledDate(rule, firstScheduleIndexOnOrAfter(rule, date)) === date;

/** When try `tryIndex` (0, 1, 2) of the period scheduled on `date` is due, ms. */
export const tryTimeMs = (date: string, tryIndex: number): number =>
  beijingMidnightMs(date) - TRY_DAYS_BEFORE[tryIndex]! * DAY_MS + TRY_HOUR * 3_600_000;

/** Alipay's window for the period scheduled on `date`: [3 days before 00:00, the day after 00:00) Beijing, ms. */
export function deductionWindow(date: string): { opensMs: number; closesMs: number } {
  const midnight = beijingMidnightMs(date);
  return { opensMs: midnight - WINDOW_DAYS_BEFORE * DAY_MS, closesMs: midnight + DAY_MS };
}

/**
 * When the next try of a period is due after `tries` tries, the last one ending at `nowMs`: the
 * next planned time, or now when it has passed but the window is still open; null when no try
 * is left inside the window.
 */
export function nextTryAtMs(date: string, tries: number, nowMs: number): number | null {
  const { closesMs } = deductionWindow(date);
  for (let i = tries; i < TRY_DAYS_BEFORE.length; i++) {
    const at = tryTimeMs(date, i);
    if (at >= nowMs) return at;
    // A first try whose time has passed (a subscription created late in the window) goes now.
    if (i === tries && tries === 0 && nowMs < closesMs) return nowMs;
  }
  return null;
}
