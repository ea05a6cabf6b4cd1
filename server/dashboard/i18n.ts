import type { Request, RequestHandler } from 'express';
import { negotiateLang, type Lang } from '../checkout/i18n.ts';
import { consoleZh } from './i18n/zh-CN.ts';
import { readCookie, setHostCookie } from './sessions.ts';
import { escapeHtml, viewHelpersFor } from './format.ts';
import { BASE, one, safeReturnPath } from './page.ts';

/**
 * The console's two languages, on the cashier's approach (server/checkout/i18n.ts): the same
 * Accept-Language negotiation, catalogs as TypeScript objects, amounts through its formatAmount.
 * The console's default is English; a Chinese first language (zh, zh-CN, zh-Hans…) gets zh-CN,
 * and the header's language link stores an explicit choice in a cookie.
 *
 * The catalog is keyed by the English text (the en side is the key itself), so a page reads as
 * English where it calls t(), and a string missing from zh-CN.ts shows in English rather than as
 * a key; test/unit/console-i18n.test.ts holds every t('…') and tHtml('…') of the views and routes to the catalog.
 */
export type { Lang };
export const CONSOLE_LANGS: readonly Lang[] = ['en', 'zh-CN'];

/** The language choice; a preference, not a credential (no HttpOnly need, but kept like the others). */
export const LANG_COOKIE = '__Host-checkstand_console_lang';
const LANG_COOKIE_MS = 365 * 86_400_000;

export type Vars = Record<string, string | number>;
export type Translate = (english: string, vars?: Vars) => string;
/** t() for a sentence with markup in it (a <code>, a <strong>): the values are the view's own HTML. */
export type TranslateHtml = (english: string, html: Record<string, string>) => string;

/** Both catalogs; en maps each text to itself. */
export const consoleCatalog: Record<Lang, Record<string, string>> = {
  'zh-CN': consoleZh,
  en: Object.fromEntries(Object.keys(consoleZh).map((k) => [k, k])),
};

export function isLang(value: unknown): value is Lang {
  return value === 'en' || value === 'zh-CN';
}

/** The cookie's choice wins; then Accept-Language, English by default. */
export function consoleLangOf(req: Request): Lang {
  const chosen = readCookie(req, LANG_COOKIE);
  return isLang(chosen) ? chosen : negotiateLang(req.get('accept-language'), 'en');
}

/** t() for one language: "{name}" placeholders are filled from vars. */
export function translator(lang: Lang): Translate {
  const messages = consoleCatalog[lang];
  return (english, vars) => {
    const text = messages[english] ?? english;
    return vars ? text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m)) : text;
  };
}

/** tHtml() for one language: the translated text is escaped, then "{name}" is filled with html[name] as is. */
export function htmlTranslator(lang: Lang): TranslateHtml {
  const t = translator(lang);
  return (english, html) => escapeHtml(t(english)).replace(/\{(\w+)\}/g, (m, name: string) => (name in html ? html[name]! : m));
}

/** Every console request: lang, t() and the locale's formatting helpers in res.locals. */
export function consoleLocale(): RequestHandler {
  return (req, res, next) => {
    const lang = consoleLangOf(req);
    res.locals.lang = lang;
    res.locals.t = translator(lang);
    res.locals.tHtml = htmlTranslator(lang);
    res.locals.h = viewHelpersFor(lang);
    res.locals.currentPath = safeReturnPath(`${BASE}${req.path === '/' ? '' : req.path}`) ?? `${BASE}/payments`;
    // The language link comes back to the same page, its query (a search, a filter) included.
    res.locals.langReturn = safeReturnPath(`${BASE}${req.url === '/' ? '' : req.url}`) ?? res.locals.currentPath;
    next();
  };
}

/**
 * GET /console/lang?to=zh-CN&next=/console/…: the header's language link. A plain link, usable on
 * the login page: it changes only how pages read, so it needs no form token (a forged link can do
 * no more than switch the language back).
 */
export function languageSwitch(): RequestHandler {
  return (req, res) => {
    const to = one(req.query.to);
    if (isLang(to)) setHostCookie(res, LANG_COOKIE, to, LANG_COOKIE_MS);
    res.redirect(303, safeReturnPath(req.query.next) ?? `${BASE}/payments`);
  };
}

/** The t() a route renders with (consoleLocale set it). */
export function tOf(res: { locals: Record<string, unknown> }): Translate {
  return (res.locals.t as Translate | undefined) ?? translator('en');
}
