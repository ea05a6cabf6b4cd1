import { tOf } from './i18n.ts';
import { Router, type Request, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { toApiError } from '../http/errors.ts';
import { recordAudit } from '../audit/repo.ts';
import { isRole, ROLES } from './roles.ts';
import { acceptInvitation, changeRole, createInvitation, membersOf, openInvitations, removeMember, revokeInvitation, roleIn, usableInvitation } from './team.ts';
import { clearAttempts, reserveAttempt } from './lockout.ts';
import { WeakPasswordError, verifyPassword } from './password.ts';
import { LOGIN_COOKIE, MAX_AGE_MS, SESSION_COOKIE, clearHostCookie, createSession, destroySession, loadSession, readCookie, setHostCookie, setSessionApp } from './sessions.ts';
import { checkLoginToken, fromOwnOrigin, loginCookiePattern, loginFormToken, newLoginCookieValue } from './csrf.ts';
import { BASE, one, renderPage, sessionOf } from './page.ts';

const userIdPattern = /^usr_[A-Za-z0-9]{1,60}$/;
const invitationIdPattern = /^inv_[A-Za-z0-9]{1,60}$/;

/** /console/team: members and open invitations (everyone reads; the route table lets only owners change). */
export function createTeamPages(deps: Deps): Router {
  const r = Router();

  async function show(res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const appId = sessionOf(res).appId;
    const [members, invitations] = await Promise.all([membersOf(deps.db, appId), openInvitations(deps.db, appId)]);
    renderPage(res, 'team', { title: 'Team', section: 'team', members, invitations, roles: ROLES, form: { email: '', role: 'developer' }, ...extra }, status);
  }

  /** A team change's answer: the page with the error beside the team, or the redirect. */
  async function change(res: Response, act: () => Promise<void | Record<string, unknown>>, done = `${BASE}/team`) {
    try {
      const shown = await act();
      if (shown) return show(res, shown);
      res.redirect(303, done);
    } catch (err) {
      const e = toApiError(err);
      if (e.status >= 500) throw err;
      await show(res, { teamError: e.message }, e.status === 404 ? 404 : 400);
    }
  }

  r.get('/', (req, res) => show(res, { saved: one(req.query.saved) }));

  r.post('/invitations', (req, res) => change(res, async () => {
    const role = one(req.body?.role);
    const email = (one(req.body?.email) ?? '').trim();
    if (!isRole(role)) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Choose the role of the person you invite.', 'role');
    const { invitation, token } = await createInvitation(deps.db, { appId: sessionOf(res).appId, email, role, invitedBy: sessionOf(res).userId });
    res.locals.auditDetails = { object: { type: 'invitation', id: invitation.id }, summary: { email: invitation.email, role, expires: new Date(invitation.expires_ms).toISOString() } };
    // The link is shown once, on this answer (never a redirect that would carry the token in a URL).
    res.set('Cache-Control', 'no-store');
    return { invited: { invitation, link: `${deps.config.publicUrl.replace(/\/$/, '')}${BASE}/invitations/${token}` } };
  }));

  r.post('/invitations/:id/revoke', (req, res) => change(res, async () => {
    const id = String(req.params.id);
    if (!invitationIdPattern.test(id)) throw new ApiError(404, 'invalid_request_error', 'resource_missing', 'No such invitation.');
    const inv = await revokeInvitation(deps.db, sessionOf(res).appId, id);
    res.locals.auditDetails = { summary: { email: inv.email, role: inv.role } };
  }));

  r.post('/members/:id/role', (req, res) => change(res, async () => {
    const id = String(req.params.id);
    const role = one(req.body?.role);
    if (!userIdPattern.test(id)) throw new ApiError(404, 'invalid_request_error', 'resource_missing', 'No such member of this app.');
    if (!isRole(role)) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Choose a role.', 'role');
    const { from, to, email } = await changeRole(deps.db, sessionOf(res).appId, id, role);
    res.locals.auditDetails = { summary: { email, from, to } };
  }, `${BASE}/team?saved=role`));

  r.post('/members/:id/remove', (req, res) => change(res, async () => {
    const id = String(req.params.id);
    if (!userIdPattern.test(id)) throw new ApiError(404, 'invalid_request_error', 'resource_missing', 'No such member of this app.');
    const { role, email } = await removeMember(deps.db, sessionOf(res).appId, id);
    res.locals.auditDetails = { summary: { email, role } };
  }, String(req.params.id) === sessionOf(res).userId ? `${BASE}/login` : `${BASE}/team?saved=removed`));

  return r;
}

/** POST /console/app: the app switcher (behind the session and CSRF checks). */
export function createAppSwitchRoute(deps: Deps): Router {
  const r = Router();
  r.post('/app', async (req, res) => {
    const s = sessionOf(res);
    const appId = one(req.body?.app_id) ?? '';
    if (!(await roleIn(deps.db, s.userId, appId))) return renderPage(res, 'error', { title: 'Not allowed', message: 'You are not a member of that app.' }, 403);
    await setSessionApp(deps.db, s.idHash, appId);
    res.redirect(303, `${BASE}/payments`);
  });
  return r;
}

/**
 * /console/invitations/:token, before any session: the invitee sets a password (a new account) or
 * signs in with the one they have, and joins the app. The form is protected like the login form
 * (own origin, and a token bound to a cookie), and a sign-in here counts toward the lockout.
 */
export function createInvitationRoutes(deps: Deps): Router {
  const r = Router();
  const publicOrigin = new URL(deps.config.publicUrl).origin;
  const key = deps.config.masterKeyBytes;

  async function showInvitation(req: Request, res: Response, status = 200, error?: string) {
    const token = String(req.params.token);
    const invitation = await usableInvitation(deps.db, token);
    res.set('Referrer-Policy', 'no-referrer');
    if (!invitation) {
      return renderPage(res, 'invitation', { title: tOf(res)('Invitation'), invitation: undefined, error: tOf(res)('This invitation link is not valid: it was used, revoked or has expired. Ask the app\'s owner for a new one.') }, status === 200 ? 404 : status);
    }
    let cookie = readCookie(req, LOGIN_COOKIE);
    if (!cookie || !loginCookiePattern.test(cookie)) {
      cookie = newLoginCookieValue();
      setHostCookie(res, LOGIN_COOKIE, cookie, 3600_000);
    }
    renderPage(res, 'invitation', { title: `Join ${invitation.appName}`, invitation, token, formToken: loginFormToken(key, cookie), error }, status);
  }

  r.get('/invitations/:token', (req, res) => showInvitation(req, res));

  r.post('/invitations/:token', async (req, res) => {
    const token = String(req.params.token);
    if (!fromOwnOrigin(req, publicOrigin) || !checkLoginToken(key, readCookie(req, LOGIN_COOKIE), req.body?._csrf)) {
      return showInvitation(req, res, 403, 'The form expired or did not come from this gateway. Please try again.');
    }
    const invitation = await usableInvitation(deps.db, token);
    if (!invitation) return showInvitation(req, res, 404);
    const password = one(req.body?.password) ?? '';
    let userId: string | undefined;
    if (invitation.hasAccount) {
      // The same lockout as the login page: an invitation link is no way around it.
      const { lockedUntilMs } = await reserveAttempt(deps.db, key, invitation.email);
      if (lockedUntilMs !== null) return showInvitation(req, res, 429, 'Too many failed attempts. Wait 15 minutes and try again.');
      const row = await deps.db('console_users').where({ email: invitation.email }).first('id', 'password_hash');
      if (!row || !(await verifyPassword(password, row.password_hash))) return showInvitation(req, res, 401, 'Wrong password for this email.');
      await clearAttempts(deps.db, key, invitation.email);
      userId = row.id;
    } else if (password !== (one(req.body?.password_again) ?? '')) {
      return showInvitation(req, res, 400, 'The two passwords do not match.');
    }
    let joined;
    try {
      joined = await acceptInvitation(deps.db, token, { userId, password });
    } catch (err) {
      if (err instanceof WeakPasswordError) return showInvitation(req, res, 400, err.message);
      const e = toApiError(err);
      if (e.status >= 500) throw err;
      return showInvitation(req, res, e.status, e.message);
    }
    await recordAudit(deps.db, {
      appId: joined.appId, livemode: null, actor: { type: 'console_user', id: joined.userId, email: joined.email }, action: 'team.join',
      object: { type: 'invitation', id: invitation.id }, summary: { email: joined.email, role: joined.role, new_account: !userId }, ip: req.ip ?? null,
    });
    const old = await loadSession(deps.db, readCookie(req, SESSION_COOKIE));
    if (old) await destroySession(deps.db, old.idHash);
    const id = await createSession(deps.db, { id: joined.userId, app_id: joined.appId });
    setHostCookie(res, SESSION_COOKIE, id, MAX_AGE_MS);
    clearHostCookie(res, LOGIN_COOKIE);
    deps.logger.info('console invitation accepted', { user_id: joined.userId, app_id: joined.appId, role: joined.role });
    res.redirect(303, `${BASE}/payments`);
  });

  return r;
}
