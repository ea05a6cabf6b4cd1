import { formatAmount, type Lang } from '../checkout/i18n.ts';
import { minorUnits } from '../payments/service.ts';

/**
 * Formatting and date arithmetic for console pages. Times are shown in Beijing time (UTC+8, no
 * daylight saving), the time zone the channels' own bills and the merchants' books use.
 */

const BEIJING_OFFSET_MS = 8 * 3600_000;
const DAY_MS = 86_400_000;

/** "CN¥1,234.56" in English, "¥1,234.56" in zh-CN (the cashier's formatAmount). */
export function money(amount: number, currency: string, lang: Lang = 'en'): string {
  return formatAmount(amount, currency, lang);
}

/** A minor-unit amount as a plain decimal ("12.34"), for CSV and form fields. */
export function decimal(amount: number, currency: string): string {
  const exp = minorUnits(currency);
  if (exp === 0) return String(amount);
  const sign = amount < 0 ? '-' : '';
  const abs = Math.abs(amount);
  return `${sign}${Math.floor(abs / 10 ** exp)}.${String(abs % 10 ** exp).padStart(exp, '0')}`;
}

/**
 * Parses an amount typed in major units ("12.3", "12.34") into minor units; undefined when it is
 * not a plain positive decimal with at most the currency's number of decimals.
 */
export function parseDecimal(text: string, currency: string): number | undefined {
  const exp = minorUnits(currency);
  const m = /^(\d{1,12})(?:\.(\d+))?$/.exec(text.trim());
  if (!m || (m[2] !== undefined && (m[2].length > exp || exp === 0))) return undefined;
  return Number(m[1]) * 10 ** exp + Number((m[2] ?? '').padEnd(exp, '0') || 0);
}

/** "2025-03-01 14:05:09" in Beijing time, from unix milliseconds. */
export function beijingTimeMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  return new Date(ms + BEIJING_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/** "2025-03-01 14:05:09" in Beijing time, from unix seconds. */
export function beijingTime(seconds: number | null | undefined): string {
  return seconds === null || seconds === undefined ? '' : beijingTimeMs(Number(seconds) * 1000);
}

/** The Beijing calendar date ("2025-03-01") of a moment, in unix milliseconds. */
export function beijingDate(ms: number): string {
  return new Date(ms + BEIJING_OFFSET_MS).toISOString().slice(0, 10);
}

/** Yesterday in Beijing: the default reconciliation day (channels publish the day's bill the morning after). */
export function beijingYesterday(nowMs = Date.now()): string {
  return beijingDate(nowMs - DAY_MS);
}

const datePattern = /^\d{4}-\d{2}-\d{2}$/;

/** Midnight at the start of a Beijing date, in unix seconds; undefined for anything but a real YYYY-MM-DD. */
export function beijingMidnight(date: string): number | undefined {
  if (!datePattern.test(date)) return undefined;
  const ms = Date.parse(`${date}T00:00:00Z`);
  if (!Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 10) !== date) return undefined;
  return (ms - BEIJING_OFFSET_MS) / 1000;
}

const dateTimePattern = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/**
 * A Beijing date and time as typed in a form ("2025-03-01T14:05" from a datetime-local input,
 * "2025-03-01 14:05:09", or a date alone: its midnight), in unix seconds; undefined otherwise.
 */
export function parseBeijingDateTime(text: string): number | undefined {
  const m = dateTimePattern.exec(text.trim());
  if (!m) return undefined;
  const midnight = beijingMidnight(m[1]!);
  const [hh, mm, ss] = [m[2], m[3], m[4]].map((v) => Number(v ?? 0));
  if (midnight === undefined || hh! > 23 || mm! > 59 || ss! > 59) return undefined;
  return midnight + hh! * 3600 + mm! * 60 + ss!;
}

/** The value of a datetime-local input ("2025-03-01T14:05") for a moment in unix seconds, in Beijing time. */
export function beijingInputValue(seconds: number): string {
  return beijingTime(seconds).slice(0, 16).replace(' ', 'T');
}

/** [start, end) in unix seconds covering Beijing dates from…to inclusive. */
export function beijingRange(from: string, to: string): { start: number; end: number } | undefined {
  const start = beijingMidnight(from);
  const last = beijingMidnight(to);
  if (start === undefined || last === undefined || last < start) return undefined;
  return { start, end: last + DAY_MS / 1000 };
}

/** A query string from the set values only, for pagination and filter links. */
export function queryString(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text escaped for HTML: what a view passes to tHtml() beside its own markup. */
export function escapeHtml(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** The helpers every console view receives. */
export const viewHelpers = { money, decimal, beijingTime, beijingTimeMs, beijingInputValue, queryString, escape: escapeHtml };

/** viewHelpers with money in the reader's language (times stay "2025-03-01 14:05:09", Beijing time, in both). */
export function viewHelpersFor(lang: Lang): typeof viewHelpers {
  return { ...viewHelpers, money: (amount: number, currency: string) => money(amount, currency, lang) };
}
