import { Router, type Request, type Response } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import type { Deps } from '../deps.ts';
import { authenticate } from './users.ts';
import { clearAttempts, reserveAttempt } from './lockout.ts';
import {
  LOGIN_COOKIE, MAX_AGE_MS, SESSION_COOKIE, clearHostCookie, createSession, destroySession, loadSession, readCookie, setHostCookie,
} from './sessions.ts';
import { checkLoginToken, fromOwnOrigin, loginCookiePattern, loginFormToken, newLoginCookieValue } from './csrf.ts';
import { BASE, one, renderPage, safeReturnPath, sessionOf } from './page.ts';

const LOGIN_WINDOW_MS = 15 * 60_000;
/** Failed attempts per IP and email in the window (a guessing attack on one account). */
const FAILURES_PER_ACCOUNT = 10;
/** Failed attempts per IP in the window, across emails (spraying one password over many accounts). */
const FAILURES_PER_IP = 50;

const WRONG = 'Wrong email or password.';
const TOO_MANY = 'Too many failed attempts. Wait 15 minutes and try again.';

/** /console/login and /console/logout. */
export function createLoginRoutes(deps: Deps): Router {
  const r = Router();
  const publicOrigin = new URL(deps.config.publicUrl).origin;
  const key = deps.config.masterKeyBytes;

  function renderLogin(req: Request, res: Response, status: number, error?: string) {
    let cookie = readCookie(req, LOGIN_COOKIE);
    if (!cookie || !loginCookiePattern.test(cookie)) {
      cookie = newLoginCookieValue();
      setHostCookie(res, LOGIN_COOKIE, cookie, 3600_000);
    }
    const next = safeReturnPath(req.query.next) ?? safeReturnPath(req.body?.next);
    renderPage(res, 'login', { loginToken: loginFormToken(key, cookie), next, error, email: status === 200 ? '' : one(req.body?.email) ?? '' }, status);
  }

  // Only failures count (skipSuccessfulRequests: a login ends in a 303), so a user is never locked
  // out by their own successful logins; the window is per process, like the API limit.
  const limiter = (limit: number, keyOf: (req: Request) => string) =>
    rateLimit({
      windowMs: LOGIN_WINDOW_MS,
      limit,
      skipSuccessfulRequests: true,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      keyGenerator: keyOf,
      handler: (req, res) => renderLogin(req, res, 429, TOO_MANY),
    });
  const ipOf = (req: Request) => ipKeyGenerator(req.ip ?? 'unknown');
  const perAccount = limiter(FAILURES_PER_ACCOUNT, (req) => `${ipOf(req)}|${(one(req.body?.email) ?? '').trim().toLowerCase().slice(0, 254)}`);
  const perIp = limiter(FAILURES_PER_IP, ipOf);

  r.get('/login', async (req, res) => {
    if (await loadSession(deps.db, readCookie(req, SESSION_COOKIE))) return res.redirect(303, safeReturnPath(req.query.next) ?? `${BASE}/payments`);
    renderLogin(req, res, 200);
  });

  r.post('/login', perIp, perAccount, async (req, res) => {
    if (!fromOwnOrigin(req, publicOrigin)) return renderLogin(req, res, 403, `Sign in from ${publicOrigin}${BASE}/login.`);
    const loginCookie = readCookie(req, LOGIN_COOKIE);
    if (!loginCookie) {
      // The browser did not keep the Secure cookie set with the form: plain http on a host other than localhost.
      return renderLogin(req, res, 400, `Your browser did not keep the console's cookie. The console needs HTTPS (or http://localhost); open ${publicOrigin}${BASE}/login.`);
    }
    if (!checkLoginToken(key, loginCookie, req.body?._csrf)) return renderLogin(req, res, 403, 'The form expired. Please try again.');
    const email = (one(req.body?.email) ?? '').slice(0, 254);
    const password = one(req.body?.password) ?? '';
    // Counted before the password is checked, in the database: every process sees the same count.
    const { lockedUntilMs, justLocked } = await reserveAttempt(deps.db, key, email);
    if (lockedUntilMs !== null) {
      if (justLocked) deps.logger.warn('console sign-ins locked for an email after repeated failures', { ip: req.ip, until: new Date(lockedUntilMs).toISOString() });
      return renderLogin(req, res, 429, TOO_MANY);
    }
    const user = await authenticate(deps.db, email, password);
    if (!user) {
      deps.logger.warn('console login failed', { ip: req.ip });
      return renderLogin(req, res, 401, WRONG);
    }
    await clearAttempts(deps.db, key, email);
    // A fresh id on every login (no session fixation); an old session of this browser ends.
    const old = await loadSession(deps.db, readCookie(req, SESSION_COOKIE));
    if (old) await destroySession(deps.db, old.idHash);
    const id = await createSession(deps.db, user);
    setHostCookie(res, SESSION_COOKIE, id, MAX_AGE_MS);
    clearHostCookie(res, LOGIN_COOKIE);
    deps.logger.info('console login', { user_id: user.id, app_id: user.app_id });
    res.redirect(303, safeReturnPath(req.body?.next) ?? `${BASE}/payments`);
  });

  return r;
}

/** POST /console/logout; mounted behind the session and CSRF checks. */
export function createLogoutRoute(deps: Deps): Router {
  const r = Router();
  r.post('/logout', async (_req, res) => {
    await destroySession(deps.db, sessionOf(res).idHash);
    clearHostCookie(res, SESSION_COOKIE);
    res.redirect(303, `${BASE}/login`);
  });
  return r;
}
