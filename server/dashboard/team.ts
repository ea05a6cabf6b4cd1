import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { newId, nowSeconds, sha256Hex } from '../crypto.ts';
import { isPostgres } from '../db.ts';
import { ApiError } from '../errors.ts';
import { isUniqueViolation } from '../payments/repo.ts';
import { checkPasswordStrength, hashPassword } from './password.ts';
import { emailSchema } from './users.ts';
import type { Role } from './roles.ts';

/**
 * An app's console team: memberships with roles, and invitations by email. An invitation's token
 * is shown once to the inviter (there is no mail server) and only its SHA-256 is kept; it works
 * once, for 7 days. An app always keeps at least one owner.
 */

export const INVITATION_TTL_MS = 7 * 86_400_000;

export interface Member {
  user_id: string;
  email: string;
  role: Role;
  created_ms: number;
}

export interface Invitation {
  id: string;
  app_id: string;
  email: string;
  role: Role;
  invited_by: string;
  created_ms: number;
  expires_ms: number;
  used_ms: number | null;
  revoked: boolean;
}

const refuse = (message: string, code = 'team_change_refused', status = 400) => new ApiError(status, 'invalid_request_error', code, message);

export async function membersOf(db: Knex, appId: string): Promise<Member[]> {
  const rows = await db('console_memberships as m').join('console_users as u', 'u.id', 'm.user_id').where('m.app_id', appId)
    .orderBy([{ column: 'm.created_ms' }, { column: 'u.email' }]).select('m.user_id', 'u.email', 'm.role', 'm.created_ms');
  return rows.map((r) => ({ ...r, created_ms: Number(r.created_ms) }));
}

/** The apps a user belongs to, with names, for the app switcher. */
export async function appsOf(db: Knex, userId: string): Promise<{ id: string; name: string; role: Role }[]> {
  return db('console_memberships as m').join('apps as a', 'a.id', 'm.app_id').where('m.user_id', userId)
    .orderBy([{ column: 'm.created_ms' }, { column: 'a.id' }]).select('a.id', 'a.name', 'm.role');
}

export async function roleIn(db: Knex, userId: string, appId: string): Promise<Role | undefined> {
  return (await db('console_memberships').where({ user_id: userId, app_id: appId }).first('role'))?.role;
}

/** Open invitations (not used, not revoked, not expired), newest first. */
export async function openInvitations(db: Knex, appId: string, now = Date.now()): Promise<Invitation[]> {
  const rows = await db('console_invitations').where({ app_id: appId, revoked: false }).whereNull('used_ms').where('expires_ms', '>', now)
    .orderBy('created_ms', 'desc').limit(100);
  return rows.map(invitationFromRow);
}

function invitationFromRow(r: any): Invitation {
  return {
    id: r.id, app_id: r.app_id, email: r.email, role: r.role, invited_by: r.invited_by, created_ms: Number(r.created_ms),
    expires_ms: Number(r.expires_ms), used_ms: r.used_ms === null || r.used_ms === undefined ? null : Number(r.used_ms), revoked: r.revoked === true || r.revoked === 1,
  };
}

/** Makes an invitation; the token is returned here only, never stored. */
export async function createInvitation(db: Knex, input: { appId: string; email: string; role: Role; invitedBy: string }, now = Date.now()): Promise<{ invitation: Invitation; token: string }> {
  const parsed = emailSchema.safeParse(input.email);
  if (!parsed.success) throw refuse('Enter the email address of the person to invite.', 'parameter_invalid');
  const email = parsed.data;
  const member = await db('console_memberships as m').join('console_users as u', 'u.id', 'm.user_id').where({ 'm.app_id': input.appId, 'u.email': email }).first('m.user_id');
  if (member) throw refuse(`${email} is already a member of this app.`, 'already_member');
  const token = crypto.randomBytes(32).toString('base64url');
  const row = {
    id: newId('inv'), app_id: input.appId, email, role: input.role, token_hash: sha256Hex(token), invited_by: input.invitedBy,
    created_ms: now, expires_ms: now + INVITATION_TTL_MS, used_ms: null, used_by: null, revoked: false,
  };
  await db('console_invitations').insert(row);
  return { invitation: invitationFromRow(row), token };
}

export async function revokeInvitation(db: Knex, appId: string, id: string): Promise<Invitation> {
  const n = await db('console_invitations').where({ id, app_id: appId, revoked: false }).whereNull('used_ms').update({ revoked: true, used_ms: Date.now() });
  if (!n) throw refuse('This invitation is already used or revoked.', 'resource_missing', 404);
  return invitationFromRow(await db('console_invitations').where({ id }).first());
}

