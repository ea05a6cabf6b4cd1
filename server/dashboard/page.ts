import type { Response } from 'express';
import type { ConsoleSession } from './sessions.ts';
import type { Scope } from './repo.ts';

/** Small helpers the console's route files share. */

/** Where createConsoleRoutes is mounted (server/app.ts). */
export const BASE = '/console';

export function sessionOf(res: Response): ConsoleSession {
  return res.locals.session as ConsoleSession;
}

/** The logged-in user's app in the mode the console is switched to: every list is scoped by it. */
export function scopeOf(res: Response): Scope {
  const s = sessionOf(res);
  return { appId: s.appId, livemode: s.livemode };
}

/** Renders views/console/<view>.ejs; the layout locals (session, alerts, csrf) are already on res.locals. */
export function renderPage(res: Response, view: string, locals: Record<string, unknown> = {}, status = 200): void {
  res.status(status).render(`console/${view}`, locals);
}

/** A query or form value as one string (the 'simple' query parser may give arrays). */
export function one(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === 'string' ? v : undefined;
}

/** A console path to go back to after login or a switch; anything else (other sites, //host) is refused. */
export function safeReturnPath(value: unknown): string | undefined {
  const v = one(value);
  if (!v || v.length > 500) return undefined;
  return /^\/console(\/[A-Za-z0-9_\-./]*)?(\?[A-Za-z0-9_\-.=&%+:]*)?$/.test(v) && !v.includes('//') && !v.includes('/..') ? v : undefined;
}
