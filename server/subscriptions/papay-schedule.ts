/**
 * When a subscription on a WeChat Pay 委托代扣 contract is charged (protocols/recurring.md §2.2,
 * §2.3): each period's deduction is announced by a pre-deduction notice (预扣费通知), callable
 * 06:00–22:00 Beijing only; the calendar day after the notice is the waiting day; deductions
 * may then be made for deduct_duration days (papay.ts DEDUCT_DURATION_DAYS), at most the
 * estimated amount, and a failed one may be retried inside that period. The doc's example:
 * notice on the 1st, the 2nd waits, deduct on the 3rd. So: the notice goes out at Beijing
 * 10:00 two days before the scheduled date, the deduction on the date itself (10:00), retried
 * at 16:00 and at 10:00 the day after; a notice sent late moves the deduction days with it.
 * Pure functions: no clock, no database.
 */
import { DEDUCT_DURATION_DAYS } from '../channels/wechatpay/papay.ts';
import { beijingDate, beijingMidnightMs } from './schedule.ts';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** The notice leaves this many days before the scheduled date (the notice day, the waiting day, then the date). */
export const NOTICE_DAYS_BEFORE = 2;
const NOTICE_HOUR = 10;
/** WeChat takes pre-deduction notices from 06:00 to 22:00 Beijing time. */
export const NOTICE_OPENS_HOUR = 6;
export const NOTICE_CLOSES_HOUR = 22;
/** Tries inside the deduction days, hours after the first deduction day's midnight (≤ 2 retries, as for Alipay). */
const TRY_OFFSETS_MS = [10 * HOUR_MS, 16 * HOUR_MS, DAY_MS + 10 * HOUR_MS] as const;
export const PAPAY_TRIES = TRY_OFFSETS_MS.length;

/** The Beijing hour (0–23) of an instant. */
const beijingHour = (ms: number) => new Date(ms + 8 * HOUR_MS).getUTCHours();

/**
 * When the notice of the period scheduled on `date` goes out: Beijing 10:00 two days before;
 * if that has passed, now, or the next 06:00 when now is outside WeChat's hours.
 */
export function noticeAtMs(date: string, nowMs: number): number {
  const planned = beijingMidnightMs(date) - NOTICE_DAYS_BEFORE * DAY_MS + NOTICE_HOUR * HOUR_MS;
  if (planned >= nowMs) return planned;
  const h = beijingHour(nowMs);
  if (h >= NOTICE_OPENS_HOUR && h < NOTICE_CLOSES_HOUR) return nowMs;
  const today = beijingMidnightMs(beijingDate(nowMs));
  return (h < NOTICE_OPENS_HOUR ? today : today + DAY_MS) + NOTICE_OPENS_HOUR * HOUR_MS;
}

/** The deduction days after a notice sent at `noticeMs`: [the day after the waiting day, + DEDUCT_DURATION_DAYS), ms. */
export function papayWindow(noticeMs: number): { opensMs: number; closesMs: number } {
  const opensMs = beijingMidnightMs(beijingDate(noticeMs)) + 2 * DAY_MS;
  return { opensMs, closesMs: opensMs + DEDUCT_DURATION_DAYS * DAY_MS };
}

/** When try `tries` (0-based) after the notice is due: its planned time, or now if that passed inside the window; null when none is left. */
export function nextPapayTryAtMs(noticeMs: number, tries: number, nowMs: number): number | null {
  const { opensMs, closesMs } = papayWindow(noticeMs);
  for (let i = tries; i < TRY_OFFSETS_MS.length; i++) {
    const at = opensMs + TRY_OFFSETS_MS[i]!;
    if (at >= nowMs) return at;
    if (i === tries && nowMs >= opensMs && nowMs < closesMs) return nowMs;
  }
  return null;
}
