import crypto from 'node:crypto';
import type { Request } from 'express';
import { timingSafeEqualStr } from '../crypto.ts';

/**
 * Cross-site request forgery defences for console forms (DESIGN §4), two independent layers:
 * 1. where the request came from: Origin must be the gateway's own, and Sec-Fetch-Site, when the
 *    browser sends it, must be same-origin;
 * 2. a token only our own pages know: a per-session synchronizer token once logged in, and before
 *    login a signed double-submit token (cookie + HMAC-bound form field), because a forged login
 *    ("login CSRF") would put the victim in the attacker's account.
 * No cookie-only check: SameSite=Lax still lets top-level cross-site GETs through, so no console
 * GET changes anything.
 */

/** True when the request's Origin / Sec-Fetch-Site say it came from one of our own pages. */
export function fromOwnOrigin(req: Request, publicOrigin: string): boolean {
  const origin = req.get('origin');
  const site = req.get('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') return false;
  // Browsers send Origin on every POST; a request without one is not a browser form and still needs the token.
  if (origin !== undefined && origin !== publicOrigin) return false;
  return true;
}

/** The synchronizer token a session's forms must carry. */
export function checkSessionToken(expected: string, sent: unknown): boolean {
  return typeof sent === 'string' && sent.length > 0 && timingSafeEqualStr(sent, expected);
}

const loginTag = (key: Buffer, cookieValue: string) =>
  crypto.createHmac('sha256', key).update(`console-login:${cookieValue}`).digest('base64url');

export const loginCookiePattern = /^[A-Za-z0-9_-]{43}$/;

export function newLoginCookieValue(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** The login form's hidden field: an HMAC of the login cookie, so neither can be forged alone. */
export function loginFormToken(key: Buffer, cookieValue: string): string {
  return loginTag(key, cookieValue);
}

export function checkLoginToken(key: Buffer, cookieValue: string | undefined, sent: unknown): boolean {
  if (!cookieValue || !loginCookiePattern.test(cookieValue) || typeof sent !== 'string') return false;
  return timingSafeEqualStr(sent, loginTag(key, cookieValue));
}