/** The invitation a token opens while it still can be used, or undefined (unknown, used, revoked, expired). */
export async function usableInvitation(db: Knex, token: string, now = Date.now()): Promise<(Invitation & { appName: string; hasAccount: boolean }) | undefined> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
  const row = await db('console_invitations as i').join('apps as a', 'a.id', 'i.app_id').where('i.token_hash', sha256Hex(token)).first('i.*', 'a.name as app_name');
  if (!row || row.used_ms !== null || row.revoked === true || row.revoked === 1 || Number(row.expires_ms) <= now) return undefined;
  const user = await db('console_users').where({ email: row.email }).first('id');
  return { ...invitationFromRow(row), appName: row.app_name, hasAccount: Boolean(user) };
}

/**
 * Uses an invitation: marks it used (one request wins, the token works once), creates the account
 * when the email has none, and adds the membership, in one transaction. `userId` is the existing
 * account whose password the caller has checked; without it, `password` makes a new account.
 */
export async function acceptInvitation(db: Knex, token: string, who: { userId?: string; password?: string }, now = Date.now()): Promise<{ userId: string; appId: string; role: Role; email: string }> {
  const inv = await usableInvitation(db, token, now);
  if (!inv) throw refuse('This invitation link is not valid: it was used, revoked or has expired. Ask for a new one.', 'invitation_invalid', 404);
  if (!who.userId) checkPasswordStrength(who.password ?? '');
  const passwordHash = who.userId ? undefined : await hashPassword(who.password!);
  try {
    return await db.transaction(async (trx) => {
      const taken = await trx('console_invitations').where({ token_hash: sha256Hex(token), revoked: false }).whereNull('used_ms').where('expires_ms', '>', now)
        .update({ used_ms: now });
      if (taken !== 1) throw refuse('This invitation link has just been used.', 'invitation_invalid', 404);
      let userId = who.userId;
      if (!userId) {
        userId = newId('usr');
        await trx('console_users').insert({ id: userId, app_id: inv.app_id, email: inv.email, password_hash: passwordHash, created: nowSeconds() });
      }
      await trx('console_invitations').where({ id: inv.id }).update({ used_by: userId });
      const existing = await trx('console_memberships').where({ user_id: userId, app_id: inv.app_id }).first('role');
      if (!existing) await trx('console_memberships').insert({ user_id: userId, app_id: inv.app_id, role: inv.role, created_ms: now });
      return { userId, appId: inv.app_id, role: (existing?.role ?? inv.role) as Role, email: inv.email };
    });
  } catch (err) {
    // The email got an account between the check and the insert: sign in instead.
    if (isUniqueViolation(err)) throw refuse('This email already has an account: sign in with its password to join.', 'invitation_sign_in');
    throw err;
  }
}

/**
 * Runs a change of the team with the app's owners counted inside the transaction. On PostgreSQL
 * the app's row is locked first, so two owners demoting each other at once cannot both pass the
 * "another owner is left" check; SQLite has one writer at a time already.
 */
async function withTeamLock<T>(db: Knex, appId: string, run: (trx: Knex.Transaction, owners: number) => Promise<T>): Promise<T> {
  return db.transaction(async (trx) => {
    if (isPostgres(db)) await trx('apps').where({ id: appId }).forUpdate().first('id');
    const owners = Number((await trx('console_memberships').where({ app_id: appId, role: 'owner' }).count({ n: '*' }))[0].n);
    return run(trx, owners);
  });
}

export async function changeRole(db: Knex, appId: string, userId: string, role: Role): Promise<{ from: Role; to: Role; email: string }> {
  return withTeamLock(db, appId, async (trx, owners) => {
    const m = await trx('console_memberships as m').join('console_users as u', 'u.id', 'm.user_id').where({ 'm.app_id': appId, 'm.user_id': userId }).first('m.role', 'u.email');
    if (!m) throw refuse('No such member of this app.', 'resource_missing', 404);
    if (m.role === 'owner' && role !== 'owner' && owners <= 1) throw refuse('This is the app\'s last owner: make another member an owner first.', 'last_owner');
    await trx('console_memberships').where({ app_id: appId, user_id: userId }).update({ role });
    return { from: m.role, to: role, email: m.email };
  });
}

export async function removeMember(db: Knex, appId: string, userId: string): Promise<{ role: Role; email: string }> {
  return withTeamLock(db, appId, async (trx, owners) => {
    const m = await trx('console_memberships as m').join('console_users as u', 'u.id', 'm.user_id').where({ 'm.app_id': appId, 'm.user_id': userId }).first('m.role', 'u.email');
    if (!m) throw refuse('No such member of this app.', 'resource_missing', 404);
    if (m.role === 'owner' && owners <= 1) throw refuse('This is the app\'s last owner and cannot be removed.', 'last_owner');
    await trx('console_memberships').where({ app_id: appId, user_id: userId }).delete();
    // Their open sessions in this app end now (loadSession would refuse them anyway).
    await trx('console_sessions').where({ user_id: userId, app_id: appId }).delete();
    return { role: m.role, email: m.email };
  });
}
